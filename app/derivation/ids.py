"""Redelivery-safe identity: derived events' ids and each order's randomness are functions of the order alone.

An order processed twice (a redelivery after a crash, a backorder retried) yields the same ids and, from the
same stage's Random, the same draws, so the same payment and shipment, whichever worker decides it and when.
"""

from __future__ import annotations

import hashlib
import struct
import uuid
from enum import StrEnum
from typing import Protocol

#: The namespace of every derived id (uuid5): fixed forever, or redelivered orders get new ids.
NAMESPACE = uuid.UUID("5b0f6a0e-3c2d-4e55-9a51-7d1e0c6b2f83")
_NAMESPACE_BYTES = NAMESPACE.bytes
#: RFC 4122 version (5) and variant bits of a name-based SHA-1 UUID.
_UUID5_CLEAR = ~((0xF000 << 64) | (0xC000 << 48))
_UUID5_SET = (0x5000 << 64) | (0x8000 << 48)
#: Draws a stage may make: a SHA-512 digest holds eight 64-bit words.
MAX_DRAWS = 8


class Stage(StrEnum):
    """The stages of an order's decisions, each with its own Random so that one never shifts another's draws;
    DELIVERY draws how a supplier delivers a reorder, keyed by the RESTOCK's change id instead of an order id."""

    PAYMENT = "payment"
    SHIPMENT = "shipment"
    RETURN = "return"
    DELIVERY = "delivery"


def payment_id(order_id: str, attempt: int) -> str:
    """The id of the ``attempt``-th (from 1) payment of ``order_id``."""
    return _derived_id("payment", order_id, str(attempt))


def shipment_id(order_id: str) -> str:
    """The id of the one shipment of ``order_id``."""
    return _derived_id("shipment", order_id)


def sale_change_id(order_id: str) -> str:
    """The id of the SALE change that takes ``order_id``'s units from its warehouse."""
    return _derived_id("sale", order_id)


def return_change_id(order_id: str) -> str:
    """The id of the RETURN change that brings units of ``order_id`` back."""
    return _derived_id("return", order_id)


def restock_change_id(product_id: int, warehouse_id: int, trigger_id: str) -> str:
    """The id of the RESTOCK of a product in a warehouse reordered when change ``trigger_id`` was applied."""
    return _derived_id("restock", str(product_id), str(warehouse_id), trigger_id)


class Uniform(Protocol):
    """What a stage draws from: ``rng_for``'s Draws, or any ``random.Random``."""

    def random(self) -> float:
        """A float in [0, 1)."""
        ...


class Draws:
    """Up to MAX_DRAWS uniform floats in [0, 1), the 53 high bits of each 64-bit word of one SHA-512 digest.

    The stages draw at most five numbers, always the same count, so a digest gives them all: a quarter of the
    cost of seeding a ``random.Random`` (whose 624-word state each of an order's three stages would build).
    """

    __slots__ = ("_next",)

    def __init__(self, digest: bytes) -> None:
        words = struct.unpack(">8Q", digest)
        self._next = iter([(word >> 11) * _UNIT for word in words]).__next__

    def random(self) -> float:
        """The next draw; StopIteration past MAX_DRAWS."""
        return self._next()


_UNIT = 2.0**-53


def rng_for(seed: int, order_id: str, stage: Stage) -> Draws:
    """The draws of one ``stage`` of ``order_id``'s decisions under ``seed`` (Stage.DELIVERY: of a restock's change id).

    SHA-512, not hash(): Python salts str hashes per process, and every worker must draw alike.
    """
    return Draws(hashlib.sha512(f"{seed}\x1f{stage.value}\x1f{order_id}".encode()).digest())


def _derived_id(kind: str, *parts: str) -> str:
    """``str(uuid.uuid5(NAMESPACE, name))`` of the parts, without building a UUID object (a third of the cost)."""
    digest = hashlib.sha1(_NAMESPACE_BYTES + "\x1f".join((kind, *parts)).encode()).digest()
    digits = f"{int.from_bytes(digest[:16], 'big') & _UUID5_CLEAR | _UUID5_SET:032x}"
    return f"{digits[:8]}-{digits[8:12]}-{digits[12:16]}-{digits[16:20]}-{digits[20:]}"

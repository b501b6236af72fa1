"""Redelivery-safe identity: derived events' ids and each order's randomness are functions of the order alone.

An order processed twice (a redelivery after a crash, a backorder retried) yields the same ids and, from the
same stage's Random, the same draws, so the same payment and shipment, whichever worker decides it and when.
"""

from __future__ import annotations

import hashlib
import random
import uuid
from enum import StrEnum

#: The namespace of every derived id (uuid5): fixed forever, or redelivered orders get new ids.
NAMESPACE = uuid.UUID("5b0f6a0e-3c2d-4e55-9a51-7d1e0c6b2f83")


class Stage(StrEnum):
    """The stages of an order's decisions, each with its own Random so that one never shifts another's draws."""

    PAYMENT = "payment"
    SHIPMENT = "shipment"
    RETURN = "return"


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


def rng_for(seed: int, order_id: str, stage: Stage) -> random.Random:
    """The Random of one ``stage`` of ``order_id``'s decisions under ``seed``.

    SHA-256, not hash(): Python salts str hashes per process, and every worker must draw alike.
    """
    digest = hashlib.sha256(f"{seed}\x1f{stage.value}\x1f{order_id}".encode()).digest()
    return random.Random(int.from_bytes(digest[:16], "big"))


def _derived_id(kind: str, *parts: str) -> str:
    return str(uuid.uuid5(NAMESPACE, "\x1f".join((kind, *parts))))

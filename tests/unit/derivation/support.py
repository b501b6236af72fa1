"""Shared by the derivation and inventory tests: synthetic orders, warehouses, Avro checks and the derivation steps.

Not a test module: pytest does not collect it; its own check is in ``test_support.py``."""

from __future__ import annotations

import json
import random
import uuid
from collections.abc import Mapping
from typing import Any

import fastavro

from app.derivation import (
    DerivationConfig,
    ShipmentDecision,
    Stage,
    Warehouse,
    decide_payment,
    decide_shipment,
    rng_for,
)
from tests.unit.generation.support import NOW_MS, SCHEMAS

WAREHOUSES = {
    1: Warehouse(1, "us-east", "US"),
    2: Warehouse(2, "us-west", "US"),
    3: Warehouse(3, "eu-central", "DE"),
    4: Warehouse(4, "uk-midlands", "GB"),
    5: Warehouse(5, "au-east", "AU"),
}
#: More units than any test orders: every order meant to ship can ship.
AMPLE = {warehouse_id: 10**9 for warehouse_id in WAREHOUSES}


def make_order(
    rng: random.Random, product_id: int = 7, quantity: int | None = None, event_time: int = NOW_MS
) -> dict[str, object]:
    """A valid Order value with a random id, 1-5 units unless ``quantity`` says."""
    units = quantity if quantity is not None else rng.randint(1, 5)
    price = rng.choice((199, 999, 4999))
    return {
        "order_id": str(uuid.UUID(int=rng.getrandbits(128), version=4)),
        "user_id": rng.randint(1, 10_000),
        "product_id": product_id,
        "sku": f"SKU-{product_id:06d}",
        "quantity": units,
        "unit_price": price,
        "amount": units * price,
        "currency": "USD",
        "session_id": None,
        "event_time": event_time,
    }


def make_orders(count: int, seed: int = 3) -> list[dict[str, object]]:
    """``count`` valid orders of one product."""
    rng = random.Random(seed)
    return [make_order(rng) for _ in range(count)]


def order_id(order: Mapping[str, object]) -> str:
    """The order's id, typed."""
    value = order["order_id"]
    assert isinstance(value, str)
    return value


def derive(
    order: Mapping[str, object],
    config: DerivationConfig,
    stock: Mapping[int, int] = AMPLE,
    not_before_ms: int | None = None,
) -> tuple[dict[str, object] | None, ShipmentDecision]:
    """What the orders agent decides for ``order``: its payment and its shipment, each from its stage's Random."""
    payment = decide_payment(order, config, rng_for(config.seed, order_id(order), Stage.PAYMENT))
    rng = rng_for(config.seed, order_id(order), Stage.SHIPMENT)
    return payment, decide_shipment(order, payment, stock, WAREHOUSES, config, rng, not_before_ms=not_before_ms)


def avro_schema(file_name: str) -> Any:
    """The parsed .avsc of ``file_name``."""
    return fastavro.parse_schema(json.loads((SCHEMAS / file_name).read_text()))


def assert_avro(value: Mapping[str, object], file_name: str) -> None:
    """``value`` has exactly the fields of the record in ``file_name`` and is valid for it."""
    parsed = avro_schema(file_name)
    assert set(value) == {field["name"] for field in parsed["fields"]}, file_name
    assert fastavro.validation.validate(dict(value), parsed, raise_errors=True)

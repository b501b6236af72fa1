"""Shared by the stockroom and ledger tests: one product's stockroom, its stock, and the orders, payments and
changes it is handed.

Not a test module: pytest does not collect it.
"""

from __future__ import annotations

import random
from collections import defaultdict
from typing import Any

from app.derivation import DAY_MS, DerivationConfig, Fulfilment, inventory_change
from app.inventory.stockroom import Outcome, Policy, ProductStock, StockReference, Stockroom
from tests.unit.derivation.support import AMPLE, WAREHOUSES, derive, make_order
from tests.unit.generation.support import NOW_MS

CONFIG = DerivationConfig(p_payment=1.0, p_shipment=0.94)
PRODUCT = 7
POLICY = Policy(reorder_point=5, reorder_qty=10, lead_time_days=3, reliability=1.0)
#: A supplier that is never on time and delivers short half the time.
UNRELIABLE = Policy(reorder_point=5, reorder_qty=10, lead_time_days=3, reliability=0.0)
TIMEOUT_MS = 14 * DAY_MS


def _room(policies: bool = True, policy: Policy = POLICY) -> Stockroom:
    reference = StockReference(
        warehouses=WAREHOUSES,
        opening={},
        skus={PRODUCT: f"SKU-{PRODUCT:06d}"},
        policies={(PRODUCT, w): policy for w in (1, 2)} if policies else {},
    )
    return Stockroom(reference, CONFIG, TIMEOUT_MS)


def _stock(**on_hand: int) -> ProductStock:
    stock = ProductStock(PRODUCT, f"SKU-{PRODUCT:06d}")
    for name, units in on_hand.items():
        stock.warehouses[int(name[1:])] = [units, 0, -1]
    return stock


def _shipping_orders(count: int, quantity: int, seed: int = 5) -> list[dict[str, Any]]:
    """Orders that ship when stock allows (paid, accepted, not cancelled), each of ``quantity`` units."""
    rng, found = random.Random(seed), []
    while len(found) < count:
        order = make_order(rng, product_id=PRODUCT, quantity=quantity)
        if derive(order, CONFIG, AMPLE)[1].fulfilment == Fulfilment.SHIPPED:
            found.append(order)
    return found


def _payment(order: dict[str, Any]) -> dict[str, Any] | None:
    return derive(order, CONFIG)[0]


def _change(kind: str, units: int, warehouse: int, change_id: str, at: int = NOW_MS) -> dict[str, Any]:
    sign = 1 if kind in ("RESTOCK", "RETURN") else -1
    return inventory_change(change_id, PRODUCT, f"SKU-{PRODUCT:06d}", warehouse, kind, sign * units, None, at)


def _deltas(out: Outcome) -> dict[int, int]:
    sums: dict[int, int] = defaultdict(int)
    for role, _, value in out.records:
        if role == "inventory_changes":
            sums[int(value["warehouse_id"])] += int(value["delta"])
    return dict(sums)

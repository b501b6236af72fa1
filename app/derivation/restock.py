"""Restocks: when a warehouse reorders a product, how much, and when the supplier's delivery arrives.

A reorder follows the (s, Q) policy the seeded reorder_point and reorder_qty are made for: when the inventory
position (available + on order - backordered) is at or below the reorder point, order the fewest multiples of
reorder_qty that lift it above. The edge keeps what is on order (the RESTOCKs it scheduled and not yet applied),
so a product below its reorder point is not reordered again on every sale.

The supplier delivers as reliably as its ``suppliers.reliability`` r says ("share of purchase orders delivered
complete and on time"), late and short independently, drawn from the restock's own Random (``Stage.DELIVERY``,
keyed by its change id), so the same reorder decided again is delivered alike:

- late: with probability 1 - r the RESTOCK arrives 1 to ceil(lead_time_days x (1 - r) x 2) days (uniform) after
  the lead time, otherwise exactly after it; the days are scaled like the lead time;
- short: with probability (1 - r) / 2 it carries a uniform 50 to 95% (whole percents) of the ordered units,
  rounded down, at least 1 (an order of 1 unit is never short).

With r = 1 every reorder arrives complete after exactly its lead time.
"""

from __future__ import annotations

import math
from typing import NamedTuple

from app.derivation.config import scaled_ms
from app.derivation.derived_changes import inventory_change
from app.derivation.exceptions import DerivationError
from app.derivation.ids import Uniform, restock_change_id
from app.wire.fields import integer
from schemas.symbols import RESTOCK

#: Whole percents of the ordered units a short delivery carries, fewest and most.
SHORT_PERCENT = (50, 95)


class Delivery(NamedTuple):
    """A reorder as its supplier delivers it: the RESTOCK ``change`` due at ``due_ms``, of ``ordered`` units or
    fewer (a short delivery), ``late_days`` after the lead time (0: on time)."""

    due_ms: int
    change: dict[str, object]
    ordered: int
    late_days: int

    @property
    def short(self) -> bool:
        """Whether the RESTOCK carries fewer units than were ordered."""
        return integer(self.change, "delta") < self.ordered


def restock_needed(
    available: int, reorder_point: int, reorder_qty: int, on_order: int = 0, backordered: int = 0
) -> int:
    """Units to reorder, a multiple of ``reorder_qty``: 0 while the inventory position is above ``reorder_point``.

    ``available``: the warehouse's on_hand - reserved after the latest change; ``on_order``: units of its RESTOCKs
    scheduled and not yet applied; ``backordered``: units of the product's backorders this warehouse is counted
    on to serve (the edge's share of them), so that restocks cover the backlog too.
    """
    if reorder_qty < 1 or reorder_point < 0:
        msg = f"reorder_point={reorder_point} reorder_qty={reorder_qty}: expected a point >= 0 and a quantity >= 1"
        raise DerivationError(msg)
    position = available + on_order - backordered
    if position > reorder_point:
        return 0
    return ((reorder_point - position) // reorder_qty + 1) * reorder_qty


def restock_change(
    product_id: int,
    sku: str,
    warehouse_id: int,
    quantity: int,
    lead_time_days: int,
    lead_time_scale: float,
    now_ms: int,
    trigger_id: str,
    reliability: float,
    rng: Uniform,
) -> Delivery:
    """The RESTOCK of ``quantity`` units reordered at ``now_ms``, due after the supplier's lead time, scaled.

    due_ms = now_ms + (lead_time_days + late days) x 86,400,000 x lead_time_scale: with 1/1440 a day of lead time
    lasts a minute. ``lead_time_days`` and ``reliability``: the primary supplier's (product_suppliers.lead_time_days
    where is_primary, suppliers.reliability); late days and short deliveries as the module says. ``trigger_id``:
    the id of the change after which the reorder was decided, so a redelivery of it reorders under the same change
    id. ``rng``: ``rng_for(seed, restock_change_id(product_id, warehouse_id, trigger_id), Stage.DELIVERY)``; four
    draws whatever the outcome. source_id is None: no order or shipment causes a restock.
    """
    if quantity < 1 or lead_time_days < 0 or lead_time_scale <= 0:
        msg = f"restock of {quantity} units after {lead_time_days} days x {lead_time_scale}: expected positive values"
        raise DerivationError(msg)
    if not 0.0 <= reliability <= 1.0:
        msg = f"supplier reliability={reliability}: expected a share between 0 and 1"
        raise DerivationError(msg)
    late_draw, days_draw, short_draw, percent_draw = (rng.random() for _ in range(4))
    late_days = 0
    if late_draw >= reliability:
        late_days = 1 + int(days_draw * max(1, math.ceil(lead_time_days * (1 - reliability) * 2)))
    units = quantity
    if short_draw < (1 - reliability) / 2:
        low, high = SHORT_PERCENT
        units = max(1, quantity * (low + int(percent_draw * (high - low + 1))) // 100)
    due_ms = now_ms + scaled_ms(lead_time_days + late_days, lead_time_scale)
    change_id = restock_change_id(product_id, warehouse_id, trigger_id)
    change = inventory_change(change_id, product_id, sku, warehouse_id, RESTOCK, units, None, due_ms)
    return Delivery(due_ms, change, quantity, late_days)

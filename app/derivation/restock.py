"""Restocks: when a warehouse reorders a product, how much, and when the supplier's delivery arrives.

A reorder follows the (s, Q) policy the seeded reorder_point and reorder_qty are made for: when the inventory
position (available + on order - backordered) is at or below the reorder point, order the fewest multiples of
reorder_qty that lift it above. The edge keeps what is on order (the RESTOCKs it scheduled and not yet applied),
so a product below its reorder point is not reordered again on every sale.
"""

from __future__ import annotations

from app.derivation.changes import ScheduledChange, inventory_change
from app.derivation.config import scaled_ms
from app.derivation.exceptions import DerivationError
from app.derivation.ids import restock_change_id
from app.generation.events import RESTOCK


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
) -> ScheduledChange:
    """The RESTOCK of ``quantity`` units reordered at ``now_ms``, due after the supplier's lead time, scaled.

    due_ms = now_ms + lead_time_days x 86,400,000 x lead_time_scale: with 1/1440 a day of lead time lasts a
    minute. ``lead_time_days``: the primary supplier's (product_suppliers.lead_time_days where is_primary);
    ``trigger_id``: the id of the change after which the reorder was decided, so a redelivery of it reorders
    under the same change id. source_id is None: no order or shipment causes a restock.
    """
    if quantity < 1 or lead_time_days < 0 or lead_time_scale <= 0:
        msg = f"restock of {quantity} units after {lead_time_days} days x {lead_time_scale}: expected positive values"
        raise DerivationError(msg)
    due_ms = now_ms + scaled_ms(lead_time_days, lead_time_scale)
    change_id = restock_change_id(product_id, warehouse_id, trigger_id)
    return ScheduledChange(
        due_ms, inventory_change(change_id, product_id, sku, warehouse_id, RESTOCK, quantity, None, due_ms)
    )

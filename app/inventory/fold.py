"""The fold of a sequence of inventory changes: what a consumer rebuilding stock from the topic computes.

The agents decide every change against the stock before it reaches the topic (``app.inventory.stockroom``), so
the fold of the inventory-changes topic never clamps; the tests use this fold as the independent oracle.

- Idempotent on change_id: a change whose id the state remembers (the latest REMEMBERED_CHANGES) changes
  nothing, and ``apply`` returns the very state it was given, so ``new is old`` tells a redelivery.
- Stock never goes negative. RESTOCK and RETURN add their delta on hand. SALE and DAMAGE take theirs, but at
  most the units on hand: the rest is clamped and counted in ``clamped_units``, so a clamp shows a change that
  was not decided against the stock (none is expected on our topic).
- No reservations are modelled: the change topic has no reserve event, and an order is served (its SALE
  emitted) when it is decided, so nothing waits between a reservation and its shipment. ``reserved`` keeps its
  seeded value and is only lowered with on_hand, so that reserved <= on_hand always holds.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from app.inventory.changes import DELTA_SIGN, Change, read_change
from app.inventory.exceptions import InventoryError
from app.inventory.state import REMEMBERED_CHANGES, StockState, WarehouseStock
from app.wire.fields import InvalidValue


def apply(state: StockState | None, change: Mapping[str, object], remember: int = REMEMBERED_CHANGES) -> StockState:
    """``state`` (None: a product never seen, no stock anywhere) with ``change``, an inventory-change value, folded in.

    Returns ``state`` itself when its change id was already applied; the new state keeps the latest ``remember``
    change ids. Raises InventoryError for a change that ``validate_change`` rejects or that is of another
    product: the edge dead-letters those before folding.
    """
    try:
        checked = read_change(change)
    except InvalidValue as invalid:
        msg = f"inventory change {change.get('change_id')!r} cannot be applied: {invalid}"
        raise InventoryError(msg) from invalid
    if state is None:
        state = StockState(checked.product_id, checked.sku)
    elif state.product_id != checked.product_id:
        msg = f"inventory change {checked.change_id!r} of product {checked.product_id} applied to {state.product_id}"
        raise InventoryError(msg)
    if state.has_applied(checked.change_id):
        return state
    return _moved(state, checked, max(1, remember))


def fold(
    changes: Iterable[Mapping[str, object]], states: Mapping[str, StockState] | None = None
) -> dict[str, StockState]:
    """The states by SKU after applying ``changes`` in order to ``states``; invalid changes are skipped.

    What the inventory table must equal: the fold of the inventory-changes topic over the seeded stock.
    """
    folded = dict(states or {})
    for change in changes:
        try:
            sku = read_change(change).sku
        except InvalidValue:
            continue  # dead-lettered by the edge, never applied
        folded[sku] = apply(folded.get(sku), change)
    return folded


def _moved(state: StockState, change: Change, remember: int) -> StockState:
    before = state.stock(change.warehouse_id)
    if DELTA_SIGN[change.change_type] > 0:
        on_hand, clamped = before.on_hand + change.delta, 0
    else:
        taken = min(-change.delta, before.on_hand)
        on_hand, clamped = before.on_hand - taken, -change.delta - taken
    updated = change.event_time if before.updated_ms is None else max(before.updated_ms, change.event_time)
    after = WarehouseStock(on_hand, min(before.reserved, on_hand), updated)
    return StockState(
        product_id=state.product_id,
        sku=state.sku,
        warehouses={**state.warehouses, change.warehouse_id: after},
        applied=(*state.applied, change.change_id)[-remember:],
        clamped_units=state.clamped_units + clamped,
    )

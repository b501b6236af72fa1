"""Returns: a share of shipped orders comes back to the warehouse it left, some days after delivery."""

from __future__ import annotations

from collections.abc import Mapping

from app.derivation.config import DerivationConfig
from app.derivation.derived_changes import ScheduledChange, inventory_change
from app.derivation.ids import Uniform, return_change_id
from app.derivation.orders import read_order
from app.wire.fields import integer
from schemas.symbols import RETURN


def decide_return(
    order: Mapping[str, object], shipment: Mapping[str, object], config: DerivationConfig, rng: Uniform
) -> ScheduledChange | None:
    """The RETURN of a shipped ``order`` (p_return of them), due return_days (scaled) after its ETA; or None.

    1 to quantity units come back to the shipment's warehouse, source_id = order_id. ``rng``:
    ``rng_for(config.seed, order_id, Stage.RETURN)``; three draws whatever the outcome.
    """
    checked = read_order(order)
    returned, units_draw, delay_draw = (rng.random() for _ in range(3))
    if returned >= config.p_return:
        return None
    low, high = config.return_days
    due_ms = integer(shipment, "eta") + config.scaled_ms(low + int(delay_draw * (high - low + 1)))
    units = 1 + int(units_draw * checked.quantity)
    change = inventory_change(
        return_change_id(checked.order_id),
        checked.product_id,
        checked.sku,
        integer(shipment, "warehouse_id"),
        RETURN,
        units,
        checked.order_id,
        due_ms,
    )
    return ScheduledChange(due_ms, change)

"""What the agents derive from an order, pure: payments, shipments, SALE/RETURN/RESTOCK changes, deterministic ids."""

from app.derivation.config import (
    CARRIERS,
    DAY_MS,
    DEFAULT_LEAD_TIME_SCALE,
    Carrier,
    DerivationConfig,
    DerivationSettings,
)
from app.derivation.derived_changes import ScheduledChange, inventory_change
from app.derivation.exceptions import DerivationError
from app.derivation.ids import (
    NAMESPACE,
    Stage,
    payment_id,
    restock_change_id,
    return_change_id,
    rng_for,
    sale_change_id,
    shipment_id,
)
from app.derivation.orders import Order, read_order, validate_interaction, validate_order
from app.derivation.payment import decide_payment, is_accepted
from app.derivation.restock import Delivery, restock_change, restock_needed
from app.derivation.returns import decide_return
from app.derivation.shipment import Fulfilment, ShipmentDecision, Warehouse, choose_warehouse, decide_shipment

__all__ = [
    "CARRIERS",
    "DAY_MS",
    "DEFAULT_LEAD_TIME_SCALE",
    "NAMESPACE",
    "Carrier",
    "Delivery",
    "DerivationConfig",
    "DerivationError",
    "DerivationSettings",
    "Fulfilment",
    "Order",
    "ScheduledChange",
    "ShipmentDecision",
    "Stage",
    "Warehouse",
    "choose_warehouse",
    "decide_payment",
    "decide_return",
    "decide_shipment",
    "inventory_change",
    "is_accepted",
    "payment_id",
    "read_order",
    "restock_change",
    "restock_change_id",
    "restock_needed",
    "return_change_id",
    "rng_for",
    "sale_change_id",
    "shipment_id",
    "validate_interaction",
    "validate_order",
]

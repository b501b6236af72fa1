"""The shipment of a paid order: whether it ships, from which warehouse, by which carrier, and when it arrives.

Backorders: an order meant to ship that no single warehouse has the units for is BACKORDERED, as a real shop
does: the customer keeps the order and it ships when stock arrives. The edge keeps it and decides it again
(same draws, same carrier) after each RESTOCK or RETURN of its product, with ``not_before_ms`` the time of
that change. So stockouts delay shipments without lowering their share: p_shipment of all orders ship once
the restocks are in, which is when the share is measured. Orders are never split over warehouses (one
shipment per order, its id from the order's).
"""

from __future__ import annotations

from bisect import bisect
from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import NamedTuple

from app.derivation.config import Carrier, DerivationConfig
from app.derivation.derived_changes import inventory_change
from app.derivation.ids import Uniform, sale_change_id, shipment_id
from app.derivation.orders import Order, read_order
from app.derivation.payment import is_accepted
from app.generation.generator import cuts
from schemas.symbols import SALE

#: Continents of the countries of markets and warehouse sites, for the zone of a parcel.
CONTINENTS = {
    **dict.fromkeys(("US", "CA", "MX"), "NA"),
    **dict.fromkeys(("GB", "DE", "FR", "ES", "IT", "NL", "SE", "PL", "TR"), "EU"),
    "AU": "OC",
}
#: Transit days added to a carrier's own: within a country, within a continent, across continents.
ZONE_DAYS = (0, 2, 5)


class Warehouse(NamedTuple):
    """What the derivations need of a warehouses row."""

    warehouse_id: int
    region: str
    country: str


class Fulfilment(StrEnum):
    """What became of an order's shipment."""

    SHIPPED = "shipped"
    #: Meant to ship but no warehouse has the units: keep the order, decide again when its product is restocked.
    BACKORDERED = "backordered"
    #: Never ships: no payment, a declined one, or cancelled before dispatch.
    NOT_SHIPPED = "not_shipped"


@dataclass(frozen=True)
class ShipmentDecision:
    """The fulfilment of an order; SHIPPED ones carry the Shipment value and the SALE change to send."""

    fulfilment: Fulfilment
    reason: str
    shipment: dict[str, object] | None = None
    #: The SALE change of the served units at the chosen warehouse; its event_time is when they were picked.
    sale: dict[str, object] | None = None


def decide_shipment(
    order: Mapping[str, object],
    payment: Mapping[str, object] | None,
    stock: Mapping[int, int],
    warehouses: Mapping[int, Warehouse],
    config: DerivationConfig,
    rng: Uniform,
    *,
    customer_country: str | None = None,
    not_before_ms: int | None = None,
) -> ShipmentDecision:
    """Whether and how ``order`` ships, given its ``payment`` (``decide_payment``'s) and the units available.

    ``stock``: available units (on hand - reserved) of the order's product by warehouse_id, as
    ``StockState.available()``. ``rng``: ``rng_for(config.seed, order_id, Stage.SHIPMENT)``; four draws whatever the
    outcome. ``customer_country`` (ISO code, if known) prefers nearby warehouses; ``not_before_ms``: a backorder
    is served no earlier than this. Raises InvalidValue for an order ``validate_order`` rejects.
    """
    checked = read_order(order)
    ship, carrier_draw, transit_draw, handling_draw = (rng.random() for _ in range(4))
    if payment is None or not is_accepted(payment):
        return ShipmentDecision(Fulfilment.NOT_SHIPPED, "no payment" if payment is None else "payment declined")
    if ship >= config.p_ship_if_accepted:
        return ShipmentDecision(Fulfilment.NOT_SHIPPED, "cancelled before dispatch")
    warehouse = choose_warehouse(checked.quantity, stock, warehouses, customer_country)
    if warehouse is None:
        return ShipmentDecision(Fulfilment.BACKORDERED, f"no warehouse has {checked.quantity} units available")
    served_ms = max(_event_time(payment, checked.event_time), not_before_ms or 0)
    low, high = config.handling_hours
    shipped_ms = served_ms + config.scaled_ms((low + handling_draw * (high - low)) / 24)
    carrier = _carrier(carrier_draw, warehouse.country, config.carriers)
    days = _transit_days(transit_draw, carrier) + ZONE_DAYS[zone(warehouse.country, customer_country)]
    shipment: dict[str, object] = {
        "shipment_id": shipment_id(checked.order_id),
        "order_id": checked.order_id,
        "warehouse_id": warehouse.warehouse_id,
        "carrier": carrier.name,
        "eta": shipped_ms + config.scaled_ms(days),
        "event_time": shipped_ms,
    }
    return ShipmentDecision(
        Fulfilment.SHIPPED,
        f"from warehouse {warehouse.warehouse_id}",
        shipment,
        _sale(checked, warehouse.warehouse_id, served_ms),
    )


def choose_warehouse(
    quantity: int, stock: Mapping[int, int], warehouses: Mapping[int, Warehouse], customer_country: str | None = None
) -> Warehouse | None:
    """The warehouse to serve ``quantity`` units from, or None when none has them all.

    Among the warehouses with at least ``quantity`` available: the nearest zone to ``customer_country`` (when
    known), then the most units available, then the lowest warehouse_id.
    """
    candidates = [
        warehouses.get(warehouse_id, Warehouse(warehouse_id, "", ""))
        for warehouse_id, units in stock.items()
        if units >= quantity
    ]
    if not candidates:
        return None
    return min(candidates, key=lambda w: (zone(w.country, customer_country), -stock[w.warehouse_id], w.warehouse_id))


def zone(warehouse_country: str, customer_country: str | None) -> int:
    """0 within one country (or the customer's unknown), 1 within a continent, 2 across continents."""
    if customer_country is None or customer_country == warehouse_country:
        return 0
    same = CONTINENTS.get(warehouse_country, warehouse_country) == CONTINENTS.get(customer_country, customer_country)
    return 1 if same else 2


def _event_time(payment: Mapping[str, object], default: int) -> int:
    at = payment.get("event_time")
    return at if isinstance(at, int) else default


def _carrier(draw: float, country: str, carriers: tuple[Carrier, ...]) -> Carrier:
    serving = tuple(c for c in carriers if c.share > 0 and c.serves(country)) or carriers
    return serving[bisect(cuts(tuple(carrier.share for carrier in serving)), draw)]


def _transit_days(draw: float, carrier: Carrier) -> int:
    low, high = carrier.transit_days
    return low + int(draw * (high - low + 1))


def _sale(order: Order, warehouse_id: int, served_ms: int) -> dict[str, object]:
    return inventory_change(
        sale_change_id(order.order_id),
        order.product_id,
        order.sku,
        warehouse_id,
        SALE,
        -order.quantity,
        order.order_id,
        served_ms,
    )

"""Fulfilment: warehouse choice, backorders, carriers and ETAs, returns, restocks, and the whole loop over stock."""

from __future__ import annotations

import dataclasses
import math
import random
from collections import Counter

import pytest

from app.derivation import (
    DAY_MS,
    Delivery,
    DerivationConfig,
    DerivationError,
    Fulfilment,
    ShipmentDecision,
    Stage,
    Warehouse,
    choose_warehouse,
    decide_return,
    decide_shipment,
    restock_change,
    restock_change_id,
    restock_needed,
    return_change_id,
    rng_for,
    sale_change_id,
    shipment_id,
)
from app.inventory import validate_change
from schemas.symbols import RESTOCK, RETURN, SALE
from tests.unit.derivation.support import (
    WAREHOUSES,
    assert_avro,
    derive,
    make_order,
    make_orders,
    order_id,
)
from tests.unit.generation.support import NOW_MS, assert_share

#: Every order meant to ship: shipments follow every accepted payment.
ALWAYS = DerivationConfig(p_payment=1.0, p_shipment=0.94)


def shipped(decision: ShipmentDecision) -> dict[str, object]:
    assert decision.fulfilment == Fulfilment.SHIPPED, decision
    assert decision.shipment is not None
    return decision.shipment


def test_a_warehouse_must_hold_the_whole_quantity() -> None:
    stock = {1: 2, 2: 3, 3: 9}
    assert choose_warehouse(3, stock, WAREHOUSES) == WAREHOUSES[3]
    assert choose_warehouse(10, stock, WAREHOUSES) is None
    assert choose_warehouse(1, {}, WAREHOUSES) is None


def test_the_nearest_zone_comes_before_more_stock_then_the_lowest_id_breaks_ties() -> None:
    stock = {1: 5, 2: 7, 3: 50, 4: 60, 5: 90}
    assert choose_warehouse(4, stock, WAREHOUSES, "US") == WAREHOUSES[2]
    assert choose_warehouse(4, stock, WAREHOUSES, "DE") == WAREHOUSES[3]
    assert choose_warehouse(4, stock, WAREHOUSES, "FR") == WAREHOUSES[4]
    assert choose_warehouse(6, stock, WAREHOUSES, "CA") == WAREHOUSES[2]
    assert choose_warehouse(8, stock, WAREHOUSES, "CA") == WAREHOUSES[5]
    assert choose_warehouse(4, stock, WAREHOUSES) == WAREHOUSES[5]
    assert choose_warehouse(4, {4: 60, 3: 60}, WAREHOUSES) == WAREHOUSES[3]
    assert choose_warehouse(1, {9: 1}, WAREHOUSES) == Warehouse(9, "", "")


def test_an_order_no_warehouse_can_serve_is_backordered_then_ships_alike_once_stock_arrives() -> None:
    rng = random.Random(4)
    orders = [make_order(rng, quantity=3) for _ in range(200)]
    for order in orders:
        payment, first = derive(order, ALWAYS, stock={1: 2, 2: 0})
        if payment is None or payment["status"] == "DECLINED" or first.reason == "cancelled before dispatch":
            continue
        assert first.fulfilment == Fulfilment.BACKORDERED
        assert (first.shipment, first.sale) == (None, None)
        later = NOW_MS + 5 * DAY_MS
        _, retried = derive(order, ALWAYS, stock={1: 2, 2: 3}, not_before_ms=later)
        _, again = derive(order, ALWAYS, stock={1: 2, 2: 3}, not_before_ms=later)
        assert retried == again
        shipment = shipped(retried)
        assert shipment["shipment_id"] == shipment_id(order_id(order))
        assert shipment["warehouse_id"] == 2
        assert retried.sale is not None
        assert retried.sale["event_time"] == later
        assert isinstance(shipment["event_time"], int)
        assert shipment["event_time"] >= later


def test_a_shipment_and_its_sale_are_avro_values_of_the_order() -> None:
    config = ALWAYS
    low, high = config.handling_hours
    for order in make_orders(500, seed=6):
        payment, decision = derive(order, config)
        if decision.fulfilment != Fulfilment.SHIPPED:
            continue
        assert payment is not None
        shipment, sale = shipped(decision), decision.sale
        assert sale is not None
        assert_avro(shipment, "shipment.avsc")
        assert_avro(sale, "inventory_change.avsc")
        assert validate_change(sale) is None
        assert sale == {
            "change_id": sale_change_id(order_id(order)),
            "product_id": order["product_id"],
            "sku": order["sku"],
            "warehouse_id": shipment["warehouse_id"],
            "change_type": SALE,
            "delta": -int(str(order["quantity"])),
            "source_id": order["order_id"],
            "event_time": payment["event_time"],
        }
        handling = int(str(shipment["event_time"])) - int(str(sale["event_time"]))
        assert config.scaled_ms(low / 24) <= handling <= config.scaled_ms(high / 24)


def test_carriers_keep_their_shares_and_transit_days_and_usps_only_picks_up_in_the_us() -> None:
    config = dataclasses.replace(ALWAYS, lead_time_scale=1.0)
    transit = {carrier.name: carrier.transit_days for carrier in config.carriers}
    for warehouse_id, carriers in ((1, {"UPS", "FedEx", "DHL", "USPS"}), (3, {"UPS", "FedEx", "DHL"})):
        seen: Counter[str] = Counter()
        for order in make_orders(6_000, seed=warehouse_id):
            _, decision = derive(order, config, stock={warehouse_id: 100})
            if decision.fulfilment != Fulfilment.SHIPPED:
                continue
            shipment = shipped(decision)
            name = str(shipment["carrier"])
            seen[name] += 1
            days = (int(str(shipment["eta"])) - int(str(shipment["event_time"]))) / DAY_MS
            assert transit[name][0] <= days <= transit[name][1]
        assert set(seen) == carriers
        total = sum(carrier.share for carrier in config.carriers if carrier.name in carriers)
        for carrier in config.carriers:
            if carrier.name in carriers:
                assert_share(seen[carrier.name], sum(seen.values()), carrier.share / total, carrier.name)


def test_the_eta_adds_days_for_parcels_leaving_the_country_and_the_continent() -> None:
    config = dataclasses.replace(ALWAYS, lead_time_scale=1.0)
    order = next(o for o in make_orders(50) if derive(o, config)[1].fulfilment == Fulfilment.SHIPPED)
    payment = derive(order, config)[0]
    days = {}
    for country in ("US", "CA", "DE"):
        rng = rng_for(config.seed, order_id(order), Stage.SHIPMENT)
        decision = decide_shipment(order, payment, {1: 10}, WAREHOUSES, config, rng, customer_country=country)
        shipment = shipped(decision)
        days[country] = (int(str(shipment["eta"])) - int(str(shipment["event_time"]))) // DAY_MS
    assert (days["CA"] - days["US"], days["DE"] - days["US"]) == (2, 5)


def test_a_share_of_shipped_orders_comes_back_to_its_warehouse_after_delivery() -> None:
    config = ALWAYS
    returned, total = 0, 0
    for order in make_orders(10_000, seed=12):
        _, decision = derive(order, config)
        if decision.fulfilment != Fulfilment.SHIPPED:
            continue
        shipment = shipped(decision)
        total += 1
        rng = rng_for(config.seed, order_id(order), Stage.RETURN)
        scheduled = decide_return(order, shipment, config, rng)
        assert scheduled == decide_return(order, shipment, config, rng_for(config.seed, order_id(order), Stage.RETURN))
        if scheduled is None:
            continue
        returned += 1
        due, value = scheduled
        assert_avro(value, "inventory_change.avsc")
        assert validate_change(value) is None
        assert (value["change_id"], value["change_type"], value["source_id"]) == (
            return_change_id(order_id(order)),
            RETURN,
            order["order_id"],
        )
        assert value["warehouse_id"] == shipment["warehouse_id"]
        assert 1 <= int(str(value["delta"])) <= int(str(order["quantity"]))
        low, high = config.return_days
        assert value["event_time"] == due
        assert config.scaled_ms(low) <= due - int(str(shipment["eta"])) <= config.scaled_ms(high)
    assert_share(returned, total, config.p_return, "shipped orders returned")


@pytest.mark.parametrize(
    ("available", "on_order", "backordered", "units"),
    [(21, 0, 0, 0), (20, 0, 0, 30), (0, 0, 0, 30), (-5, 0, 0, 30), (5, 30, 0, 0), (5, 0, 40, 60), (-45, 0, 0, 90)],
)
def test_restock_needed_lifts_the_inventory_position_above_the_reorder_point(
    available: int, on_order: int, backordered: int, units: int
) -> None:
    assert restock_needed(available, 20, 30, on_order=on_order, backordered=backordered) == units


def test_restock_needed_refuses_a_zero_reorder_quantity() -> None:
    with pytest.raises(DerivationError, match="reorder_qty=0"):
        restock_needed(1, 5, 0)


def _restock(
    quantity: int = 48, days: int = 3, scale: float = 1.0, trigger: str = "sale-1", reliability: float = 1.0
) -> Delivery:
    """The restock of product 7 at warehouse 2, drawn as the stockroom draws it (seed 0)."""
    rng = rng_for(0, restock_change_id(7, 2, trigger), Stage.DELIVERY)
    return restock_change(7, "SKU-000007", 2, quantity, days, scale, NOW_MS, trigger, reliability, rng)


@pytest.mark.parametrize(("days", "scale", "due_after_ms"), [(30, 1 / 1440, 30 * 60_000), (3, 1.0, 3 * DAY_MS)])
def test_a_restock_is_due_after_the_scaled_lead_time(days: int, scale: float, due_after_ms: int) -> None:
    due, value, ordered, late_days = _restock(48, days, scale)
    assert (ordered, late_days) == (48, 0)
    assert due == NOW_MS + due_after_ms
    assert value == {
        "change_id": restock_change_id(7, 2, "sale-1"),
        "product_id": 7,
        "sku": "SKU-000007",
        "warehouse_id": 2,
        "change_type": RESTOCK,
        "delta": 48,
        "source_id": None,
        "event_time": due,
    }
    assert_avro(value, "inventory_change.avsc")
    rng = rng_for(0, "other draws", Stage.DELIVERY)
    again = restock_change(7, "SKU-000007", 2, 48, days, scale, NOW_MS + 5, "sale-1", 1.0, rng)
    assert again.change["change_id"] == value["change_id"]


def test_a_fully_reliable_supplier_delivers_every_reorder_complete_and_on_time() -> None:
    for index in range(2_000):
        delivery = _restock(quantity=1 + index % 97, days=1 + index % 30, trigger=f"sale-{index}")
        assert (delivery.change["delta"], delivery.late_days, delivery.short) == (delivery.ordered, 0, False)
        assert delivery.due_ms == NOW_MS + (1 + index % 30) * DAY_MS


def test_the_same_reorder_is_delivered_alike_and_another_differently() -> None:
    first = _restock(days=10, trigger="sale-3", reliability=0.3)
    assert _restock(days=10, trigger="sale-3", reliability=0.3) == first
    others = {_restock(days=10, trigger=f"sale-{index}", reliability=0.3).due_ms for index in range(20)}
    assert len(others) > 1


@pytest.mark.parametrize("reliability", [0.0, 0.55, 0.9])
def test_deliveries_are_on_time_and_complete_as_often_as_the_supplier_is_reliable(reliability: float) -> None:
    days, quantity, n = 7, 40, 4_000
    deliveries = [_restock(quantity, days, trigger=f"sale-{index}", reliability=reliability) for index in range(n)]
    on_time = sum(delivery.late_days == 0 for delivery in deliveries)
    assert_share(on_time, n, reliability, "on-time deliveries")
    assert_share(sum(delivery.short for delivery in deliveries), n, (1 - reliability) / 2, "short deliveries")
    most_late = max(1, math.ceil(days * (1 - reliability) * 2))
    late = Counter(delivery.late_days for delivery in deliveries if delivery.late_days)
    assert set(late) == set(range(1, most_late + 1))
    for delivery in deliveries:
        units = int(delivery.change["delta"])
        assert delivery.ordered == quantity
        assert delivery.due_ms == NOW_MS + (days + delivery.late_days) * DAY_MS == delivery.change["event_time"]
        assert units == quantity or quantity // 2 <= units <= quantity * 95 // 100


def test_a_short_delivery_carries_at_least_one_unit() -> None:
    singles = [_restock(quantity=1, trigger=f"sale-{index}", reliability=0.0) for index in range(200)]
    assert {single.change["delta"] for single in singles} == {1}
    pairs = [_restock(quantity=2, trigger=f"sale-{index}", reliability=0.0) for index in range(200)]
    assert {pair.change["delta"] for pair in pairs} == {1, 2}


def test_a_restock_refuses_a_reliability_outside_0_to_1() -> None:
    with pytest.raises(DerivationError, match=r"reliability=1\.5"):
        _restock(reliability=1.5)

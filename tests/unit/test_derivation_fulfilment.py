"""Fulfilment: warehouse choice, backorders, carriers and ETAs, returns, restocks, and the whole loop over stock."""

from __future__ import annotations

import dataclasses
import heapq
import random
from collections import Counter, deque

import pytest

from app.derivation import (
    DAY_MS,
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
from app.generation.events import RESTOCK, RETURN
from app.inventory import SALE, StockState, WarehouseStock, apply, fold, validate_change
from tests.unit.test_derivation_support import (
    WAREHOUSES,
    assert_avro,
    derive,
    make_order,
    make_orders,
    order_id,
)
from tests.unit.test_generation_support import NOW_MS, assert_share

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


@pytest.mark.parametrize(("days", "scale", "due_after_ms"), [(30, 1 / 1440, 30 * 60_000), (3, 1.0, 3 * DAY_MS)])
def test_a_restock_is_due_after_the_scaled_lead_time(days: int, scale: float, due_after_ms: int) -> None:
    due, value = restock_change(7, "SKU-000007", 2, 48, days, scale, NOW_MS, "sale-1")
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
    assert (
        restock_change(7, "SKU-000007", 2, 48, days, scale, NOW_MS + 5, "sale-1").change["change_id"]
        == (value["change_id"])
    )


class Shop:
    """The edge's loop in miniature: orders decided against a stock table, restocks reordered, backorders retried.

    A product's backorders count against every warehouse's inventory position, in equal parts.
    """

    WAREHOUSE_IDS = (1, 2, 3)
    REORDER_POINT, REORDER_QTY, LEAD_DAYS = 20, 30, 2

    def __init__(self, config: DerivationConfig, products: int) -> None:
        self.config = config
        skus = {product_id: f"SKU-{product_id:06d}" for product_id in range(1, products + 1)}
        stock = {warehouse_id: WarehouseStock(20, 2) for warehouse_id in self.WAREHOUSE_IDS}
        self.start = {sku: StockState(product_id, sku, stock) for product_id, sku in skus.items()}
        self.table = dict(self.start)
        self.topic: list[dict[str, object]] = []
        self.shipments: list[dict[str, object]] = []
        self.pending: list[tuple[int, str, dict[str, object]]] = []
        self.on_order: Counter[tuple[str, int]] = Counter()
        self.backlog: dict[str, deque[dict[str, object]]] = {sku: deque() for sku in skus.values()}
        self.backordered: Counter[str] = Counter()
        self.backorders = 0

    def order(self, order: dict[str, object], now_ms: int) -> None:
        self.deliver(until_ms=now_ms)
        sku = str(order["sku"])
        decision = derive(order, self.config, self.table[sku].available())[1]
        if decision.fulfilment == Fulfilment.BACKORDERED:
            self.backorders += 1
            self.backlog[sku].append(order)
            self.backordered[sku] += int(str(order["quantity"]))
            for warehouse_id in self.WAREHOUSE_IDS:
                self.reorder(sku, warehouse_id, now_ms, str(order["order_id"]))
        elif decision.fulfilment == Fulfilment.SHIPPED:
            self.ship(decision)

    def ship(self, decision: ShipmentDecision) -> None:
        assert decision.shipment is not None
        assert decision.sale is not None
        self.shipments.append(decision.shipment)
        self.emit(decision.sale)
        sale = decision.sale
        self.reorder(
            str(sale["sku"]), int(str(sale["warehouse_id"])), int(str(sale["event_time"])), str(sale["change_id"])
        )

    def emit(self, change: dict[str, object]) -> None:
        self.topic.append(change)
        sku = str(change["sku"])
        self.table[sku] = apply(self.table[sku], change)

    def reorder(self, sku: str, warehouse_id: int, now_ms: int, trigger_id: str) -> None:
        available = self.table[sku].stock(warehouse_id).available
        backordered = -(-self.backordered[sku] // len(self.WAREHOUSE_IDS))
        on_order = self.on_order[sku, warehouse_id]
        units = restock_needed(available, self.REORDER_POINT, self.REORDER_QTY, on_order, backordered)
        if units:
            product_id, scale = self.table[sku].product_id, self.config.lead_time_scale
            due, restock = restock_change(
                product_id, sku, warehouse_id, units, self.LEAD_DAYS, scale, now_ms, trigger_id
            )
            self.on_order[sku, warehouse_id] += units
            heapq.heappush(self.pending, (due, str(restock["change_id"]), restock))

    def deliver(self, until_ms: int | None = None) -> None:
        while self.pending and (until_ms is None or self.pending[0][0] <= until_ms):
            due, _, restock = heapq.heappop(self.pending)
            sku = str(restock["sku"])
            self.on_order[sku, int(str(restock["warehouse_id"]))] -= int(str(restock["delta"]))
            self.emit(restock)
            self.retry(sku, due)

    def retry(self, sku: str, due_ms: int) -> None:
        waiting, self.backlog[sku] = self.backlog[sku], deque()
        for order in waiting:
            decision = derive(order, self.config, self.table[sku].available(), not_before_ms=due_ms)[1]
            if decision.fulfilment == Fulfilment.SHIPPED:
                self.backordered[sku] -= int(str(order["quantity"]))
                self.ship(decision)
            else:
                self.backlog[sku].append(order)


def test_the_whole_loop_keeps_stock_sound_and_ships_its_share_once_restocks_arrive() -> None:
    config = DerivationConfig(seed=3)
    shop = Shop(config, products=4)
    rng = random.Random(21)
    count = 20_000
    for index in range(count):
        now = NOW_MS + index * 1_000
        shop.order(make_order(rng, product_id=rng.randint(1, 4), quantity=rng.randint(1, 3), event_time=now), now)
    shop.deliver()
    assert shop.backorders > 10
    assert not any(shop.backlog.values())
    assert_share(len(shop.shipments), count, config.p_shipment, "orders shipped once restocks arrived")
    assert len({shipment["shipment_id"] for shipment in shop.shipments}) == len(shop.shipments)
    for state in shop.table.values():
        assert state.clamped_units == 0
        assert all(0 <= stock.reserved <= stock.on_hand for stock in state.warehouses.values())
    assert fold(shop.topic, shop.start) == shop.table

"""The stockroom, the code the stock agent runs for each request: orders, background changes, due items, backlogs."""

from __future__ import annotations

import json
import random
from collections import defaultdict

import pytest

from app.derivation import DAY_MS
from app.inventory.stockroom import (
    BACKORDER_EXPIRY,
    CHANGE_DUE,
    Backorder,
    Outcome,
    Policy,
    ProductStock,
    Scheduled,
    Stockroom,
)
from tests.unit.generation.support import NOW_MS
from tests.unit.inventory.support import (
    CONFIG,
    POLICY,
    PRODUCT,
    TIMEOUT_MS,
    UNRELIABLE,
    _change,
    _deltas,
    _payment,
    _room,
    _shipping_orders,
    _stock,
)


def test_an_order_with_stock_ships_and_its_sale_takes_the_units_at_once() -> None:
    room, stock, out = _room(), _stock(w1=20), Outcome()
    order = _shipping_orders(1, 3)[0]
    room.order(stock, [], order, _payment(order), out)
    roles = [role for role, _, _ in out.records]
    assert roles == ["shipments", "inventory_changes"]
    sale = out.records[1][2]
    assert (sale["change_type"], sale["delta"], sale["source_id"]) == ("SALE", -3, order["order_id"])
    assert stock.warehouses[1][0] == 17
    assert out.counts["shipped"] == 1


def test_an_order_without_stock_waits_reorders_once_and_ships_first_come_first_served() -> None:
    room, stock, backlog, out = _room(), _stock(w1=2, w2=0), [], Outcome()
    first, second, third = _shipping_orders(3, 4)
    for order in (first, second):
        room.order(stock, backlog, order, _payment(order), out)
    assert [entry.order["order_id"] for entry in backlog] == [first["order_id"], second["order_id"]]
    reorders = [item for item in out.scheduled if item.kind == CHANGE_DUE]
    assert len(reorders) == 1  # the second backorder sees the reorder on its way
    restock = reorders[0]
    assert restock.body["change_type"] == "RESTOCK"
    assert restock.due_ms == NOW_MS + 3 * DAY_MS * CONFIG.lead_time_scale
    expiries = [item for item in out.scheduled if item.kind == BACKORDER_EXPIRY]
    assert [item.due_ms for item in expiries] == [NOW_MS + TIMEOUT_MS] * 2
    stock.warehouses[1][0] = 50  # even with stock now, a new order queues behind the waiting ones
    room.order(stock, backlog, third, _payment(third), out)
    assert len(backlog) == 3
    assert not [record for record in out.records if record[0] == "shipments"]

    arrival = Outcome()
    room.due(stock, backlog, restock, NOW_MS + DAY_MS, arrival)
    shipped = [value["order_id"] for role, _, value in arrival.records if role == "shipments"]
    assert shipped == [first["order_id"], second["order_id"], third["order_id"]]
    assert backlog == []
    assert stock.on_order.get(int(restock.body["warehouse_id"]), 0) == 0
    assert arrival.served == [entry.key for entry in (Backorder(0, first, None, 0), Backorder(1, second, None, 0))] + [
        Backorder(2, third, None, 0).key
    ]
    assert all(value["event_time"] >= NOW_MS + DAY_MS for role, _, value in arrival.records if role == "shipments")


def test_a_backorder_that_waits_too_long_is_cancelled_once() -> None:
    room, stock, backlog, out = _room(), _stock(w1=0), [], Outcome()
    order = _shipping_orders(1, 2)[0]
    room.order(stock, backlog, order, _payment(order), out)
    expiry = next(item for item in out.scheduled if item.kind == BACKORDER_EXPIRY)
    later = Outcome()
    room.due(stock, backlog, expiry, expiry.due_ms, later)
    assert backlog == []
    assert later.counts["backorders cancelled"] == 1
    assert later.records == []
    again = Outcome()
    room.due(stock, backlog, expiry, expiry.due_ms, again)
    assert again.counts["backorders cancelled"] == 0


def test_damage_takes_at_most_what_is_available_and_nothing_when_there_is_none() -> None:
    room, stock = _room(), _stock(w1=3)
    out = Outcome()
    room.change(stock, [], _change("DAMAGE", 5, 1, "d1"), out)
    assert _deltas(out) == {1: -3}
    assert stock.warehouses[1][0] == 0
    nothing = Outcome()
    room.change(stock, [], _change("DAMAGE", 2, 1, "d2"), nothing)
    assert nothing.records == []
    assert nothing.counts["damage dropped: nothing available"] == 1


def test_an_opening_balance_applies_once() -> None:
    room, stock = _room(), _stock()
    out = Outcome()
    room.opening(stock, _change("RESTOCK", 9, 1, "opening-7-1"), out)
    room.opening(stock, _change("RESTOCK", 9, 1, "opening-7-1"), out)
    assert _deltas(out) == {1: 9}
    assert stock.warehouses[1][0] == 9


@pytest.mark.parametrize("policy", [POLICY, UNRELIABLE])
@pytest.mark.parametrize("seed", range(20))
def test_random_requests_keep_the_records_a_faithful_ledger(seed: int, policy: Policy) -> None:
    """Whatever arrives in whatever order: the deltas sent sum to the stock, which never goes negative, every order
    ships at most once, every due item is applied once, and what is on order is what the pending reorders ordered."""
    rng = random.Random(seed)
    room, stock, backlog = _room(policy=policy), _stock(), []
    out = Outcome()
    room.opening(stock, _change("RESTOCK", rng.randint(0, 10) or 1, 1, "opening-1"), out)
    pending: list[Scheduled] = []
    seen = 0
    orders = _shipping_orders(60, rng.randint(1, 4), seed=seed)
    now = NOW_MS
    for step in range(300):
        now += rng.randint(1, 3) * 1000
        roll = rng.random()
        if roll < 0.5 and orders:
            order = orders.pop()
            room.order(stock, backlog, order, _payment(order), out)
        elif roll < 0.7:
            kind = rng.choice(("RESTOCK", "DAMAGE", "RETURN"))
            room.change(stock, backlog, _change(kind, rng.randint(1, 6), rng.choice((1, 2)), f"bg-{step}", now), out)
        elif pending:
            item = pending.pop(rng.randrange(len(pending)))
            room.due(stock, backlog, item, now, out)
        pending += out.scheduled[seen:]
        seen = len(out.scheduled)
        for warehouse, (on_hand, reserved, _) in stock.warehouses.items():
            assert on_hand >= reserved >= 0, (warehouse, on_hand)
    deltas = _deltas(out)
    assert set(deltas) <= set(stock.warehouses)
    assert {w: deltas.get(w, 0) for w in stock.warehouses} == {w: row[0] for w, row in stock.warehouses.items()}
    assert out.counts["shipped"] > 0
    shipped = [value["order_id"] for role, _, value in out.records if role == "shipments"]
    assert len(shipped) == len(set(shipped))
    assert len(out.unscheduled) == len(set(out.unscheduled))
    ordered: dict[int, int] = defaultdict(int)
    for item in pending:
        if item.kind == CHANGE_DUE and item.body["change_type"] == "RESTOCK":
            ordered[int(item.body["warehouse_id"])] += item.ordered or int(item.body["delta"])
    assert {w: units for w, units in stock.on_order.items() if units} == dict(ordered)


def test_a_long_backlog_stops_at_the_first_order_that_cannot_ship() -> None:
    room, stock, backlog = _room(policies=False), _stock(w1=0), []
    out = Outcome()
    for order in _shipping_orders(400, 5):
        room.order(stock, backlog, order, _payment(order), out)
    assert len(backlog) == 400
    arrival = Outcome()
    room.change(stock, backlog, _change("RESTOCK", 23, 1, "r1"), arrival)
    assert len(backlog) == 400 - 4  # 4 orders of 5 units ship; the fifth waits and the queue stops there
    assert stock.warehouses[1][0] == 3


def _damage_reorder(room: Stockroom, trigger: str) -> tuple[ProductStock, Scheduled]:
    """A DAMAGE that takes warehouse 1 from 6 to 4 units, below its reorder point: the reorder of 10 it places."""
    stock, out = _stock(w1=6), Outcome()
    room.change(stock, [], _change("DAMAGE", 2, 1, trigger), out)
    (restock,) = out.scheduled
    return stock, restock


def test_the_same_reorder_decided_twice_is_delivered_alike() -> None:
    room = _room(policy=UNRELIABLE)
    for index in range(10):
        assert _damage_reorder(room, f"d{index}")[1] == _damage_reorder(room, f"d{index}")[1]


def test_a_reliable_supplier_schedules_reorders_as_before() -> None:
    _, restock = _damage_reorder(_room(), "d1")
    assert (restock.body["delta"], restock.due_ms) == (10, NOW_MS + 3 * DAY_MS * CONFIG.lead_time_scale)
    assert len(restock.to_json()) == 4  # stored as older code stored it


def test_a_short_delivery_settles_everything_that_was_on_order() -> None:
    room = _room(policy=UNRELIABLE)
    stock, restock = next(
        found for index in range(100) if (found := _damage_reorder(room, f"d{index}"))[1].body["delta"] < 10
    )
    assert stock.on_order == {1: 10}
    assert restock.ordered == 10
    stored = Scheduled.from_json(restock.item_id, json.loads(json.dumps(restock.to_json())))
    assert stored == restock
    arrival = Outcome()
    room.due(stock, [], stored, restock.due_ms, arrival)
    assert stock.on_order.get(1, 0) == 0
    assert stock.warehouses[1][0] == 4 + restock.body["delta"]
    assert arrival.records == [("inventory_changes", str(PRODUCT), restock.body)]  # only the Avro fields go out
    assert arrival.counts["restocks arrived"] == arrival.counts["restocks arrived short"] == 1
    assert arrival.counts["restocks arrived late"] == (restock.late_days > 0)


def test_a_short_delivery_too_small_for_the_waiting_order_reorders() -> None:
    room, stock = _room(policy=UNRELIABLE), _stock(w1=0)
    order = _shipping_orders(1, 8)[0]
    backlog = [Backorder(0, order, _payment(order), NOW_MS)]
    stock.on_order[1] = 10
    body = _change("RESTOCK", 5, 1, "r-short", NOW_MS + 5)
    arrival = Outcome()
    room.due(stock, backlog, Scheduled("r-short", PRODUCT, NOW_MS + 5, CHANGE_DUE, body, 10, 2), NOW_MS + 5, arrival)
    assert len(backlog) == 1  # 5 units do not serve an order of 8, so no sale reorders: the short delivery does
    (reorder,) = arrival.scheduled
    assert (reorder.ordered or reorder.body["delta"]) == 10
    assert stock.on_order == {1: 10}
    assert arrival.counts["restocks arrived short"] == arrival.counts["restocks arrived late"] == 1


def test_a_restock_scheduled_by_older_code_settles_its_own_delta() -> None:
    room, stock = _room(policy=UNRELIABLE), _stock(w1=4)
    stock.on_order[1] = 10
    body = _change("RESTOCK", 10, 1, "r-old", NOW_MS + 5)
    item = Scheduled.from_json("r-old", [PRODUCT, NOW_MS + 5, CHANGE_DUE, body])
    arrival = Outcome()
    room.due(stock, [], item, NOW_MS + 5, arrival)
    assert (item.ordered, item.late_days) == (None, 0)
    assert stock.on_order.get(1, 0) == 0
    assert stock.warehouses[1][0] == 14
    assert arrival.counts == {"restocks arrived": 1}


def test_a_product_stock_survives_a_json_round_trip() -> None:
    stock = ProductStock(7, "SKU-7", {1: [5, 1, 12], 2: [0, 0, -1]}, {1: 10}, 42, {0: 3, 2: 9}, 4, ["x"], 3)
    assert ProductStock.from_json(stock.to_json()) == stock
    assert stock.to_state().stock(2).updated_ms is None

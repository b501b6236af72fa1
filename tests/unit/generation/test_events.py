"""The generator's events: mix, Avro fields, keys, ids, amounts, late and bad records, prices, reproducibility."""

from __future__ import annotations

import dataclasses
import io
import itertools
import math
import random
import uuid
from collections import Counter
from datetime import UTC, datetime
from typing import Any

import fastavro
import pytest

from app.generation import BAD_KINDS, EventGenerator, GenerationConfig, GenerationError
from app.generation.events import Event, EventIds
from app.generation.generator import balanced_restock, balanced_restock_mean, cuts
from app.wire.roles import CUSTOMER_INTERACTIONS, INVENTORY_CHANGES, ORDERS
from app.wire.roles import GENERATED as KINDS
from tests.unit.generation.support import (
    NOW_MS,
    Z,
    assert_share,
    make_catalog,
    make_config,
    make_generator,
    schema,
    tolerance,
)


def batches(generator: EventGenerator, total: int, size: int = 500, step_ms: int = 1_000) -> list[Event]:
    """``total`` events in batches of ``size``, the clock ``step_ms`` further for each."""
    events: list[Event] = []
    for index in range(0, total, size):
        events += generator.next_batch(min(size, total - index), NOW_MS + (index // size) * step_ms)
    return events


@pytest.fixture(scope="module")
def stream() -> list[Event]:
    """30,000 events of the default settings, with more faults than by default so their kinds show."""
    return batches(make_generator(p_bad_record=0.02, p_update_price=0.01), 30_000)


def good(events: list[Event], kind: str) -> list[dict[str, object]]:
    return [event.value for event in events if event.kind == kind and event.bad_kind is None]


def test_a_batch_has_exactly_count_events() -> None:
    generator = make_generator()
    assert [len(generator.next_batch(count, NOW_MS)) for count in (0, 1, 17, 1_000)] == [0, 1, 17, 1_000]
    with pytest.raises(GenerationError):
        generator.next_batch(-1, NOW_MS)


def test_the_mix_follows_the_weights(stream: list[Event]) -> None:
    config = make_config()
    counts = Counter(event.kind for event in stream)
    for kind, weight in zip(KINDS, config.mix, strict=True):
        assert_share(counts[kind], len(stream), weight / math.fsum(config.mix), kind)


@pytest.mark.parametrize("mix", [(1.0, 0.0, 0.0), (0.0, 1.0, 0.0), (0.0, 0.0, 1.0), (0.0, 2.0, 1.0)])
def test_a_weight_of_zero_never_draws_its_kind(mix: tuple[float, float, float]) -> None:
    generator = make_generator(weight_orders=mix[0], weight_interactions=mix[1], weight_inventory_chg=mix[2])
    counts = Counter(event.kind for event in generator.next_batch(3_000, NOW_MS))
    assert {kind for kind, weight in zip(KINDS, mix, strict=True) if weight} == set(counts)


def test_cuts_never_pick_a_zero_weight() -> None:
    assert cuts((0.0, 1.0, 0.0)) == [0.0, 1.0, 1.0]
    assert cuts((1.0, 1.0, 0.0)) == [0.5, 1.0, 1.0]


def test_values_have_exactly_the_avro_fields_and_types(stream: list[Event]) -> None:
    for kind in KINDS:
        avsc = schema(kind)
        parsed = fastavro.parse_schema(avsc)
        names = {field["name"] for field in avsc["fields"]}
        values = [event.value for event in stream if event.kind == kind]
        assert values
        for value in values:
            assert set(value) == names
            assert fastavro.validate(value, parsed, raise_errors=True)
        buffer = io.BytesIO()
        fastavro.schemaless_writer(buffer, parsed, values[0])
        decoded: dict[str, Any] = fastavro.schemaless_reader(io.BytesIO(buffer.getvalue()), parsed)  # type: ignore[assignment]
        sent: dict[str, Any] = dict(values[0])
        assert decoded.pop("event_time") == datetime.fromtimestamp(sent.pop("event_time") / 1000, UTC)
        assert decoded == sent


def test_keys_times_and_ids(stream: list[Event]) -> None:
    key_field = {ORDERS: "order_id", CUSTOMER_INTERACTIONS: "session_id", INVENTORY_CHANGES: "product_id"}
    for event in stream:
        assert event.key == str(event.value[key_field[event.kind]])
        assert event.value["event_time"] == event.emitted_ms - event.late_ms
    id_field = {ORDERS: "order_id", CUSTOMER_INTERACTIONS: "interaction_id", INVENTORY_CHANGES: "change_id"}
    ids = [str(event.value[id_field[event.kind]]) for event in stream]
    assert len(set(ids)) == len(ids)
    assert all(len(event_id) == 36 and event_id[14] == "4" and event_id[19] in "89ab" for event_id in ids)


def test_every_reference_comes_from_the_catalog(stream: list[Event]) -> None:
    catalog = make_catalog()
    users, warehouses = set(catalog.user_ids), set(catalog.warehouse_ids)
    skus = {product.product_id: product.sku for product in catalog.products}
    for event in stream:
        value = event.value
        if event.bad_kind != "negative_quantity" or event.kind != CUSTOMER_INTERACTIONS:
            assert value.get("user_id", 1_000) in users
        if value.get("product_id") is not None:
            assert value["product_id"] in skus
        if "sku" in value:
            assert value["sku"] == skus[value["product_id"]]  # type: ignore[index]
        assert value.get("warehouse_id", 11) in warehouses
        if event.kind == ORDERS:
            assert value["currency"] == catalog.currency


def test_amount_is_quantity_times_unit_price_and_quantities_lean_to_one(stream: list[Event]) -> None:
    orders = good(stream, ORDERS)
    for order in orders:
        assert order["amount"] == order["quantity"] * order["unit_price"]  # type: ignore[operator]
        assert 1 <= order["quantity"] <= 5  # type: ignore[operator]
    weights = make_config().quantity_weights
    ones = sum(order["quantity"] == 1 for order in orders)
    assert_share(ones, len(orders), weights[0] / math.fsum(weights), "orders of one unit")


def test_late_events_share_and_delays(stream: list[Event]) -> None:
    config = make_config()
    delays = [event.late_ms for event in stream if event.late_ms]
    assert_share(len(delays), len(stream), config.p_late_event, "late events")
    assert all(config.late_min_ms <= delay <= config.late_max_ms for delay in delays)
    below_median = sum(delay < config.late_median_ms for delay in delays)
    assert_share(below_median, len(delays), 0.5, "late delays below the median")


def test_bad_records_share_and_kinds(stream: list[Event]) -> None:
    bad = [event for event in stream if event.bad_kind]
    assert_share(len(bad), len(stream), 0.02, "bad records")
    kinds = Counter(event.bad_kind for event in bad)
    assert set(kinds) == set(BAD_KINDS)
    for kind in BAD_KINDS:
        assert_share(kinds[kind], len(bad), 1 / len(BAD_KINDS), f"bad kind {kind}")


def test_negative_quantity_makes_each_kind_invalid_but_encodable(stream: list[Event]) -> None:
    seen = set()
    for event in stream:
        if event.bad_kind != "negative_quantity":
            continue
        value = event.value
        seen.add(event.kind)
        if event.kind == ORDERS:
            assert value["quantity"] < 0  # type: ignore[operator]
            assert value["amount"] == value["quantity"] * value["unit_price"]  # type: ignore[operator]
        elif event.kind == CUSTOMER_INTERACTIONS:
            assert value["user_id"] < 0  # type: ignore[operator]
        else:
            positive = value["change_type"] == "RESTOCK"
            assert (value["delta"] > 0) != positive  # type: ignore[operator]
    assert seen == set(KINDS)


def test_bad_records_change_no_state() -> None:
    generator = make_generator(p_bad_record=1.0, p_update_price=1.0)
    events = batches(generator, 3_000)
    assert generator.drain_price_changes() == []
    assert generator.sessions.open_sessions == 0
    assert not generator.sessions.carts
    assert all(event.value.get("session_id") is None for event in events if event.kind == ORDERS)
    sessions = Counter(event.key for event in events if event.kind == CUSTOMER_INTERACTIONS)
    assert set(sessions.values()) == {1}


def test_background_inventory_changes_are_restocks_and_damage(stream: list[Event]) -> None:
    config = make_config()
    low, high = balanced_restock(config)
    background = good(stream, INVENTORY_CHANGES)
    types = Counter(change["change_type"] for change in background)
    assert set(types) == {"RESTOCK", "DAMAGE"}  # no RETURN: the stock agent takes back shipped orders
    for change in background:
        lowest, highest = (low, high) if change["change_type"] == "RESTOCK" else config.damage_units
        sign = -1 if change["change_type"] == "DAMAGE" else 1
        assert lowest <= sign * change["delta"] <= highest  # type: ignore[operator]
    restock_share = config.change_weights[0] / math.fsum(config.change_weights)
    assert restock_share == pytest.approx(5 / 7)  # the RESTOCK : DAMAGE proportion of 0.5 : 0.2
    assert_share(types["RESTOCK"], len(background), restock_share, "RESTOCK")


def test_the_generator_cites_no_order_and_draws_no_return_share() -> None:
    """P_UPDATE_INVENTORY is the stock agent's: the generator draws nothing by it, only sizes restocks with it."""

    def drawn(p_returned: float) -> list[tuple[object, ...]]:
        events = batches(make_generator(seed=4, p_bad_record=0.05, p_returned=p_returned), 5_000)
        assert all(event.value["source_id"] is None for event in events if event.kind == INVENTORY_CHANGES)
        return [(event.kind, event.key, event.bad_kind, event.value.get("change_type")) for event in events]

    assert drawn(0.0) == drawn(1.0)
    assert balanced_restock(make_config(p_returned=0.0)) != balanced_restock(make_config(p_returned=1.0))


@pytest.mark.parametrize(
    ("knobs", "named"),
    [({"change_weights": (0.5, 0.2, 0.3)}, "change_weights"), ({"p_returned": 1.5}, "p_returned")],
)
def test_impossible_change_knobs_fail_naming_the_knob(knobs: dict[str, Any], named: str) -> None:
    with pytest.raises(GenerationError, match=f"knob {named}="):
        make_config(**knobs)


def restock_mean(config: GenerationConfig) -> float:
    """The units a RESTOCK must bring on average so that restocks replace what is taken, per event: the shipped
    orders' units less those returned (1 to quantity each) plus the damaged ones, over the restocks."""
    mix, change_total = math.fsum(config.mix), math.fsum(config.change_weights)
    order_share, change_share = config.weight_orders / mix, config.weight_inventory_chg / mix
    restock_share, damage_share = config.change_weights[0] / change_total, config.change_weights[1] / change_total
    weights = config.quantity_weights
    quantity = sum(units * w for units, w in enumerate(weights, start=1)) / math.fsum(weights)
    shipped = order_share * config.p_shipped * quantity
    returned = order_share * config.p_shipped * config.p_returned * (quantity + 1) / 2
    damaged = change_share * damage_share * (config.damage_units[0] + config.damage_units[1]) / 2
    return (shipped - returned + damaged) / (change_share * restock_share)


BALANCES = [
    {},
    {"p_shipped": 0.5, "p_returned": 0.3, "p_bad_record": 0.2},
    {"weight_inventory_chg": 0.3, "change_weights": (1.0, 1.0), "quantity_weights": (0.0, 0.0, 1.0)},
]


@pytest.mark.parametrize("knobs", BALANCES)
def test_the_mean_restock_is_what_ships_less_returns_plus_damage(knobs: dict[str, Any]) -> None:
    config = make_config(**knobs)
    low, high = balanced_restock(config)
    assert balanced_restock_mean(config) == pytest.approx(restock_mean(config))
    assert abs((low + high) / 2 - restock_mean(config)) <= 0.25  # a uniform whole range's midpoint, rounded
    assert low == round(restock_mean(config) / 2)


def test_the_default_restocks_bring_6_to_16_units() -> None:
    # Per event: 0.6 x 0.75 orders ship 1.67 units, 2% of them bring back 1.335; 1/35 damage 2; 1/14 restock.
    assert restock_mean(make_config()) == pytest.approx((0.7515 - 0.012015 + 2 / 35) * 14)
    assert balanced_restock(make_config()) == (6, 16)


@pytest.mark.parametrize("knobs", BALANCES[:2])
def test_over_a_long_stream_restocks_replace_what_ships_less_returns_plus_damage(knobs: dict[str, Any]) -> None:
    """Per good event, the units restocked less the units it takes: an order p_shipped of its quantity less
    p_returned of 1 to quantity back, a DAMAGE its units (bad events are dead-lettered, so take nothing).

    The sum's expectation is 0 but for the restock range's rounding, a quarter unit per restock at most; its
    spread is Z sample standard deviations of the per-event net times sqrt(n).
    """
    config = make_config(**knobs)
    events = batches(EventGenerator(make_catalog(), config, random.Random(5)), 200_000, size=10_000)
    net, restocks = [], 0
    for event in events:
        value = event.value
        if event.bad_kind is not None or event.kind == CUSTOMER_INTERACTIONS:
            net.append(0.0)
        elif event.kind == ORDERS:
            quantity = int(value["quantity"])  # type: ignore[call-overload]
            net.append(-config.p_shipped * (quantity - config.p_returned * (quantity + 1) / 2))
        else:
            net.append(float(value["delta"]))  # type: ignore[arg-type]
            restocks += value["change_type"] == "RESTOCK"
    mean = math.fsum(net) / len(net)
    spread = math.sqrt(math.fsum((x - mean) ** 2 for x in net) / (len(net) - 1) * len(net))
    assert abs(math.fsum(net)) <= Z * spread + 0.25 * restocks, (math.fsum(net), spread, restocks)


def test_price_changes_are_charged_by_later_orders() -> None:
    catalog = make_catalog(products=20)
    generator = make_generator(catalog=catalog, p_update_price=0.05)
    prices = {product.product_id: product.price_cents for product in catalog.products}
    changed: set[object] = set()
    orders_after_a_change = 0
    for tick in range(6_000):
        for event in generator.next_batch(1, NOW_MS + tick):
            if event.kind == ORDERS:
                assert event.value["unit_price"] == prices[event.value["product_id"]]  # type: ignore[index]
                orders_after_a_change += event.value["product_id"] in changed
        for change in generator.drain_price_changes():
            assert change.old_cents == prices[change.product_id]
            assert change.new_cents > 0
            move = abs(change.new_cents / change.old_cents - 1)
            half_cent = 0.5 / change.old_cents  # the new price is rounded to the cent
            assert 0.01 - half_cent <= move <= 0.15 + half_cent
            prices[change.product_id] = change.new_cents
            changed.add(change.product_id)
    assert orders_after_a_change > 100


def test_prices_never_fall_below_cost() -> None:
    catalog = make_catalog(products=5)
    at_cost = tuple(dataclasses.replace(product, cost_cents=product.price_cents) for product in catalog.products)
    generator = make_generator(catalog=dataclasses.replace(catalog, products=at_cost), p_update_price=1.0)
    generator.next_batch(200, NOW_MS)
    changes = generator.drain_price_changes()
    assert changes
    costs = {product.product_id: product.cost_cents for product in at_cost}
    assert all(change.new_cents >= costs[change.product_id] for change in changes)
    first = {change.product_id: change for change in reversed(changes)}
    assert all(change.new_cents > change.old_cents == costs[product_id] for product_id, change in first.items())


def test_a_price_set_by_the_edge_is_charged() -> None:
    catalog = make_catalog(products=3)
    generator = make_generator(catalog=catalog, p_update_price=0.0)
    product_id = catalog.products[0].product_id
    generator.set_price(product_id, 77_777)
    orders = [event.value for event in generator.next_batch(3_000, NOW_MS) if event.kind == ORDERS]
    assert {order["unit_price"] for order in orders if order["product_id"] == product_id} == {77_777}


def test_same_seed_same_contents_however_batched_and_timed() -> None:
    def contents(generator: EventGenerator, sizes: list[int], step_ms: int) -> list[tuple[object, ...]]:
        events = []
        for index, size in enumerate(sizes):
            events += generator.next_batch(size, NOW_MS + index * step_ms)
        return [
            (event.kind, event.key, event.late_ms, event.bad_kind, {**event.value, "event_time": None})
            for event in events
        ]

    knobs: dict[str, Any] = {"p_bad_record": 0.05, "p_update_price": 0.05}
    first = contents(make_generator(seed=11, **knobs), [1_000] * 5, 1_000)
    again = contents(make_generator(seed=11, **knobs), [1, 999, 2_500, 1_500], 37)
    other = contents(make_generator(seed=12, **knobs), [1_000] * 5, 1_000)
    assert first == again
    assert first != other
    assert len(first) == len(other) == 5_000


def test_same_seed_and_calls_give_identical_events_and_price_changes() -> None:
    runs = []
    for _ in range(2):
        generator = make_generator(seed=3, p_update_price=0.05)
        runs.append((batches(generator, 5_000), generator.drain_price_changes()))
    assert runs[0] == runs[1]
    assert runs[0][1]


def test_the_tolerance_helper_is_what_the_shares_use() -> None:
    assert tolerance(0.05, 30_000) < 0.006  # the late share is checked to within about half a percent


def test_event_ids_are_unique_uuid4s_reproducible_from_the_seed() -> None:
    ids = EventIds(random.Random(3).getrandbits)
    made = [ids() for _ in range(200_000)]
    assert len(set(made)) == len(made)
    assert all(uuid.UUID(made_id).version == 4 and str(uuid.UUID(made_id)) == made_id for made_id in made[:1000])
    again = EventIds(random.Random(3).getrandbits)
    assert [again() for _ in range(1000)] == made[:1000]
    other = EventIds(random.Random(4).getrandbits)
    assert not {other() for _ in range(1000)} & set(made)


def test_consecutive_event_ids_do_not_look_sequential() -> None:
    ids = EventIds(random.Random(5).getrandbits)
    tails = [int(ids()[-12:], 16) for _ in range(1000)]
    steps = {abs(later - earlier) for earlier, later in itertools.pairwise(tails)}
    assert len(steps) > 900

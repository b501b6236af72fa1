"""The inventory fold: idempotent on change ids, never negative, order-independent across products, JSON-storable."""

from __future__ import annotations

import json
import random
from collections import Counter

import pytest

from app.generation import SEMANTIC_KINDS
from app.inventory import (
    REMEMBERED_CHANGES,
    InventoryError,
    StockState,
    WarehouseStock,
    apply,
    fold,
    validate_change,
)
from app.wire.roles import INVENTORY_CHANGES
from schemas.symbols import DAMAGE, RESTOCK, RETURN, SALE
from tests.unit.derivation.support import assert_avro
from tests.unit.generation.support import NOW_MS, make_generator

SIGN = {RESTOCK: 1, SALE: -1, DAMAGE: -1, RETURN: 1}


def change(
    change_type: str, units: int, warehouse_id: int = 1, product_id: int = 7, change_id: str | None = None
) -> dict[str, object]:
    """A valid InventoryChange value moving ``units`` in the direction of ``change_type``."""
    return {
        "change_id": change_id or f"{change_type}-{product_id}-{warehouse_id}-{units}",
        "product_id": product_id,
        "sku": f"SKU-{product_id:06d}",
        "warehouse_id": warehouse_id,
        "change_type": change_type,
        "delta": SIGN[change_type] * units,
        "source_id": None,
        "event_time": NOW_MS,
    }


def seeded(on_hand: int = 10, reserved: int = 0, product_id: int = 7) -> StockState:
    return StockState(product_id, f"SKU-{product_id:06d}", {1: WarehouseStock(on_hand, reserved)})


def random_changes(rng: random.Random, count: int, products: int = 3) -> list[dict[str, object]]:
    """Valid changes of a few products and warehouses, some of them repeated (redeliveries)."""
    changes: list[dict[str, object]] = []
    for index in range(count):
        if changes and rng.random() < 0.1:
            changes.append(rng.choice(changes))
            continue
        kind = rng.choice((RESTOCK, SALE, DAMAGE, RETURN))
        product, warehouse = rng.randint(1, products), rng.randint(1, 3)
        changes.append(change(kind, rng.randint(1, 12), warehouse, product, change_id=f"c{index}"))
    return changes


def test_a_change_is_an_avro_inventory_change() -> None:
    assert_avro(change(SALE, 2), "inventory_change.avsc")


def test_each_type_moves_stock_its_way() -> None:
    state = seeded(10)
    for kind, units, on_hand in ((RESTOCK, 5, 15), (SALE, 3, 12), (DAMAGE, 2, 10), (RETURN, 1, 11)):
        state = apply(state, change(kind, units))
        assert state.stock(1).on_hand == on_hand, kind
    assert state.on_hand == 11
    assert state.clamped_units == 0
    assert state.stock(1).updated_ms == NOW_MS


def test_a_first_change_of_a_product_starts_from_no_stock() -> None:
    state = apply(None, change(RESTOCK, 4, warehouse_id=3))
    assert (state.product_id, state.sku, state.available()) == (7, "SKU-000007", {3: 4})
    assert state.stock(1) == WarehouseStock()


def test_a_change_applied_twice_changes_nothing() -> None:
    state = apply(seeded(), change(SALE, 3))
    assert apply(state, change(SALE, 3)) is state
    assert state.has_applied("SALE-7-1-3")


def test_damage_beyond_stock_is_clamped_and_counted() -> None:
    state = apply(seeded(4, reserved=3), change(DAMAGE, 6))
    assert state.stock(1) == WarehouseStock(0, 0, NOW_MS)
    assert state.clamped_units == 2
    state = apply(state, change(SALE, 5, change_id="late sale"))
    assert (state.on_hand, state.clamped_units) == (0, 7)


def test_the_memory_of_change_ids_is_bounded_and_forgets_the_oldest() -> None:
    state = seeded(0)
    for index in range(REMEMBERED_CHANGES + 10):
        state = apply(state, change(RESTOCK, 1, change_id=f"r{index}"))
    assert len(state.applied) == REMEMBERED_CHANGES
    assert state.applied[-1] == f"r{REMEMBERED_CHANGES + 9}"
    assert not state.has_applied("r9")
    assert state.has_applied("r10")
    assert state.on_hand == REMEMBERED_CHANGES + 10
    assert apply(state, change(RESTOCK, 1, change_id="one more"), remember=3).applied[-3:] == (
        f"r{REMEMBERED_CHANGES + 8}",
        f"r{REMEMBERED_CHANGES + 9}",
        "one more",
    )
    assert len(apply(state, change(RESTOCK, 1, change_id="one more"), remember=3).applied) == 3


def test_stock_never_goes_negative_under_random_changes_and_redeliveries() -> None:
    rng = random.Random(5)
    for _ in range(20):
        states: dict[str, StockState] = {}
        expected: Counter[tuple[int, int]] = Counter()
        seen: set[str] = set()
        for value in random_changes(rng, 400):
            sku, key = str(value["sku"]), (int(str(value["product_id"])), int(str(value["warehouse_id"])))
            before = states.get(sku)
            states[sku] = apply(before, value)
            if value["change_id"] in seen:
                assert states[sku] is before
                continue
            seen.add(str(value["change_id"]))
            expected[key] = max(0, expected[key] + int(str(value["delta"])))
            stock = states[sku].stock(key[1])
            assert stock.on_hand == expected[key] >= 0
            assert 0 <= stock.reserved <= stock.on_hand


def test_the_fold_of_a_shuffle_that_keeps_each_products_order_equals_the_fold_in_order() -> None:
    rng = random.Random(8)
    changes = random_changes(rng, 2_000, products=6)
    by_product: dict[object, list[dict[str, object]]] = {}
    for value in changes:
        by_product.setdefault(value["product_id"], []).append(value)
    queues = list(by_product.values())
    shuffled: list[dict[str, object]] = []
    while queues:  # interleave the products at random, each product's changes in their order
        queue = rng.choice(queues)
        shuffled.append(queue.pop(0))
        queues = [queue for queue in queues if queue]
    assert shuffled != changes
    start = {"SKU-000001": seeded(50, 5, product_id=1)}
    assert fold(shuffled, start) == fold(changes, start)


def test_a_sale_folded_before_changes_the_topic_puts_first_can_differ_from_the_fold() -> None:
    """Issue 5's drift (BOK-000014, seed 5), reduced: the agent folded its own SALEs when it decided them, before
    a DAMAGE and a RESTOCK the topic holds ahead of them; the DAMAGE found nothing left and was clamped, which the
    topic's order never does, so the table kept one unit more than the fold, and the fold shows no clamp."""
    opening = change(RESTOCK, 8, change_id="opening")
    damage, restock = change(DAMAGE, 1, change_id="damage"), change(RESTOCK, 28, change_id="restock")
    sales = [change(SALE, units, change_id=f"sale-{index}") for index, units in enumerate((2, 1, 3, 2))]
    topic = [opening, damage, restock, *sales]
    early = [opening, *sales, damage, restock]  # the order the agent folded them in
    in_order, folded_early = fold(topic)["SKU-000007"], fold(early)["SKU-000007"]
    assert (in_order.on_hand, in_order.clamped_units) == (27, 0)
    assert (folded_early.on_hand, folded_early.clamped_units) == (28, 1)


def test_fold_skips_invalid_changes_and_leaves_its_input_alone() -> None:
    start = {"SKU-000007": seeded(10)}
    bad = {**change(RESTOCK, 5), "delta": -5}
    folded = fold([bad, change(SALE, 4)], start)
    assert folded["SKU-000007"].on_hand == 6
    assert start["SKU-000007"].on_hand == 10


def test_a_state_survives_a_json_round_trip() -> None:
    state = fold(random_changes(random.Random(2), 500, products=1), {"SKU-000001": seeded(20, 4, product_id=1)})
    stored = state["SKU-000001"]
    assert StockState.from_dict(json.loads(json.dumps(stored.to_dict()))) == stored
    rows = json.loads(json.dumps(stored.to_dict()))["warehouses"]
    assert [row["warehouse_id"] for row in rows] == sorted(stored.warehouses)
    assert StockState.from_dict(seeded(3).to_dict()).stock(1).updated_ms is None


@pytest.mark.parametrize(
    "broken",
    [
        {"product_id": 0},
        {"warehouses": [{"warehouse_id": 1, "on_hand": 1, "reserved": 2, "updated_ms": None}]},
        {"warehouses": [{"warehouse_id": 1, "on_hand": -1, "reserved": 0, "updated_ms": None}]},
        {"applied": "c1"},
        {"clamped_units": None},
    ],
)
def test_a_malformed_stored_state_raises_inventory_error(broken: dict[str, object]) -> None:
    stored = seeded().to_dict()
    stored.update(broken)
    with pytest.raises(InventoryError):
        StockState.from_dict(stored)


def test_validate_change_names_what_is_wrong() -> None:
    assert validate_change(change(SALE, 1)) is None
    cases: dict[str, dict[str, object]] = {
        "delta": {"delta": 0},
        "change_type": {"change_type": "THEFT"},
        "product_id": {"product_id": -1},
        "warehouse_id": {"warehouse_id": 0},
        "change_id": {"change_id": ""},
        "sku": {"sku": None},
        "event_time": {"event_time": "now"},
    }
    for field, broken in cases.items():
        reason = validate_change({**change(SALE, 1), **broken})
        assert reason is not None
        assert field in reason, (field, reason)
    for kind in SIGN:
        wrong_sign = {**change(kind, 2), "delta": -SIGN[kind] * 2}
        assert f"of a {kind} change" in str(validate_change(wrong_sign))


def test_apply_refuses_invalid_changes_and_other_products() -> None:
    with pytest.raises(InventoryError, match="delta"):
        apply(seeded(), {**change(RESTOCK, 2), "delta": -2})
    with pytest.raises(InventoryError, match="product 8"):
        apply(seeded(), change(RESTOCK, 2, product_id=8))
    with pytest.raises(InventoryError):
        WarehouseStock(1, 2)


def test_validate_change_catches_exactly_the_generators_semantic_faults() -> None:
    events = make_generator(seed=6, p_bad_record=0.1, weight_inventory_chg=0.6)
    seen: Counter[tuple[str, bool]] = Counter()
    for event in events.next_batch(20_000, NOW_MS):
        if event.kind != INVENTORY_CHANGES:
            continue
        semantic = event.bad_kind in SEMANTIC_KINDS
        assert (validate_change(event.value) is not None) == semantic, event
        seen[str(event.value["change_type"]), semantic] += 1
    assert {kind for kind, semantic in seen if semantic} == {RESTOCK, DAMAGE}
    assert {kind for kind, semantic in seen if not semantic} == {RESTOCK, DAMAGE}  # RETURNs are the agents' only


def test_a_string_field_longer_than_any_event_holds_is_refused_by_its_length() -> None:
    from app.wire.fields import MAX_TEXT, InvalidValue, text

    assert text({"sku": "x" * MAX_TEXT}, "sku") == "x" * MAX_TEXT
    with pytest.raises(InvalidValue, match=f"sku: 1000000 characters, expected at most {MAX_TEXT}"):
        text({"sku": "x" * 1_000_000}, "sku")

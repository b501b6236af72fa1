"""Every check on a synthetic conforming run (all PASS), and on the run with one defect (exactly its check FAILs)."""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Callable

import pytest

from app.derivation import payment_id, return_change_id, sale_change_id, shipment_id
from app.truth import MinuteCounts
from app.verify import checks
from app.verify.checks import Evidence, evaluate
from app.verify.expectations import Expectations
from app.verify.observe import Record
from app.verify.results import FAIL, PASS, SKIP
from app.wire.headers import BAD_RECORD_HEADER as BAD_HEADER
from tests.unit.verify.support import START_MS, WAREHOUSES, SyntheticRun, settings_for

#: What a conforming synthetic run must PASS (not merely SKIP).
EVERY_CHECK = {
    *(f"mix.{kind}" for kind in ("orders", "interactions", "background_changes")),
    "bad_records.share",
    *(f"bad_records.kind.{kind}" for kind in ("undecodable", "unknown_schema_id", "wrong_magic_byte")),
    "late.share",
    "late.delays",
    "truth.equals_recount",
    "late.median",
    "records.readable",
    "records.keys",
    "records.derived_ids",
    *(f"orders.quantity.{units}" for units in range(1, 6)),
    "orders.from_carts",
    "orders.margin",
    "sessions.funnel",
    "sessions.cart_after_product_view",
    "payments.share",
    "payments.declined",
    *(f"payments.method.{method}" for method in ("CARD", "PAYPAL", "APPLE_PAY")),
    "payments.for_orders",
    "shipments.share",
    "shipments.for_accepted",
    "changes.background_kinds",
    "changes.sales",
    "changes.returns",
    "changes.returned_share",
    "references.user_id",
    "references.product_id",
    "references.warehouse_id",
    *(f"ids.{name}" for name in ("order_id", "payment_id", "shipment_id", "change_id", "interaction_id")),
    "stock.never_below_zero",
    "stock.postgres",
    "stock.worker",
    "stock.totals",
    "dead_letters.headers",
    "dead_letters.routing",
}


@pytest.fixture(scope="module")
def run(synthetic_run_factory: Callable[..., SyntheticRun]) -> SyntheticRun:
    return synthetic_run_factory()


def statuses(evidence: Evidence) -> dict[str, str]:
    return {result.name: result.status for result in evaluate(evidence)}


def failed(evidence: Evidence) -> set[str]:
    return {name for name, status in statuses(evidence).items() if status == FAIL}


def with_record(run: SyntheticRun, role: str, key: str, value: dict[str, object]) -> Evidence:
    """The run's evidence with one more record on ``role``'s topic (the stock holders as the run left them)."""
    planted = SyntheticRun(run.settings, events=0)
    planted.records = []
    record = dataclasses.replace(planted.emit(role, key, value), offset=10**6)
    return run.evidence(run.collect([*run.records, record]))


def with_change(run: SyntheticRun, change: dict[str, object]) -> Evidence:
    """The run's evidence with one more inventory change, which Postgres and the worker took too: only its relation
    to the other records can be wrong."""
    planted = with_record(run, "inventory_changes", str(change["product_id"]), change)
    folded = planted.seen.fold
    return dataclasses.replace(planted, stock=dataclasses.replace(planted.stock, postgres=folded, worker=folded))


def test_a_conforming_run_passes_every_check(run: SyntheticRun) -> None:
    found = statuses(run.evidence())
    assert {name: status for name, status in found.items() if status != PASS} == {}
    assert set(found) >= EVERY_CHECK


def _counts(orders: int, bad: int = 0) -> MinuteCounts:
    counts = MinuteCounts()
    for _ in range(orders):
        counts.add("orders.v1", "orders", {"quantity": 2, "amount": 300, "currency": "EUR"}, False, None)
    for _ in range(bad):
        counts.add("orders.v1", "orders", None, False, "undecodable")
    return counts


def _truth(run: SyntheticRun, told: dict, counted: dict) -> checks.CheckResult:
    evidence = dataclasses.replace(run.evidence(), truth=told, recount=counted)
    (result,) = checks.truth(evidence)
    assert result.name == "truth.equals_recount"
    assert evaluate(evidence)[-1] == result  # it runs with the others, last
    return result


def test_truth_that_equals_its_recount_passes(run: SyntheticRun) -> None:
    result = _truth(
        run, {(0, 0): (_counts(3, 1), True), (1, 0): (_counts(2), False)}, {(0, 0): _counts(3, 1), (1, 0): _counts(2)}
    )
    assert (result.status, result.n) == (PASS, 2)


def test_truth_that_differs_from_its_recount_fails(run: SyntheticRun) -> None:
    result = _truth(run, {(0, 0): (_counts(3), True)}, {(0, 0): _counts(3, 1)})
    assert result.status == FAIL
    assert "differ from a recount" in result.detail


def _payments(count: int) -> MinuteCounts:
    counts = MinuteCounts()
    for _ in range(count):
        counts.add_derived("payments.v1", "payments", {"status": "CAPTURED", "method": "CARD"})
    return counts


def test_an_agent_source_s_truth_is_compared_like_a_shard_s(run: SyntheticRun) -> None:
    source = "orders:5f0c2a9e41b7"
    told = {("0", 0): (_counts(1), True), (source, 0): (_payments(2), True)}
    assert _truth(run, told, {("0", 0): _counts(1), (source, 0): _payments(2)}).status == PASS
    result = _truth(run, told, {("0", 0): _counts(1), (source, 0): _payments(3)})
    assert result.status == FAIL
    assert f"source {source} at" in result.detail
    assert "payments" in result.detail


def test_truth_of_a_minute_with_no_records_fails(run: SyntheticRun) -> None:
    assert _truth(run, {(0, 0): (_counts(1), True)}, {}).status == FAIL


def test_a_counted_minute_before_the_last_published_one_needs_its_truth(run: SyntheticRun) -> None:
    result = _truth(run, {(0, 60_000): (_counts(1), True)}, {(0, 0): _counts(1), (0, 60_000): _counts(1)})
    assert result.status == FAIL
    assert "minute without truth" in result.detail


def test_minutes_after_the_last_published_one_are_open_not_missing(run: SyntheticRun) -> None:
    result = _truth(
        run, {(0, 0): (_counts(1), True)}, {(0, 0): _counts(1), (0, 60_000): _counts(4), (1, 0): _counts(1)}
    )
    assert result.status == PASS
    assert "2 minute(s) still open" in result.detail


def test_truth_not_read_is_a_skip_with_its_reason(run: SyntheticRun) -> None:
    evidence = dataclasses.replace(run.evidence(), truth=None, recount={}, truth_reason="TRUTH_ENABLED=false")
    (result,) = checks.truth(evidence)
    assert (result.status, result.detail) == (SKIP, "TRUTH_ENABLED=false")


def test_a_payment_of_an_order_that_does_not_exist(run: SyntheticRun) -> None:
    order_id = "00000000-0000-4000-8000-000000000001"
    payment = {
        "payment_id": payment_id(order_id, 1),
        "order_id": order_id,
        "attempt": 1,
        "method": "CARD",
        "status": "CAPTURED",
        "amount": 250,
        "currency": "USD",
        "event_time": START_MS,
    }
    assert failed(with_record(run, "payments", order_id, payment)) == {"payments.for_orders"}


def test_a_shipment_of_a_declined_order(run: SyntheticRun) -> None:
    declined = next(value for record in run.records if (value := _value(record)).get("status") == "DECLINED")
    order_id = str(declined["order_id"])
    shipment = {
        "shipment_id": shipment_id(order_id),
        "order_id": order_id,
        "warehouse_id": 1,
        "carrier": "UPS",
        "eta": START_MS,
        "event_time": START_MS,
    }
    assert failed(with_record(run, "shipments", order_id, shipment)) == {"shipments.for_accepted"}


def test_an_id_with_two_contents_and_a_byte_identical_copy(run: SyntheticRun) -> None:
    original = next(record for record in run.records if record.topic == run.topics["orders"] and _value(record))
    changed = {**_value(original), "event_time": _value(original)["event_time"] + 1}
    assert failed(with_record(run, "orders", changed["order_id"], changed)) == {"ids.order_id"}
    copy = dataclasses.replace(original, offset=10**6)
    evidence = run.evidence(run.collect([*run.records, copy]))
    assert failed(evidence) == set()
    assert "1 byte-identical copies" in next(r.detail for r in evaluate(evidence) if r.name == "ids.order_id")


def test_an_order_of_a_product_no_table_holds(run: SyntheticRun) -> None:
    order = {
        "order_id": "00000000-0000-4000-8000-000000000002",
        "user_id": 1,
        "product_id": 999,
        "sku": "SKU-999",
        "quantity": 1,
        "unit_price": 250,
        "amount": 250,
        "currency": "USD",
        "session_id": None,
        "event_time": START_MS,
    }
    assert failed(with_record(run, "orders", str(order["order_id"]), order)) == {"references.product_id"}
    wrong_sku = {**order, "order_id": "00000000-0000-4000-8000-000000000003", "product_id": 1}
    assert failed(with_record(run, "orders", str(wrong_sku["order_id"]), wrong_sku)) == {"references.product_id"}


def test_a_user_or_warehouse_no_table_holds(run: SyntheticRun) -> None:
    evidence = run.evidence()
    fewer_users = dataclasses.replace(evidence.reference, users=evidence.reference.users - {1})
    assert failed(dataclasses.replace(evidence, reference=fewer_users)) == {"references.user_id"}
    fewer_warehouses = dataclasses.replace(evidence.reference, warehouses=frozenset({1, 2}))
    assert failed(dataclasses.replace(evidence, reference=fewer_warehouses)) == {"references.warehouse_id"}


def test_stock_that_disagrees_with_the_ledger(run: SyntheticRun) -> None:
    place = next(iter(run.fold))
    assert failed(run.evidence(postgres={**run.fold, place: run.fold[place] + 7})) == {"stock.postgres"}
    assert failed(run.evidence(worker={**run.fold, place: run.fold[place] - 1})) == {"stock.worker"}
    assert failed(run.evidence(totals_wrong=["product 1: on hand 5 != 4"])) == {"stock.totals"}


def test_a_difference_while_the_stock_moves_is_skipped_not_failed(run: SyntheticRun) -> None:
    place = next(iter(run.fold))
    evidence = run.evidence(postgres={**run.fold, place: 0}, moving="the topic grew by 3 records")
    assert statuses(evidence)["stock.postgres"] == SKIP
    assert statuses(run.evidence(moving="the topic grew by 3 records"))["stock.postgres"] == PASS


def test_holders_not_read_are_skipped_with_the_reason(run: SyntheticRun) -> None:
    evidence = run.evidence(worker=None, worker_reason="GET http://127.0.0.1:6066/inventory/ did not answer")
    result = next(result for result in evaluate(evidence) if result.name == "stock.worker")
    assert (result.status, result.detail) == (SKIP, "GET http://127.0.0.1:6066/inventory/ did not answer")


def test_another_probability_than_the_run_was_made_with(run: SyntheticRun) -> None:
    evidence = run.evidence()
    claimed = Expectations.from_settings(settings_for(P_ORDER_HAS_PAYMENT="0.95"))
    assert failed(dataclasses.replace(evidence, expected=claimed)) == {"payments.share"}
    claimed = Expectations.from_settings(settings_for(WEIGHT_ORDERS="0.7", WEIGHT_INTERACTIONS="0.2"))
    assert failed(dataclasses.replace(evidence, expected=claimed)) == {"mix.orders", "mix.interactions"}
    claimed = Expectations.from_settings(settings_for(P_LATE_EVENT="0.1"))
    assert failed(dataclasses.replace(evidence, expected=claimed)) == {"late.share"}
    claimed = Expectations.from_settings(settings_for(P_BAD_RECORD="0.03"))
    assert failed(dataclasses.replace(evidence, expected=claimed)) == {"bad_records.share"}
    claimed = Expectations.from_settings(settings_for(P_UPDATE_INVENTORY="0.1"))
    assert failed(dataclasses.replace(evidence, expected=claimed)) == {"changes.returned_share"}


def test_a_bad_record_not_dead_lettered_and_a_dead_letter_without_its_headers(run: SyntheticRun) -> None:
    letters = [record for record in run.records if record.topic == run.topics["dead_letter"]]
    without_first = [record for record in run.records if record is not letters[0]]
    assert failed(run.evidence(run.collect(without_first))) == {"dead_letters.routing"}
    stripped = dataclasses.replace(letters[0], headers={BAD_HEADER: letters[0].headers[BAD_HEADER]})
    replaced = [stripped if record is letters[0] else record for record in run.records]
    assert failed(run.evidence(run.collect(replaced))) == {"dead_letters.headers", "dead_letters.routing"}


def test_a_record_keyed_otherwise_than_the_docs_say(run: SyntheticRun) -> None:
    original = next(record for record in run.records if record.topic == run.topics["payments"])
    rekeyed = [dataclasses.replace(r, key=b"other") if r is original else r for r in run.records]
    assert failed(run.evidence(run.collect(rekeyed))) == {"records.keys"}


def test_a_sale_of_an_order_not_shipped_and_a_late_delay_out_of_range(run: SyntheticRun) -> None:
    unshipped = next(value for record in run.records if (value := _value(record)).get("status") == "DECLINED")
    sale = {
        "change_id": sale_change_id(str(unshipped["order_id"])),
        "product_id": 1,
        "sku": "SKU-1",
        "warehouse_id": 1,
        "change_type": "SALE",
        "delta": -1,
        "source_id": unshipped["order_id"],
        "event_time": START_MS,
    }
    assert failed(with_change(run, sale)) == {"changes.sales"}
    order = {
        "order_id": "00000000-0000-4000-8000-000000000005",
        "user_id": 1,
        "product_id": 1,
        "sku": "SKU-1",
        "quantity": 1,
        "unit_price": 250,
        "amount": 250,
        "currency": "USD",
        "session_id": None,
        "event_time": START_MS - 3_600_000,
    }  # an hour late
    assert failed(with_record(run, "orders", str(order["order_id"]), order)) == {"late.delays"}


def _unreturned_shipment(run: SyntheticRun) -> tuple[dict[str, object], dict[str, object]]:
    """A shipped order the run did not return, and its shipment."""
    values = [_value(record) for record in run.records]
    orders = {value["order_id"]: value for value in values if "quantity" in value}
    returned = {value["source_id"] for value in values if value.get("change_type") == "RETURN"}
    shipment = next(value for value in values if "carrier" in value and value["order_id"] not in returned)
    return orders[shipment["order_id"]], shipment


def test_a_background_return_of_a_shipped_order(run: SyntheticRun) -> None:
    order, shipment = _unreturned_shipment(run)
    change = {
        "change_id": "00000000-0000-4000-8000-00000000000a",  # the generator's kind of id
        "product_id": order["product_id"],
        "sku": order["sku"],
        "warehouse_id": shipment["warehouse_id"],
        "change_type": "RETURN",
        "delta": 1,
        "source_id": order["order_id"],
        "event_time": START_MS,
    }
    assert failed(with_change(run, change)) == {"changes.background_kinds"}


def test_a_return_to_another_warehouse_than_the_shipments(run: SyntheticRun) -> None:
    order, shipment = _unreturned_shipment(run)
    change = {
        "change_id": return_change_id(str(order["order_id"])),
        "product_id": order["product_id"],
        "sku": order["sku"],
        "warehouse_id": next(w for w in WAREHOUSES if w != shipment["warehouse_id"]),
        "change_type": "RETURN",
        "delta": 1,
        "source_id": order["order_id"],
        "event_time": START_MS,
    }
    assert failed(with_change(run, change)) == {"changes.returns"}


def test_with_the_agents_off_a_background_return_still_fails(
    synthetic_run_factory: Callable[..., SyntheticRun],
) -> None:
    """Nothing ships, so nothing may come back; the mix of this run of openings only is not judged here."""
    run = synthetic_run_factory(AGENTS_ENABLED="false", events=0)
    change = {
        "change_id": "00000000-0000-4000-8000-00000000000b",
        "product_id": 1,
        "sku": "SKU-1",
        "warehouse_id": 1,
        "change_type": "RETURN",
        "delta": 1,
        "source_id": None,
        "event_time": START_MS,
    }
    assert statuses(run.evidence())["changes.background_kinds"] == SKIP  # the opening balances are no background
    found = statuses(with_change(run, change))
    assert (found["changes.background_kinds"], found["changes"]) == (FAIL, SKIP)


def test_with_the_agents_off_their_checks_are_skipped(synthetic_run_factory: Callable[..., SyntheticRun]) -> None:
    run = synthetic_run_factory(AGENTS_ENABLED="false", events=0)
    found = statuses(run.evidence())
    for name in ("payments", "shipments", "changes", "stock"):
        assert found[name] == SKIP


def test_too_small_a_run_is_skipped_not_passed(synthetic_run_factory: Callable[..., SyntheticRun]) -> None:
    run = synthetic_run_factory(events=40)
    found = statuses(run.evidence())
    assert found["bad_records.kind.undecodable"] == SKIP
    assert found["orders.quantity.5"] == SKIP
    assert FAIL not in found.values()


def _value(record: Record) -> dict[str, object]:
    try:
        value = json.loads(record.value or b"")
    except ValueError:
        return {}
    return value if isinstance(value, dict) else {}


def test_the_margin_is_price_less_cost_per_unit_and_an_order_below_cost_fails(run: SyntheticRun) -> None:
    evidence = run.evidence()
    (margin,) = [result for result in checks.orders(evidence) if result.name == "orders.margin"]
    units = sum(order.quantity for order in evidence.seen.orders.values())
    assert margin.status == PASS
    assert margin.n == len(evidence.seen.orders)
    assert f"margin {units * 70 / 100:,.2f} USD" in margin.detail  # 250 - 180 cents a unit
    cheaper = {product: 251 for product in evidence.reference.costs}  # every order now sells a cent below cost
    below = dataclasses.replace(evidence, reference=dataclasses.replace(evidence.reference, costs=cheaper))
    (margin,) = [result for result in checks.orders(below) if result.name == "orders.margin"]
    assert margin.status == FAIL
    assert margin.observed == len(evidence.seen.orders)
    assert "priced below its product's cost" in margin.detail

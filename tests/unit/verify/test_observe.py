"""The collector: one pass over records into plain data; bad records counted by kind and never decoded."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from agents.requests import ORDER
from app.derivation import return_change_id, sale_change_id
from app.verify.observe import Collector, epoch_ms, is_generated_id
from app.wire.headers import BAD_RECORD_HEADER as BAD_HEADER
from app.wire.headers import REQUEST_KIND_HEADER as KIND_HEADER
from tests.unit.verify.support import START_MS, SyntheticRun, decode_json

ROOT = Path(__file__).resolve().parents[3]
ORDER_ID = "9d5c3c1e-1b9e-4a2f-8f0e-3c2b1a0d9e8f"


def order(**fields: object) -> dict[str, object]:
    value: dict[str, object] = {
        "order_id": ORDER_ID,
        "user_id": 1,
        "product_id": 7,
        "sku": "SKU-7",
        "quantity": 2,
        "unit_price": 250,
        "amount": 500,
        "currency": "USD",
        "session_id": None,
        "event_time": START_MS,
    }
    return {**value, **fields}


def empty_run() -> SyntheticRun:
    return SyntheticRun(events=0)


def test_the_pure_parts_import_no_io_library() -> None:
    modules = "app.verify.checks, app.verify.observe, app.verify.relations, app.verify.shares, app.verify.expectations"
    probe = f"import sys, {modules}; print(' '.join(sorted(sys.modules)))"
    run = subprocess.run([sys.executable, "-c", probe], check=True, capture_output=True, text=True, cwd=ROOT)
    loaded = {name.split(".")[0] for name in run.stdout.split()}
    assert not loaded & {"faust", "confluent_kafka", "aiopg", "psycopg2", "fastavro", "aiohttp", "pydantic", "httpx"}


def test_timestamps_are_exact_milliseconds() -> None:
    from datetime import UTC, datetime

    moment = datetime(2023, 11, 14, 22, 13, 20, 123_000, tzinfo=UTC)
    assert epoch_ms(moment) == 1_700_000_000_123
    assert epoch_ms(1_700_000_000_123) == 1_700_000_000_123


def test_generated_ids_are_version_4_and_derived_ones_version_5() -> None:
    assert is_generated_id(ORDER_ID)
    assert not is_generated_id(sale_change_id(ORDER_ID))
    assert not is_generated_id("opening-1-2")


def test_bad_records_are_counted_by_kind_and_never_decoded() -> None:
    run = empty_run()
    decoded: list[bytes | None] = []

    def decode(topic: str, raw: bytes | None) -> tuple[dict | None, str]:
        decoded.append(raw)
        return decode_json(topic, raw)  # type: ignore[return-value]

    run.emit("orders", b"x", b"\x00\x00", headers={BAD_HEADER: b"truncated_body"})
    run.emit("customer_interactions", b"y", b"\x07", headers={BAD_HEADER: b"wrong_magic_byte"})
    collector = Collector(run.expected, decode)
    for record in run.records:
        collector.add(record)
    seen = collector.observations
    assert [raw for raw in decoded if raw in (b"\x00\x00", b"\x07")] == []
    assert seen.bad_kinds == {"truncated_body": 1, "wrong_magic_byte": 1}
    assert seen.generated["orders"] == 1
    assert seen.bad_consumed == {(run.topics["orders"], 0, 0)}  # the agents consume orders: to be dead-lettered


def test_a_good_record_that_does_not_decode_or_is_invalid_is_unreadable() -> None:
    run = empty_run()
    run.emit("orders", ORDER_ID, b"not json")
    run.emit("orders", "o-2", order(order_id="o-2", amount=499))
    seen = run.collect().observations
    assert seen.unreadable.total == 2
    assert seen.orders == {}


def test_copies_of_an_id_count_when_identical_and_are_problems_when_they_differ() -> None:
    run = empty_run()
    run.emit("orders", ORDER_ID, order())
    run.emit("orders", ORDER_ID, order())
    run.emit("orders", ORDER_ID, order(event_time=START_MS + 1))
    seen = run.collect().observations
    assert seen.copies["order_id"] == 1
    assert seen.conflicts["order_id"].counts == {"ids with two contents": 1}
    assert seen.quantities == {"2": 1}  # an id is counted once


def test_lateness_is_the_record_timestamp_minus_the_event_time() -> None:
    run = empty_run()
    run.emit("orders", "o-1", order(order_id="o-1"), timestamp_ms=START_MS)
    run.emit("orders", "o-2", order(order_id="o-2"), timestamp_ms=START_MS + 5_000)
    run.emit("orders", "o-3", order(order_id="o-3"), timestamp_ms=START_MS + 25_000)
    run.emit("orders", "o-4", order(order_id="o-4"), timestamp_ms=START_MS + 500)  # too little to be late
    seen = run.collect().observations
    assert (seen.late_sample, seen.late, seen.late_below_median) == (4, 3, 2)
    assert seen.late_delays_wrong.counts == {"delay outside 1,000-600,000 ms": 1}


def interaction(index: int, kind: str, product_id: int | None = None, term: str | None = None, user_id: int = 3):
    return {
        "interaction_id": f"i{index}",
        "session_id": "s1",
        "user_id": user_id,
        "product_id": product_id,
        "interaction_type": kind,
        "search_term": term,
        "event_time": START_MS,
    }


def test_the_funnel_is_followed_session_by_session() -> None:
    run = empty_run()
    steps = [
        ("PAGE_VIEW", None, None),
        ("SEARCH", None, "lamp"),
        ("PAGE_VIEW", 7, None),
        ("CART_ADD", 7, None),
        ("SEARCH", None, "desk"),
        ("PAGE_VIEW", 8, None),
        ("SEARCH", None, "chair"),
    ]
    for index, (kind, product_id, term) in enumerate(steps):
        run.emit("customer_interactions", "s1", interaction(index, kind, product_id, term))
    seen = run.collect().observations
    assert seen.funnel.total == 0
    assert (seen.after_product_view, seen.cart_after_product_view) == (2, 1)
    assert seen.carts == {("s1", 3, 7)}


def test_a_step_out_of_the_funnel_is_a_problem() -> None:
    def problems(*steps: dict[str, object]) -> dict[str, int]:
        run = empty_run()
        for step in steps:
            run.emit("customer_interactions", "s1", step)
        return dict(run.collect().observations.funnel.counts)

    landing, search = interaction(0, "PAGE_VIEW"), interaction(1, "SEARCH", term="lamp")
    assert problems(landing, interaction(1, "CART_ADD", 7)) == {"cart add after landing page view": 1}
    assert problems(search) == {"search after nothing (a session must start with a landing page view)": 1}
    assert problems(landing, interaction(1, "SEARCH")) == {"search without a term": 1}
    assert problems(landing, interaction(1, "SEARCH", term="x", user_id=4)) == {"a session with two users": 1}
    viewed = interaction(2, "PAGE_VIEW", 7)
    assert problems(landing, search, viewed, interaction(3, "CART_ADD", 8)) == {
        "cart add of another product than the page viewed": 1
    }


def test_changes_are_classified_and_folded_once_per_id() -> None:
    run = empty_run()  # the opening balances: 1,000 of every product in every warehouse
    sale = sale_change_id(ORDER_ID)
    run._change(sale, 7, 1, "SALE", -2, ORDER_ID)
    run.records.append(run.records[-1])  # a byte-identical redelivery: folded once
    run._change(return_change_id(ORDER_ID), 7, 1, "RETURN", 1, ORDER_ID)
    run._change("opening-7-1", 7, 1, "RESTOCK", 5)  # a second opening of (7, 1) with other contents
    seen = run.collect().observations
    assert seen.fold[(7, 1)] == 1_000 - 2 + 1
    assert set(seen.sales) == {sale}
    assert set(seen.returns) == {return_change_id(ORDER_ID)}
    assert seen.change_kinds["opening RESTOCK"] == 60
    assert seen.copies["change_id"] == 1
    assert seen.conflicts["change_id"].total == 1


def test_background_changes_are_counted_and_a_background_return_is_a_problem() -> None:
    run = empty_run()
    run._change("00000000-0000-4000-8000-0000000000a1", 7, 1, "RESTOCK", 5)  # the generator's ids are uuid4
    run._change("00000000-0000-4000-8000-0000000000a2", 7, 1, "DAMAGE", -1)
    run._change("00000000-0000-4000-8000-0000000000a3", 7, 1, "RETURN", 1, ORDER_ID)
    seen = run.collect().observations
    assert seen.background_changes == 3
    assert seen.background_kinds.counts == {"background RETURN": 1}
    assert seen.returns == {}  # not one of the agents' returns: its id is not derived from the order


def test_stock_below_zero_on_the_topic_is_a_problem() -> None:
    run = empty_run()
    run._change(sale_change_id(ORDER_ID), 7, 1, "SALE", -1_001, ORDER_ID)
    assert run.collect().observations.below_zero.total == 1


def test_the_requests_topic_counts_only_the_generators_background_changes() -> None:
    run = empty_run()
    run.emit("requests", "7", b"{}", headers={KIND_HEADER: ORDER.encode()})
    run.emit("requests", "7", b"\x01", headers={BAD_HEADER: b"undecodable"})  # no kind header: a change
    seen = run.collect().observations
    assert seen.generated["background_changes"] == 1
    assert seen.bad_kinds == {"undecodable": 1}
    assert seen.bad_consumed == {(run.expected.requests_topic, 0, 1)}


def test_dead_letters_are_read_by_their_headers() -> None:
    run = empty_run()
    bad = run.emit("orders", b"k", b"\x01", headers={BAD_HEADER: b"undecodable"})
    run.dead_letter(bad, "magic byte 1")
    run.emit("dead_letter", b"k", b"\x01", headers={BAD_HEADER: b"undecodable"})  # no source headers
    letters = run.collect().observations.dead_letters
    assert letters.count == 2
    assert letters.sources == {(run.topics["orders"], 0, 0)}
    assert letters.kinds == {"undecodable": 2}
    assert letters.headers_missing.total == 1

"""P_DUPLICATE: the share of generated records sent twice, the copy byte for byte with the duplicate header; the
agents decide the record once; verify counts the copies apart and checks their share."""

from __future__ import annotations

import asyncio
import dataclasses
import random
from collections import Counter
from collections.abc import Callable
from types import SimpleNamespace
from typing import Any

import pytest

from agents.generation import Generation
from agents.orders import OrdersAgent
from app.generation import EventGenerator
from app.settings import load_settings
from app.stats import EmissionStats
from app.truth import MinuteCounts
from app.verify.checks import evaluate
from app.verify.observe import Record
from app.verify.results import FAIL, PASS
from app.wire.headers import DUPLICATE_HEADER
from tests.unit.generation.support import assert_share
from tests.unit.support import RecordingProducer
from tests.unit.verify.support import SyntheticRun


def test_the_share_of_events_marked_duplicate_is_p_duplicate(generator_factory: Callable[..., EventGenerator]) -> None:
    events = generator_factory(seed=11, p_duplicate=0.05).next_batch(40_000, 1_700_000_000_000)
    assert_share(sum(event.duplicate for event in events), len(events), 0.05, "events sent twice")


def test_no_event_is_marked_duplicate_by_default_and_the_stream_is_unchanged(
    generator_factory: Callable[..., EventGenerator],
) -> None:
    plain = generator_factory(seed=11).next_batch(5_000, 1_700_000_000_000)
    zero = generator_factory(seed=11, p_duplicate=0.0).next_batch(5_000, 1_700_000_000_000)
    assert not any(event.duplicate for event in plain)
    assert plain == zero


def test_the_copy_has_the_same_key_and_value_bytes_and_the_duplicate_header() -> None:
    producer = RecordingProducer()
    generation = Generation(load_settings({}), None, producer, EmissionStats())  # type: ignore[arg-type]
    original = ("orders.v1", b"order-1", b"\x00\x00\x00\x00\x01avro", 1_000, [("x-datagen-shard", b"2")])
    assert asyncio.run(generation._duplicate(original))
    ((topic, key, value, timestamp, headers),) = producer.sent
    assert (topic, key, value, timestamp) == original[:4]
    assert headers == [("x-datagen-shard", b"2"), (DUPLICATE_HEADER, b"1")]
    assert original[4] == [("x-datagen-shard", b"2")]  # the original's headers are not touched


def test_a_copy_counts_in_records_and_duplicates_only() -> None:
    counts = MinuteCounts()
    counts.add("orders.v1", "orders", {"quantity": 2, "amount": 100, "currency": "EUR"}, False, None)
    counts.add_duplicate("orders.v1")
    assert (counts.records["orders.v1"], counts.duplicates, counts.orders, counts.units_ordered) == (2, 1, 1, 2)
    counts.add_duplicate("orders.v1", n=-1)
    assert (counts.records["orders.v1"], counts.duplicates) == (1, 0)


@pytest.mark.parametrize("headers", [[(DUPLICATE_HEADER, b"1")], {DUPLICATE_HEADER: b"1"}])
def test_the_orders_agent_decides_a_copy_not_at_all(headers: Any) -> None:
    counts: Counter[str] = Counter()
    agent = OrdersAgent(None, None, None, {}, "requests", None, counts, lambda: False)  # type: ignore[arg-type]
    event = SimpleNamespace(message=SimpleNamespace(headers=headers))
    asyncio.run(agent.take(event))  # type: ignore[arg-type]  # the intake (None here) is never reached
    assert counts == {"duplicates skipped": 1}


def with_copies(run: SyntheticRun, share: float) -> list[Record]:
    """The run's records with a copy (the duplicate header) after ``share`` of its generated ones."""
    rng = random.Random(3)
    generated = {run.topics["orders"], run.topics["customer_interactions"]}
    records: list[Record] = []
    for record in run.records:
        records.append(record)
        if record.topic in generated and rng.random() < share:
            records.append(dataclasses.replace(record, headers={**record.headers, DUPLICATE_HEADER: b"1"}))
    return records


def verdicts(run: SyntheticRun, records: list[Record]) -> dict[str, str]:
    evidence = run.evidence(run.collect(records))
    return {result.name: result.status for result in evaluate(evidence)}


def test_verify_counts_copies_apart_and_checks_their_share(synthetic_run_factory: Callable[..., SyntheticRun]) -> None:
    run = synthetic_run_factory(P_DUPLICATE="0.05")
    found = verdicts(run, with_copies(run, 0.05))
    assert {name: status for name, status in found.items() if status != PASS} == {}
    assert found["duplicates.share"] == PASS
    assert verdicts(run, with_copies(run, 0.15))["duplicates.share"] == FAIL


def test_verify_fails_copies_nobody_asked_for(synthetic_run_factory: Callable[..., SyntheticRun]) -> None:
    run = synthetic_run_factory()
    assert verdicts(run, run.records)["duplicates.share"] == PASS
    assert verdicts(run, with_copies(run, 0.01))["duplicates.share"] == FAIL

"""The consumer that hands records to the streams without a task race per record: pinned, installed, same loop."""

from __future__ import annotations

import asyncio
import hashlib
import inspect
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable
from dataclasses import dataclass, field
from typing import Any, cast

import faust
import pytest
from aiokafka import AIOKafkaConsumer  # type: ignore[import-untyped]
from aiokafka import __version__ as aiokafka_version
from faust.tables import TableManager
from faust.tables.recovery import Recovery
from faust.transport.consumer import Consumer as FaustConsumer
from faust.transport.drivers import aiokafka
from faust.types import TP, Message
from faust.types.tuples import ConsumerMessage
from mode import Service

from app.fast_consumer import FastDrainConsumer, FastDrainTransport, SeekFirstRecovery
from app.main import create_app
from app.settings import load_settings

#: sha256 of ``inspect.getsource(faust.transport.consumer.Consumer._drain_messages)`` in faust-streaming 0.15.3.
DRAIN_MESSAGES_0_15_3 = "44a2500309e83c630493f6828af50166ec8d96a0b3e4fb2bab735f704ae93417"
RECHECK = (
    "faust's Consumer._drain_messages is not the 0.15.3 one that app/fast_consumer.py copies: re-check the "
    "override against the installed source, port what changed, then record the new hash here"
)

T0, T1 = TP("orders", 0), TP("orders", 1)


def test_the_overridden_faust_loop_is_still_the_one_copied() -> None:
    source = inspect.getsource(FaustConsumer._drain_messages)
    assert faust.__version__ == "0.15.3", RECHECK
    assert hashlib.sha256(source.encode()).hexdigest() == DRAIN_MESSAGES_0_15_3, RECHECK
    assert aiokafka.Consumer._drain_messages is FaustConsumer._drain_messages, RECHECK


async def test_the_app_consumes_through_the_fast_consumer_without_starting() -> None:
    app = create_app(load_settings({}))
    assert isinstance(app.transport, FastDrainTransport)
    assert app.transport.Consumer is FastDrainConsumer
    assert type(app.consumer) is FastDrainConsumer  # Faust's own _new_consumer, as the worker builds it
    assert not app.started
    assert not app.consumer.started


def record(tp: TP, offset: int) -> ConsumerMessage:
    return ConsumerMessage(tp.topic, tp.partition, offset, 0.0, 0, [], b"key", b"value", None, tp=tp, generation_id=0)


@dataclass
class Drain:
    """One run of a drain loop over fixed batches of records, without a broker, and what it did."""

    app: faust.App
    consumer: FastDrainConsumer
    delivered: list[tuple[TP, int]] = field(default_factory=list)
    raced: int = 0
    commits: int = 0

    async def run(
        self,
        batches: Iterable[list[tuple[TP, int]]],
        loop: Callable[..., Awaitable[None]] = FastDrainConsumer._drain_messages,
    ) -> None:
        fetcher = Service()
        pending = list(batches)

        async def getmany(timeout: float) -> AsyncIterator[tuple[TP, Message]]:
            batch = pending.pop(0)
            if not pending:
                fetcher._stopped.set()  # read before the next fetch, whether or not this batch is iterated to its end
            for tp, offset in batch:
                yield tp, record(tp, offset)

        self.consumer.getmany = getmany  # type: ignore[method-assign]
        await asyncio.wait_for(loop(self.consumer, fetcher), timeout=10)


@pytest.fixture
def drain_factory() -> Callable[..., Drain]:
    """A drain over a fresh app's consumer whose callback records each record it receives, and acks it."""

    def make(*, flow: bool = True, on_record: Callable[[Drain, Message], None] | None = None) -> Drain:
        app = create_app(load_settings({}))
        drain: Drain

        async def callback(message: Message) -> None:
            drain.delivered.append((message.tp, message.offset))
            drain.consumer._n_acked += 1
            if on_record is not None:
                on_record(drain, message)

        consumer = app.transport.create_consumer(
            callback=callback, on_partitions_revoked=None, on_partitions_assigned=None
        )
        assert isinstance(consumer, FastDrainConsumer)
        drain = Drain(app, consumer)

        async def wait_first(*coros: Any, **kwargs: Any) -> Any:
            drain.raced += 1
            return await Service.wait_first(consumer, *coros, **kwargs)

        async def commit(*args: Any, **kwargs: Any) -> bool:
            drain.commits += 1
            return True

        consumer.wait_first = wait_first  # type: ignore[method-assign]
        consumer.commit = commit  # type: ignore[method-assign]
        if flow:
            app.flow_control.resume()  # what recovery does once the partitions are assigned
        return drain

    return make


async def test_while_the_flow_runs_every_record_is_delivered_in_order_without_a_race(
    drain_factory: Callable[..., Drain],
) -> None:
    drain = drain_factory()
    batches = [[(T0, 0), (T1, 0), (T0, 1), (T1, 1)], [(T0, 2), (T1, 2)]]
    await drain.run(batches)
    assert drain.delivered == [pair for batch in batches for pair in batch]
    assert drain.raced == 0
    assert dict(drain.consumer._read_offset) == {T0: 2, T1: 2}


async def test_while_the_streams_are_suspended_each_record_is_raced_against_a_rebalance(
    drain_factory: Callable[..., Drain],
) -> None:
    drain = drain_factory(flow=False)  # the app's flow control starts suspended, as before the first assignment
    await drain.run([[(T0, 0), (T0, 1), (T0, 2)]])
    assert drain.raced == 3
    assert drain.delivered == [(T0, 0), (T0, 1), (T0, 2)]
    assert drain.consumer._read_offset[T0] == 2


async def test_once_the_consumer_stops_its_flow_each_record_is_raced(drain_factory: Callable[..., Drain]) -> None:
    drain = drain_factory()
    drain.consumer.stop_flow()  # what a revocation does first
    await drain.run([[(T0, 0), (T0, 1)]])
    assert drain.raced == 2
    assert drain.consumer._read_offset[T0] == 1


async def test_a_rebalance_during_a_hand_off_leaves_the_read_offset_to_its_seek(
    drain_factory: Callable[..., Drain],
) -> None:
    def rebalance_at_offset_1(drain: Drain, message: Message) -> None:
        if message.offset == 1:
            drain.app.consumer_generation_id += 1

    drain = drain_factory(on_record=rebalance_at_offset_1)
    await drain.run([[(T0, 0), (T0, 1)]])
    assert drain.delivered == [(T0, 0), (T0, 1)]
    assert drain.consumer._read_offset[T0] == 0


async def bookkeeping(drain: Drain, loop: Callable[..., Awaitable[None]], monkeypatch: pytest.MonkeyPatch) -> tuple:
    """Run ``loop`` over records that exercise drops, commits and yields, and return what it did."""
    # T0 starts at read offset 3: 1 and 2 are dropped, 3 and 4 delivered.
    batches = [[(T0, 1), (T0, 2), (T0, 3), (T0, 4)], [(T1, offset) for offset in range(250)]]
    drain.consumer._read_offset[T0] = 3
    drain.consumer._commit_every = 40
    monkeypatch.setattr(drain.app.topics, "acks_enabled_for", lambda topic: True)
    sleep = asyncio.sleep
    yields = 0

    async def counting_sleep(delay: float, *args: Any) -> Any:
        nonlocal yields
        yields += delay == 0
        return await sleep(delay, *args)

    with monkeypatch.context() as patched:
        patched.setattr(asyncio, "sleep", counting_sleep)
        await drain.run(batches, loop)
    return drain.delivered, dict(drain.consumer._read_offset), drain.commits, yields


async def test_the_loop_keeps_fausts_bookkeeping(
    drain_factory: Callable[..., Drain], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Drops below the read offset, commits every N acks and yields every 100 records, as Faust's loop."""
    faust_outcome = await bookkeeping(drain_factory(), FaustConsumer._drain_messages, monkeypatch)
    fast_outcome = await bookkeeping(drain_factory(), FastDrainConsumer._drain_messages, monkeypatch)
    assert fast_outcome == faust_outcome
    delivered, read_offsets, commits, yields = fast_outcome
    assert delivered[:2] == [(T0, 3), (T0, 4)]
    assert len(delivered) == 252
    assert read_offsets == {T0: 4, T1: 249}
    assert commits == 6  # 252 acks, counted from zero each time the count reaches 40
    assert yields == 2  # after the 101st and the 202nd record


@pytest.fixture
def acked(monkeypatch: pytest.MonkeyPatch) -> Callable[..., Drain]:
    """Make the drain's topics acknowledged ones, as the agents' topics are (changelogs are not), its partitions
    T0 and T1 assigned, and record its seeks (``failing``: each seek raises, as when the broker is gone)."""

    def make(drain: Drain, *, topics: frozenset[str] = frozenset({"orders"}), failing: bool = False) -> Drain:
        monkeypatch.setattr(drain.app.topics, "acks_enabled_for", lambda topic: topic in topics)
        monkeypatch.setattr(drain.consumer, "assignment", lambda: {T0, T1})
        drain.seeks = []  # type: ignore[attr-defined]

        async def seek_wait(partitions: dict[TP, int]) -> None:
            if failing:
                raise ConnectionError("the broker is gone")
            drain.seeks.extend(partitions.items())  # type: ignore[attr-defined]

        monkeypatch.setattr(drain.consumer, "seek_wait", seek_wait)
        return drain

    return make


async def test_faust_takes_a_jump_in_the_offsets_for_acknowledged_records(drain_factory: Callable[..., Drain]) -> None:
    """What the override guards against: Faust's loop counts 5 and 6, never handed over, and 7, being handed over,
    as acknowledged, so a commit can pass them."""
    drain = drain_factory()
    drain.app.topics.acks_enabled_for = lambda topic: True  # type: ignore[method-assign]
    drain.consumer._read_offset[T0] = 4
    await drain.run([[(T0, 7)]], FaustConsumer._drain_messages)
    assert [(gap.begin, gap.end) for gap in drain.consumer._gap[T0]] == [(5, 8)]


async def test_a_first_jump_in_the_offsets_is_fetched_again_from_the_read_offset(
    drain_factory: Callable[..., Drain], acked: Callable[..., Drain]
) -> None:
    drain = acked(drain_factory())
    drain.consumer._read_offset[T0] = 4
    await drain.run([[(T0, 7), (T1, 0), (T0, 8)]])
    assert drain.delivered == [(T1, 0)]  # the rest of T0's batch is set aside; T1 goes on
    assert drain.seeks == [(T0, 4)]  # type: ignore[attr-defined]  # 4 was a seek's target, never handed over
    assert not drain.consumer._gap[T0]
    assert drain.consumer._read_offset[T0] == 4


async def test_a_jump_that_comes_again_at_the_same_place_is_a_gap_of_the_offsets_between(
    drain_factory: Callable[..., Drain], acked: Callable[..., Drain]
) -> None:
    drain = acked(drain_factory())
    drain.consumer._read_offset[T0] = 4
    drain.consumer.handed_over[T0] = 4
    await drain.run([[(T0, 7)], [(T0, 7), (T0, 8)]])
    assert drain.seeks == [(T0, 5)]  # type: ignore[attr-defined]
    assert drain.delivered == [(T0, 7), (T0, 8)]
    # 5 and 6 hold no record; 4 was handed over (its own ack counts), 7 is being handed over.
    assert [(gap.begin, gap.end) for gap in drain.consumer._gap[T0]] == [(5, 7)]


async def test_after_a_seek_to_the_read_offset_the_gap_starts_at_it(
    drain_factory: Callable[..., Drain], acked: Callable[..., Drain]
) -> None:
    drain = acked(drain_factory())
    drain.consumer._read_offset[T0] = 4  # a seek's target: 4 itself not handed over yet
    await drain.run([[(T0, 7)], [(T0, 7)]])
    assert [(gap.begin, gap.end) for gap in drain.consumer._gap[T0]] == [(4, 7)]


async def test_while_the_flow_is_suspended_acknowledged_records_are_held_back_then_fetched_again(
    drain_factory: Callable[..., Drain], acked: Callable[..., Drain]
) -> None:
    drain = acked(drain_factory())
    drain.consumer._read_offset[T0] = 2
    drain.consumer.handed_over[T0] = 2
    drain.consumer.stop_flow()
    batches = [[(T0, 3), (T0, 4), (T1, 0)], [(T0, 5), (T0, 6)], [(T0, 3), (T0, 4)]]
    fetcher = Service()

    async def getmany(timeout: float) -> AsyncIterator[tuple[TP, Message]]:
        batch = batches.pop(0)
        if len(batches) == 1:
            drain.consumer.resume_flow()  # no seek: the flow simply runs again
        if not batches:
            fetcher._stopped.set()
        for tp, offset in batch:
            yield tp, record(tp, offset)

    drain.consumer.getmany = getmany  # type: ignore[method-assign]
    await asyncio.wait_for(FastDrainConsumer._drain_messages(drain.consumer, fetcher), timeout=10)
    assert drain.raced == 0
    # Nothing handed over while suspended; then each held partition fetched again from its first record set aside,
    # the rest of the batch fetched before that dropped, and the records fetched again handed over.
    assert drain.seeks == [(T0, 3), (T1, 0)]  # type: ignore[attr-defined]
    assert drain.delivered == [(T0, 3), (T0, 4)]
    assert drain.consumer._read_offset[T0] == 4
    assert not drain.consumer.held


async def test_a_changelog_record_is_handed_over_whatever_is_held_back(
    drain_factory: Callable[..., Drain], acked: Callable[..., Drain]
) -> None:
    """Changelogs are not acknowledged and have no committed offset to go back to: Faust's way for them."""
    drain = acked(drain_factory())
    changelog = TP("app-stock-ledger-changelog", 0)
    drain.consumer.held[T0] = 3
    drain.consumer.seeks = 5
    await drain.run([[(changelog, 7), (changelog, 8), (changelog, 9)]])
    assert drain.delivered == [(changelog, 7), (changelog, 8), (changelog, 9)]
    assert drain.seeks == []  # type: ignore[attr-defined]  # T0 is fetched again at its next record
    assert drain.consumer.held == {T0: 3}


async def test_a_seek_while_a_record_is_handed_over_sets_the_rest_of_the_batch_aside(
    drain_factory: Callable[..., Drain], acked: Callable[..., Drain]
) -> None:
    def seek_at_offset_1(drain: Drain, message: Message) -> None:
        if message.offset == 1:
            drain.consumer.seeks += 1  # what Recovery's perform_seek does through seek_to_committed

    drain = acked(drain_factory(on_record=seek_at_offset_1))
    await drain.run([[(T0, 0), (T0, 1), (T0, 2)]])
    assert drain.delivered == [(T0, 0), (T0, 1)]
    assert drain.consumer._read_offset[T0] == 0


async def test_a_jump_whose_seek_fails_is_tried_again_not_taken_for_a_gap(
    drain_factory: Callable[..., Drain], acked: Callable[..., Drain]
) -> None:
    drain = acked(drain_factory(), failing=True)
    drain.consumer._read_offset[T0] = 4
    await drain.run([[(T0, 7)], [(T0, 7)]])
    assert drain.delivered == []
    assert not drain.consumer._gap[T0]
    assert not drain.consumer.jumped_at


async def test_a_jump_fetched_again_is_forgotten_once_the_expected_record_comes(
    drain_factory: Callable[..., Drain], acked: Callable[..., Drain]
) -> None:
    """Else a later, unrelated jump from the same offset (after a rebalance's seek) would count as a gap at once."""
    drain = acked(drain_factory())
    drain.consumer._read_offset[T0] = 4
    await drain.run([[(T0, 7)], [(T0, 4), (T0, 5)]])
    assert drain.delivered == [(T0, 4), (T0, 5)]
    assert not drain.consumer.jumped_at


async def test_a_jump_in_a_partition_no_longer_assigned_is_left_to_its_next_owner(
    drain_factory: Callable[..., Drain], acked: Callable[..., Drain]
) -> None:
    drain = acked(drain_factory())
    t9 = TP("orders", 9)
    drain.consumer._read_offset[t9] = 4
    await drain.run([[(t9, 7)]])
    assert drain.seeks == []  # type: ignore[attr-defined]
    assert drain.delivered == []
    assert not drain.consumer._gap[t9]


def consumer_with(acked_offsets: list[int], committed: int | None) -> FastDrainConsumer:
    app = create_app(load_settings({}))
    consumer = app.consumer
    assert isinstance(consumer, FastDrainConsumer)
    consumer._acked[T0] = list(acked_offsets)
    consumer._acked_index[T0] = set(acked_offsets)
    consumer._committed_offset[T0] = committed
    return consumer


@pytest.mark.parametrize(
    ("acked_offsets", "committed", "new_offset"),
    [
        ([11, 12], 10, None),  # Faust's would commit 13, past 10 which no stream acknowledged
        ([10, 11, 13], 10, 12),
        ([12, 13], 10, None),
        ([5, 6], None, 7),  # no committed offset known: Faust's rule
    ],
)
def test_a_commit_waits_for_the_record_at_the_committed_offset(
    acked_offsets: list[int], committed: int | None, new_offset: int | None
) -> None:
    assert consumer_with(acked_offsets, committed)._new_offset(T0) == new_offset


async def test_a_real_gap_never_reaches_below_the_committed_offset() -> None:
    consumer = consumer_with([], 10)
    await consumer._add_real_gap(T0, 5, 12)
    await consumer._add_real_gap(T0, 20, 20)  # empty
    assert [(gap.begin, gap.end) for gap in consumer._gap[T0]] == [(10, 12)]


def test_fausts_own_rule_would_commit_past_the_record_at_the_committed_offset() -> None:
    consumer = consumer_with([11, 12], 10)
    assert FaustConsumer._new_offset(consumer, T0) == 13


def test_a_gap_starting_at_the_committed_offset_lets_the_commit_through() -> None:
    consumer = consumer_with([12, 13], 10)
    consumer._gap[T0].addi(10, 12)
    assert consumer._new_offset(T0) == 14


async def test_partitions_without_a_committed_offset_start_at_their_earliest_offset_kept_as_committed(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    app = create_app(load_settings({}))
    consumer = app.consumer
    assert isinstance(consumer, FastDrainConsumer)
    changelog, t2 = TP("app-stock-changelog", 0), TP("orders", 2)
    sought: list[tuple[TP, int]] = []

    async def seek_to_committed() -> dict[TP, int | None]:
        return {T0: None, T1: 40, t2: 0, changelog: None}

    async def earliest_offsets(*partitions: TP) -> dict[TP, int]:
        return {T0: 0, t2: 12, changelog: 0}

    async def seek_wait(partitions: dict[TP, int]) -> None:
        sought.extend(partitions.items())

    monkeypatch.setattr(consumer._thread, "seek_to_committed", seek_to_committed)
    monkeypatch.setattr(consumer, "earliest_offsets", earliest_offsets)
    monkeypatch.setattr(consumer, "seek_wait", seek_wait)
    monkeypatch.setattr(app.topics, "acks_enabled_for", lambda topic: topic == "orders")
    consumer.held[T0] = 3
    consumer.jumped_at[T1] = 30
    consumer.handed_over[T0] = 3
    await consumer.perform_seek()
    # T1 was sought by aiokafka; a changelog is never acknowledged and keeps Faust's rule.
    assert sought == [(T0, 0), (t2, 12)]
    assert dict(consumer._read_offset) == {T0: 0, T1: 40, t2: 12, changelog: None}
    assert dict(consumer._committed_offset) == {T0: 0, T1: 40, t2: 12}  # Faust would keep None for 0
    assert consumer.seeks == 1
    assert not consumer.held
    assert not consumer.jumped_at
    assert not consumer.handed_over


def test_with_the_committed_offset_0_kept_a_commit_waits_for_record_0() -> None:
    assert consumer_with([1, 2], 0)._new_offset(T0) is None
    assert consumer_with([0, 1, 2], 0)._new_offset(T0) == 3


async def test_a_jump_from_the_first_offset_of_a_partition_is_noticed(
    drain_factory: Callable[..., Drain], acked: Callable[..., Drain]
) -> None:
    drain = acked(drain_factory())
    drain.consumer._read_offset[T0] = 0  # a seek to a partition's start (Faust's seek would leave None)
    await drain.run([[(T0, 3)]])
    assert drain.seeks == [(T0, 0)]  # type: ignore[attr-defined]
    assert drain.delivered == []


async def test_recovery_stops_the_flow_before_faust_resumes_and_seeks_the_stream_partitions(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    app = create_app(load_settings({}))
    recovery = cast(TableManager, app.tables).recovery
    assert isinstance(recovery, SeekFirstRecovery)
    seen: list[tuple[bool, bool]] = []

    async def original(self: Recovery, generation_id: int = 0) -> None:
        seen.append((cast(FaustConsumer, app.consumer).flow_active, app.flow_control.is_active()))

    monkeypatch.setattr(Recovery, "on_recovery_completed", original)
    app.consumer.resume_flow()  # as standby recovery leaves it
    app.flow_control.resume()
    await recovery.on_recovery_completed(7)
    assert seen == [(False, False)]


#: sha256 of the source of each Faust or aiokafka function the overrides rely on, in the pinned versions.
RELIED_ON = {
    "on_recovery_completed": "6ef567acf072e46da3fccbccc6d662371f634f622c3d510972d5df81f70ae3ac",
    "recovery": "f0bf5de78b4c3d235c3554010480f407010ccb7c481c68852a985542b952df32",
    "_new_offset": "1d2c7ea89a7ad4f1a216c1d51936e569162cd66bd56f889e13fd29c910b58eb0",
    "perform_seek": "0e8c130ff4b0afd82c0be9c5fd831316e10febc62c94032833911096e156d7c6",
    "AIOKafkaConsumerThread.seek_to_committed": "775ab0adc4b052abee204d5347a556412b1f77ed4de971adde69a55a1cb6f908",
    "AIOKafkaConsumer.seek_to_committed": "f6cd85c8b70a4ccf7e862de24f6c5d985038eed3e140990f000aa4b52eda8d72",
    "AIOKafkaConsumerThread._seek_wait": "9d221e816d9404678ac2d802b1419c7c2d166cbc9c8ec9f689a77673b8f2e85f",
}


@pytest.mark.parametrize(
    ("name", "function"),
    [
        ("on_recovery_completed", Recovery.on_recovery_completed),
        ("recovery", cast(property, TableManager.recovery).fget),
        ("_new_offset", FaustConsumer._new_offset),
        ("perform_seek", FaustConsumer.perform_seek),
        ("AIOKafkaConsumerThread.seek_to_committed", aiokafka.AIOKafkaConsumerThread.seek_to_committed),
        ("AIOKafkaConsumer.seek_to_committed", AIOKafkaConsumer.seek_to_committed),
        ("AIOKafkaConsumerThread._seek_wait", aiokafka.AIOKafkaConsumerThread._seek_wait),
    ],
)
def test_the_internals_the_overrides_rely_on_are_still_the_ones_read(name: str, function: Any) -> None:
    source = inspect.getsource(function)
    message = f"{name} changed: re-check app/fast_consumer.py against it, then record its new hash here"
    assert faust.__version__ == "0.15.3", message
    assert aiokafka_version == "0.14.0", message
    assert hashlib.sha256(source.encode()).hexdigest() == RELIED_ON[name], message

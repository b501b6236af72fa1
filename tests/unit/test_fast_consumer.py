"""The consumer that hands records to the streams without a task race per record: pinned, installed, same loop."""

from __future__ import annotations

import asyncio
import hashlib
import inspect
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

import faust
import pytest
from faust.transport.consumer import Consumer as FaustConsumer
from faust.transport.drivers import aiokafka
from faust.types import TP, Message
from faust.types.tuples import ConsumerMessage
from mode import Service

from app.fast_consumer import FastDrainConsumer, FastDrainTransport
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
            for tp, offset in pending.pop(0):
                yield tp, record(tp, offset)
            if not pending:
                fetcher._stopped.set()

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
    """Run ``loop`` over records that exercise drops, a gap, commits and yields, and return what it did."""
    # T0 starts at read offset 3: 1 and 2 are dropped, 3 and 4 delivered, 5-6 are a gap before 7 (Faust records the
    # interval [5, 8), end excluded).
    batches = [[(T0, 1), (T0, 2), (T0, 3), (T0, 4), (T0, 7)], [(T1, offset) for offset in range(250)]]
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
    gaps = {tp: sorted((gap.begin, gap.end) for gap in tree) for tp, tree in drain.consumer._gap.items()}
    return drain.delivered, dict(drain.consumer._read_offset), gaps, drain.commits, yields


async def test_the_loop_keeps_fausts_bookkeeping(
    drain_factory: Callable[..., Drain], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Drops below the read offset, gaps, commits every N acks and yields every 100 records, as Faust's loop."""
    faust_outcome = await bookkeeping(drain_factory(), FaustConsumer._drain_messages, monkeypatch)
    fast_outcome = await bookkeeping(drain_factory(), FastDrainConsumer._drain_messages, monkeypatch)
    assert fast_outcome == faust_outcome
    delivered, read_offsets, gaps, commits, yields = fast_outcome
    assert delivered[:3] == [(T0, 3), (T0, 4), (T0, 7)]
    assert len(delivered) == 253
    assert read_offsets == {T0: 7, T1: 249}
    assert gaps == {T0: [(5, 8)]}
    assert commits == 6  # 253 acks, counted from zero each time the count reaches 40
    assert yields == 3  # after the 101st and the 202nd record, and one in Faust's _add_gap

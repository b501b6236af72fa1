"""Faust's Kafka transport with a cheaper hand-off of each fetched record to the streams ("Tier 2").

Faust 0.15.3's ``Consumer._drain_messages`` hands every record to the conductor through
``wait_first(callback(message), suspend_flow.wait())``, so that a rebalance can abandon a hand-off that waits.
mode's ``wait_first`` makes four tasks and cancels three, once per record: most of Faust's cost per record, and the
main thread's ceiling. ``FastDrainConsumer`` awaits the callback itself while the flow runs, and keeps ``wait_first``
while the flow is suspended or the consumer is stopping or has crashed. A hand-off that starts while the flow runs
and then waits (on a full stream buffer or producer buffer) still ends when a rebalance begins: the revocation
clears the buffers, cancelling their waiting puts, and flushes the producer. If it ends only after the new
assignment, the read offset is left to that assignment's seek (Faust's form would have set it before the seek).
Everything else in the loop does what Faust's does. This overrides a private method of the faust-streaming pinned in
setup.py: ``tests/unit/app/test_fast_consumer.py`` fails when the original changes.

It also never lets a commit pass a record that no stream was handed (found by the fault suite, faults/: workers
joining a fresh group together, when the registry was down at their start or after the whole stack restarted, left
one orders partition undecided with the group's offset at its end). Faust 0.15.3 can, in six ways, each closed here:

- **Records fetched while the flow is suspended.** Faust races each hand-off against ``suspend_flow`` and moves the
  read offset past a record whose hand-off lost, as if handed; its copy fetched again after the seek is dropped as
  already read. Here a record of an acknowledged topic is not handed while the flow is suspended: the rest of its
  partition's batch is set aside, the read offset stays, and before that partition's next hand-off it is fetched
  again from the first record set aside, unless a seek of every partition (recovery's) came first.
- **A batch fetched before a seek.** Recovery seeks the stream partitions while the loop may still be iterating a
  batch fetched before; the rest of that batch's acknowledged records are dropped, since the seek fetches them again.
- **A jump in the offsets.** Faust counts the offsets between the read offset and a record past it (and that record
  itself, before it is processed) as acknowledged. On an acknowledged topic (no transactions, no compaction) a jump
  means records were fetched and not handed, so here the partition is sought back to the record expected next (the
  read offset when a seek set it, the one after when it was handed); only a jump that comes again at the same place
  is a real gap, and only the offsets without records are counted. This check is what holds the line: whatever
  else lets a record slip past, the next record of its partition shows the hole.
- **A partition without a committed offset.** aiokafka's ``seek_to_committed`` leaves it wherever its fetch got to;
  here it starts at its earliest offset (the ``earliest`` reset policy, Faust's default), which becomes its
  committed offset.
- **Offset 0 taken for unknown.** Faust's ``perform_seek`` stores a committed or read offset of 0 as None, which turns
  off both checks at a partition's start; here 0 is kept for acknowledged topics.
- **The commit past the committed offset's record.** Faust's ``_new_offset`` commits a run of acknowledged offsets that
  starts one past the committed offset, skipping that record; here the run must start at it.

And recovery (``SeekFirstRecovery``): Faust's ``Recovery.on_recovery_completed`` resumes the stream partitions, seeks
them and then resumes the flow control, which clears every stream buffer. With standby tables the flow already runs
by then (standby recovery resumed it), so records handed to the streams between the resume and the clear were lost.
Here the flow is stopped first; the original resumes it after its seek.

Changelog records (not acknowledged, no committed offset to go back to) keep Faust's way throughout. Seeks run in
the consumer's thread (``seek_wait``), as Faust's own do. The Faust and aiokafka functions these rely on are pinned by
hash in ``tests/unit/app/test_fast_consumer.py``.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from typing import Any, ClassVar, cast

from faust.tables import TableManager
from faust.tables.recovery import Recovery
from faust.transport.consumer import CONSUMER_FETCHING, ensure_TP
from faust.transport.drivers import aiokafka
from faust.types import TP
from faust.types.transports import ConsumerT
from mode import Service, ServiceT


class FastDrainConsumer(aiokafka.Consumer):
    """The aiokafka consumer, awaiting the conductor directly while the flow runs, and never committing past a record
    it did not hand over."""

    #: How many times every partition was sought to its committed offset: a batch fetched before is stale.
    seeks: int = 0
    #: Partitions whose records were set aside while the flow was suspended, and the first such record's offset: the
    #: partition is fetched again from there before the next hand-off, unless a seek of every partition came first.
    held: dict[TP, int]
    #: The offset expected where each partition last jumped: a second jump at the same place is a real gap.
    jumped_at: dict[TP, int]
    #: The offset of the record last handed over, by partition.
    handed_over: dict[TP, int]

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.held = {}
        self.jumped_at = {}
        self.handed_over = {}

    async def seek_to_committed(self) -> Mapping[TP, int]:
        self.seeks += 1
        self.held.clear()
        self.jumped_at.clear()
        self.handed_over.clear()
        committed = dict(await super().seek_to_committed())
        # aiokafka seeks only partitions with a committed offset above 0; the others stay where their fetch got to.
        # Here those of acknowledged topics start at their earliest offset, which is then their committed offset.
        unset = [tp for tp, offset in committed.items() if not offset and self.app.topics.acks_enabled_for(tp.topic)]
        if unset and self.app.conf.consumer_auto_offset_reset == "earliest":
            earliest = await self.earliest_offsets(*unset)
            starts = {tp: earliest[tp] for tp in unset if earliest.get(tp) is not None}
            await self.seek_wait(starts)  # in the consumer's thread, as Faust's own seeks
            committed.update(starts)
        return committed

    async def perform_seek(self) -> None:
        """Faust's, keeping an offset of 0 for acknowledged topics: Faust takes 0 for unknown, so the first records of
        a partition could be skipped without the loop noticing, and a commit could pass them."""
        committed = await self.seek_to_committed()
        acks_enabled_for = self.app.topics.acks_enabled_for
        for partition, offset in committed.items():
            tp = ensure_TP(partition)
            if offset is not None and offset >= 0 and acks_enabled_for(tp.topic):
                self._read_offset[tp] = offset
                self._committed_offset[tp] = offset
            else:
                self._read_offset[tp] = offset if offset is not None and offset >= 0 else None
                if offset is not None:
                    self._committed_offset[tp] = offset or None

    async def _fetch_again(self, tp: TP, offset: int, why: str) -> bool:
        """Seek ``tp`` to ``offset`` so its records from there are fetched again; False if it could not be."""
        if tp not in self.assignment():
            return False  # revoked meanwhile: its next owner starts from the committed offset
        self.log.warning("%s: fetching it again from offset %d: %s", tp, offset, why)
        try:
            await self.seek_wait({tp: offset})
        except Exception as error:  # the fetch goes on; the jump check sees the records still missing
            self.log.warning("%s: seeking to offset %d failed (%r); the next jump tries again", tp, offset, error)
            return False
        self._read_offset[tp] = offset
        self.handed_over.pop(tp, None)
        return True

    async def _fetch_held_again(self) -> set[TP]:
        """Fetch again every partition held back while the flow was suspended; the partitions sought."""
        held, self.held = self.held, {}
        for tp, offset in held.items():
            await self._fetch_again(tp, offset, "its records were set aside while the flow was suspended")
        return set(held)

    def _new_offset(self, tp: TP) -> int | None:
        acked = self._acked[tp]
        committed = self._committed_offset[tp]
        if acked and committed is not None:
            gaps = self._gap[tp]
            lowest = min(min(acked), gaps.begin()) if gaps else min(acked)
            if lowest > committed:
                return None  # the committed offset's own record is not acknowledged yet
        return super()._new_offset(tp)

    async def _add_real_gap(self, tp: TP, first: int, end: int) -> None:
        """Offsets ``first`` to ``end`` (excluded) hold no record: count them as acknowledged. Faust's ``_add_gap``
        takes the record after the read offset and the one being handed over for records too (both off by one)."""
        committed = self._committed_offset[tp]
        if committed is not None:
            first = max(first, committed)
        if first < end:
            gaps = self._gap[tp]
            gaps.addi(first, end)
            gaps.merge_overlaps()

    async def _drain_messages(self, fetcher: ServiceT) -> None:
        # Faust 0.15.3's loop; the hand-off and what comes before it (marked below) differ. Runs until the consumer
        # or fetcher stops.
        callback = self.callback
        getmany = self.getmany
        consumer_should_stop = cast(Service, self)._stopped.is_set
        consumer_crashed = cast(Service, self)._crashed.is_set
        fetcher_should_stop = cast(Service, fetcher)._stopped.is_set
        suspend_flow = self.suspend_flow
        flow_control_is_active = self.app.flow_control.is_active
        app = self.app

        get_read_offset = self._read_offset.__getitem__
        set_read_offset = self._read_offset.__setitem__
        set_flag = self.diag.set_flag
        unset_flag = self.diag.unset_flag
        commit_every = self._commit_every
        acks_enabled_for = self.app.topics.acks_enabled_for
        handed_over = self.handed_over
        held = self.held
        jumped_at = self.jumped_at

        yield_every = 100
        num_since_yield = 0
        sleep = asyncio.sleep

        try:
            while not (consumer_should_stop() or fetcher_should_stop()):
                set_flag(CONSUMER_FETCHING)
                ait = getmany(timeout=1.0)
                # getmany can return at once many times in a row without giving the loop a turn.
                await self.sleep(0)
                if not self.should_stop:
                    set_aside: set[TP] = set()
                    # The seeks made before the batch was fetched, read at its first record: a seek after it makes
                    # the rest stale (a record that slips through, fetched across a seek, fails the offset check).
                    seeks = -1
                    async for tp, message in ait:
                        num_since_yield += 1
                        if num_since_yield > yield_every:
                            await sleep(0)
                            num_since_yield = 0

                        if seeks < 0:
                            seeks = self.seeks
                        offset = message.offset
                        stopping = consumer_should_stop() or consumer_crashed()
                        suspended = suspend_flow.is_set() or not flow_control_is_active()
                        acked_topic = acks_enabled_for(message.topic)
                        # Differs from Faust: a record of an acknowledged topic is handed over only while the flow
                        # runs, fetched after the last seek, and where the partition's offsets are expected.
                        if acked_topic and not stopping:
                            if tp in set_aside:
                                continue
                            if self.seeks != seeks:
                                set_aside.add(tp)  # the seek fetches it again
                                continue
                            if suspended:
                                held.setdefault(tp, offset)
                                set_aside.add(tp)
                                continue
                            if held:
                                set_aside.update(await self._fetch_held_again())
                                if tp in set_aside:
                                    continue
                            r_offset = get_read_offset(tp)
                            if r_offset is not None and offset >= r_offset:
                                expected = r_offset + 1 if handed_over.get(tp) == r_offset else r_offset
                                if offset > expected:
                                    set_aside.add(tp)
                                    if jumped_at.get(tp) != expected:
                                        why = f"its offsets jumped from {expected} to {offset}"
                                        if await self._fetch_again(tp, expected, why):
                                            jumped_at[tp] = expected
                                        continue
                                    # The same jump again: offsets expected to offset hold no record.
                                    set_aside.discard(tp)
                                    await self._add_real_gap(tp, expected, offset)
                                elif jumped_at and offset == expected:
                                    jumped_at.pop(tp, None)

                        r_offset = get_read_offset(tp)
                        if r_offset is None or offset >= r_offset:
                            if commit_every is not None and self._n_acked >= commit_every:
                                self._n_acked = 0
                                await self.commit()
                            # The hand-off: awaited directly while the flow runs.
                            if suspended or stopping:
                                await self.wait_first(callback(message), suspend_flow.wait())
                                set_read_offset(tp, offset)
                                handed_over[tp] = offset
                            else:
                                generation = app.consumer_generation_id
                                await callback(message)
                                # A rebalance or seek that ran while the callback waited (for a full buffer, say)
                                # has reset the read offsets, or will; Faust's form set this one before that reset.
                                if app.consumer_generation_id == generation and self.seeks == seeks:
                                    set_read_offset(tp, offset)
                                    handed_over[tp] = offset
                        else:
                            self.log.dev(
                                "DROPPED MESSAGE ROFF %r: k=%r v=%r",
                                offset,
                                message.key,
                                message.value,
                            )

        except self.consumer_stopped_errors:
            if self.transport.app.should_stop:
                self.log.info("Broker stopped consumer, shutting down...")
                return
            raise
        except asyncio.CancelledError:
            if self.transport.app.should_stop:
                self.log.info("Consumer shutting down for user cancel.")
                return
            raise
        except Exception as exc:
            self.log.exception("Drain messages raised: %r", exc)
            raise
        finally:
            unset_flag(CONSUMER_FETCHING)


class FastDrainTransport(aiokafka.Transport):
    """The aiokafka transport, making ``FastDrainConsumer`` consumers."""

    Consumer: ClassVar[type[ConsumerT]] = FastDrainConsumer


class SeekFirstRecovery(Recovery):
    """Faust's recovery, with the flow stopped while the stream partitions are resumed and sought."""

    async def on_recovery_completed(self, generation_id: int = 0) -> None:
        self.app.consumer.stop_flow()
        self.app.flow_control.suspend()
        await super().on_recovery_completed(generation_id)


class SeekFirstTableManager(TableManager):
    """Faust's table manager, recovering through ``SeekFirstRecovery``."""

    @property
    def recovery(self) -> Recovery:
        if self._recovery is None:
            self._recovery = SeekFirstRecovery(self.app, self, beacon=self.beacon, loop=self.loop)
        return self._recovery

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
setup.py: ``tests/unit/test_fast_consumer.py`` fails when the original changes.
"""

from __future__ import annotations

import asyncio
from typing import ClassVar, cast

from faust.transport.consumer import CONSUMER_FETCHING
from faust.transport.drivers import aiokafka
from faust.types.transports import ConsumerT
from mode import Service, ServiceT


class FastDrainConsumer(aiokafka.Consumer):
    """The aiokafka consumer, awaiting the conductor directly while the flow runs."""

    async def _drain_messages(self, fetcher: ServiceT) -> None:
        # Faust 0.15.3's loop; only the hand-off (marked below) differs. Runs until the consumer or fetcher stops.
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
                    async for tp, message in ait:
                        num_since_yield += 1
                        if num_since_yield > yield_every:
                            await sleep(0)
                            num_since_yield = 0

                        offset = message.offset
                        r_offset = get_read_offset(tp)
                        if r_offset is None or offset >= r_offset:
                            gap = offset - (r_offset or 0)
                            if gap > 1 and r_offset and acks_enabled_for(message.topic):
                                await self._add_gap(tp, r_offset + 1, offset)
                            if commit_every is not None and self._n_acked >= commit_every:
                                self._n_acked = 0
                                await self.commit()
                            # The hand-off: the one place that differs from Faust.
                            if (
                                suspend_flow.is_set()
                                or consumer_should_stop()
                                or consumer_crashed()
                                or not flow_control_is_active()
                            ):
                                await self.wait_first(callback(message), suspend_flow.wait())
                                set_read_offset(tp, offset)
                            else:
                                generation = app.consumer_generation_id
                                await callback(message)
                                # A rebalance that ran while the callback waited (for a full buffer, say) has reset
                                # the read offsets, or will; Faust's form set this one before that reset, never after.
                                if app.consumer_generation_id == generation:
                                    set_read_offset(tp, offset)
                        else:
                            self.log.dev(
                                "DROPPED MESSAGE ROFF %r: k=%r v=%r",
                                offset,
                                message.key,
                                message.value,
                            )
                    unset_flag(CONSUMER_FETCHING)

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

"""Which generation shards this worker holds, and their reservations: a Faust table with one partition per shard.

Faust's partition assignor deals the partitions of the ``generation-shards`` table's changelog out to the
workers of the APP_ID like any other (Kafka's group protocol), so the shards move when a worker joins, leaves or
dies. The table holds, per shard, the end of the event numbers reserved for it: a worker writes a reservation and
waits until Kafka has it before it makes an event of it, so a shard that moves or restarts resumes past every
number it may have used.
"""

from __future__ import annotations

import asyncio
import logging
import os
import time
from typing import Any

import faust
from mode import BaseSignalT

from tables import in_partition, rocksdict_table

log = logging.getLogger(__name__)

#: The table's name: its changelog is ``<APP_ID>-generation-shards-changelog``, GENERATION_SHARDS partitions.
SHARDS_TABLE = "generation-shards"


class ShardKeeper:
    """The shards Faust assigns to this worker, when they may start, and their durable reservations."""

    def __init__(self, app: faust.App, shards: int, settle_seconds: float) -> None:
        """New shards start once the assignment has not changed for ``settle_seconds`` (GENERATION_SETTLE_SECONDS),
        so workers started together split the shards before any makes an event: a shard that moves resumes with
        other draws."""
        self._app = app
        self.count = shards
        self._settle = settle_seconds
        self.table = rocksdict_table(app, SHARDS_TABLE, partitions=shards)
        self.topic = self.table.changelog_topic.get_topic_name()
        self._lock = asyncio.Lock()
        #: Bumped whenever a rebalance begins: a reservation made across one is not used.
        self.epoch = 0
        self.paused = True
        self._recovered = False
        self._changed_at = time.monotonic()
        app.on_partitions_revoked.connect(self._on_revoked)
        app.on_partitions_assigned.connect(self._on_assigned)
        app.on_rebalance_complete.connect(self._on_recovered)

    def owned(self) -> list[int]:
        """The shards whose partitions this worker holds now, in order."""
        actives = self._app.assignor.assigned_actives()
        return sorted(tp.partition for tp in actives if tp.topic == self.topic)

    def check_partitions(self) -> None:
        """Exit with status 2 and one line when the table's changelog has another number of partitions than
        GENERATION_SHARDS (it was made by a run with another value): shards would be skipped or unknown."""
        found = self._app.consumer.topic_partitions(self.topic)
        if found is not None and found != self.count:
            log.critical(
                "retail-datagen: GENERATION_SHARDS=%d: the shards table of this APP_ID (%s) has %d partitions; "
                "accepted: GENERATION_SHARDS=%d, or a new APP_ID",
                self.count,
                self.topic,
                found,
                found,
            )
            logging.shutdown()
            os._exit(2)

    def settled(self) -> bool:
        """True once the tables of the assignment are recovered and it has held for GENERATION_SETTLE_SECONDS."""
        return self._recovered and time.monotonic() - self._changed_at >= self._settle

    def positions(self, shards: list[int]) -> dict[int, int]:
        """Per shard, the end of its last reservation (0 for a shard never started): where it resumes."""
        found = {}
        for shard in shards:
            with in_partition(self.topic, shard):
                value = self.table.get(str(shard))
            found[shard] = int(value["reserved"]) if value else 0
        return found

    async def reserve(self, ends: dict[int, int]) -> None:
        """Write each shard's new reservation end and wait until Kafka has them all."""
        async with self._lock:
            for shard, end in ends.items():
                with in_partition(self.topic, shard):
                    self.table[str(shard)] = {"reserved": end}
            await self._app.producer.flush()

    async def _on_revoked(self, sender: Any, /, *args: Any, signal: BaseSignalT[Any], **kwargs: Any) -> None:
        """Stop making events and let a reservation in flight land before the shards can move."""
        self.epoch += 1
        self.paused = True
        self._recovered = False
        self._changed_at = time.monotonic()
        async with self._lock:
            pass

    def _on_assigned(self, sender: Any, /, *args: Any, signal: BaseSignalT[Any], **kwargs: Any) -> None:
        self._recovered = False
        self._changed_at = time.monotonic()

    def _on_recovered(self, sender: Any, /, *args: Any, signal: BaseSignalT[Any], **kwargs: Any) -> None:
        self._recovered = True
        self._changed_at = time.monotonic()

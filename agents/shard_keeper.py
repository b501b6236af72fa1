"""Which generation shards this worker holds, and their reservations: a Faust table with one partition per shard.

Faust's partition assignor deals the partitions of the ``generation-shards`` table's changelog out to the
workers of the APP_ID like any other (Kafka's group protocol), so the shards move when a worker joins, leaves or
dies. The table holds, per shard, the end of the event numbers reserved for it: a worker writes a reservation and
waits until Kafka has it before it makes an event of it, so a shard that moves or restarts resumes past every
number it may have used. It also holds where the shard's published truth ends (``truth_from``, agents/truth.py):
the next owner counts the shard's records from there on again before it emits.
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
        #: Per shard held here: the end of its reservation, and the start of its first unpublished truth minute.
        self._ends: dict[int, int] = {}
        self._truth_from: dict[int, int] = {}
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

    def truth_from(self, shard: int) -> int | None:
        """Where ``shard``'s published truth ends (epoch ms), or None when it never had any."""
        with in_partition(self.topic, shard):
            value = self.table.get(str(shard))
        found = value.get("truth_from") if value else None
        return None if found is None else int(found)

    async def reserve(self, ends: dict[int, int], truth_from: dict[int, int] | None = None) -> None:
        """Write each shard's new reservation end (and where its published truth ends) and wait until Kafka has
        them all."""
        async with self._lock:
            for shard, end in ends.items():
                self._ends[shard] = end
                if truth_from is not None and shard in truth_from:
                    self._truth_from[shard] = truth_from[shard]
                self._write(shard)
            await self._app.producer.flush()

    async def mark_truth(self, truth_from: dict[int, int], epoch: int) -> None:
        """Record where the published truth of shards held here ends, unless a rebalance began (``epoch``)."""
        async with self._lock:
            if epoch != self.epoch or self.paused:
                return
            for shard, moment in truth_from.items():
                if shard in self._ends and self._truth_from.get(shard) != moment:
                    self._truth_from[shard] = moment
                    self._write(shard)

    def _write(self, shard: int) -> None:
        value: dict[str, int] = {"reserved": self._ends[shard]}
        if shard in self._truth_from:
            value["truth_from"] = self._truth_from[shard]
        with in_partition(self.topic, shard):
            self.table[str(shard)] = value

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

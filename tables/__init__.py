"""Faust table definitions; every table lives in RocksDB through the rocksdict driver."""

from __future__ import annotations

import weakref
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, cast

import faust
from faust.streams import _current_event
from faust.types import TableT

#: Store options that pin faust's RocksDB store to rocksdict (python-rocksdb is not installed), with memory sized for
#: small values: Faust's defaults give every partition's database a 64 MB write buffer (up to 3 of them) and a 2 GB
#: block cache, so a worker holding 4 tables x 4 partitions could grow past a gigabyte as it writes.
ROCKSDICT = {
    "driver": "rocksdict",
    "write_buffer_size": 1024**2,
    "max_write_buffer_number": 2,
    "block_cache_size": 1024**2,
}


class ClosingTable(faust.Table):
    """A table that awaits ``before_close`` when it stops, while its store can still be read.

    Faust stops a table (``TableManager.on_stop``) once the consumer is paused and the streams have drained
    (``App._stop_consumer`` waits for every delivered event to be acked), and the table stops its store right
    after its own ``on_stop``: the store's databases are dropped then, so a read after that finds nothing. This
    is the one point where the agents no longer change the table and it can still be read.
    """

    before_close: Callable[[], Awaitable[None]] | None = None

    async def on_stop(self) -> None:
        """Run ``before_close``, then Faust's own stop."""
        if self.before_close is not None:
            await self.before_close()
        await super().on_stop()


def rocksdict_table(
    app: faust.App, name: str, *, before_close: Callable[[], Awaitable[None]] | None = None, **kwargs: Any
) -> TableT:
    """A table of str keys and JSON values on the app's ``rocksdb://`` store, opened with the rocksdict driver.

    ``before_close`` is awaited when the table stops, before its store closes (see ``ClosingTable``).
    """
    schema: faust.Schema = faust.Schema(key_type=str, key_serializer="json", value_serializer="json")
    table = ClosingTable(app, name=name, beacon=app.tables.beacon, options=dict(ROCKSDICT), schema=schema, **kwargs)
    table.before_close = before_close
    return cast(TableT, app.tables.add(table))


class _PartitionMessage:
    """What Faust reads of ``current_event().message`` to place a table write: its topic and partition."""

    __slots__ = ("partition", "topic")

    def __init__(self, topic: str, partition: int) -> None:
        self.topic = topic
        self.partition = partition


class _PartitionEvent:
    """Stands for an event of one source partition while a batch writes its tables (see ``in_partition``)."""

    __slots__ = ("__weakref__", "message")

    def __init__(self, topic: str, partition: int) -> None:
        self.message = _PartitionMessage(topic, partition)


@contextmanager
def in_partition(topic: str, partition: int) -> Iterator[None]:
    """Table writes inside go to ``partition`` of the tables' changelogs and stores, as inside a stream.

    Faust places a write by the current event (``Collection.partition_for_key`` and the RocksDB store's ``_set``
    read ``current_event().message``), a context variable its stream iterator sets per event. A batch taken with
    ``noack_take`` runs in another task, where it is None (faust-streaming#497), and a timer has none at all. This
    sets it to a stand-in for an event of ``partition`` of ``topic`` (the agent's source topic). It relies on
    faust-streaming 0.15.3's private ``faust.streams._current_event``; tests/unit/tables/test_in_partition.py fails
    when the pieces it relies on change.
    """
    marker = _PartitionEvent(topic, partition)
    token = _current_event.set(weakref.ref(marker))  # type: ignore[arg-type]
    try:
        yield
    finally:
        _current_event.reset(token)


@dataclass(frozen=True)
class LedgerTables:
    """The Kafka-canonical stock ledger's tables, all partitioned like the stock requests topic.

    ``stock``: one small value per product (str product id). ``backorders``: one key per waiting order
    (``<product>:<seq>``). ``schedule``: one key per item due later (a return, a reorder, a backorder's expiry).
    ``outbox``: the records of a batch, until Kafka has acknowledged them.
    """

    stock: TableT
    backorders: TableT
    schedule: TableT
    outbox: TableT


def ledger_tables(
    app: faust.App, partitions: int, before_close: Callable[[], Awaitable[None]] | None = None
) -> LedgerTables:
    """Declare the ledger's tables on ``app``; ``before_close`` runs when the stock table stops."""
    return LedgerTables(
        stock=rocksdict_table(app, "stock-ledger", partitions=partitions, before_close=before_close),
        backorders=rocksdict_table(app, "backorders", partitions=partitions),
        schedule=rocksdict_table(app, "schedule", partitions=partitions),
        outbox=rocksdict_table(app, "outbox", partitions=partitions),
    )

"""Faust table definitions; every table lives in RocksDB through the rocksdict driver."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any, cast

import faust
from faust.types import TableT

#: Store options that pin faust's RocksDB store to rocksdict (python-rocksdb is not installed).
ROCKSDICT = {"driver": "rocksdict"}


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

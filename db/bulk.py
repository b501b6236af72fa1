"""Bulk loading: rows into a table with one COPY ... FROM STDIN (CSV), as fast as Postgres takes them.

The CSV is made in chunks as COPY reads it, so Python formats (and may still be generating) the next rows
while the server parses and indexes the previous ones.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from itertools import islice
from typing import Any

from psycopg2 import sql

#: Rows formatted per chunk, and the chunk size COPY asks for.
ROWS_PER_CHUNK = 2000
READ_SIZE = 1 << 16


class CsvStream:
    """A read()-able text stream of the rows as COPY's CSV, each row followed by ``extra``."""

    def __init__(self, rows: Iterable[Sequence[object]], extra: Sequence[object] = ()) -> None:
        self._rows: Iterator[Sequence[object]] = iter(rows)
        self._extra = tuple(extra)
        self._buffer = io.StringIO()
        self._writer = csv.writer(self._buffer, lineterminator="\n")
        self._pending = ""

    def read(self, size: int = -1) -> str:
        """Up to ``size`` characters (all that is left when negative); "" at the end."""
        while size < 0 or len(self._pending) < size:
            batch = [(*row, *self._extra) for row in islice(self._rows, ROWS_PER_CHUNK)]
            if not batch:
                break
            self._writer.writerows(batch)
            self._pending += self._buffer.getvalue()
            self._buffer.seek(0)
            self._buffer.truncate()
        if size < 0:
            size = len(self._pending)
        chunk, self._pending = self._pending[:size], self._pending[size:]
        return chunk


def copy_rows(
    cursor: Any, table: str, columns: Sequence[str], rows: Iterable[Sequence[object]], extra: Sequence[object] = ()
) -> int:
    """COPY the rows into ``table``; ``extra`` holds values for further columns, the same in every row.

    CSV rules: None is NULL (text in our rows is never empty, so an unquoted empty field can only mean NULL),
    floats are written with repr, so every bit survives.
    """
    statement = sql.SQL("copy {} ({}) from stdin with (format csv)").format(
        sql.Identifier(table), sql.SQL(", ").join(sql.Identifier(column) for column in columns)
    )
    cursor.copy_expert(statement, CsvStream(rows, [str(value) for value in extra]), size=READ_SIZE)
    return int(cursor.rowcount)


@contextmanager
def foreign_keys_deferred(cursor: Any, tables: Sequence[str]) -> Iterator[None]:
    """Drop the foreign keys of ``tables`` for a bulk load, and add them back, checked, when it is done.

    One check by join at the end is far cheaper than one per row. Use it inside the loading transaction:
    if the load fails, the rollback restores the keys.
    """
    cursor.execute(
        "select n.nspname, c.relname, k.conname, pg_get_constraintdef(k.oid) "
        "from pg_constraint k join pg_class c on c.oid = k.conrelid join pg_namespace n on n.oid = c.relnamespace "
        "where k.contype = 'f' and k.conrelid = any(%s::regclass[]) order by c.relname, k.conname",
        (list(tables),),
    )
    keys = cursor.fetchall()
    for schema, table, name, _ in keys:
        cursor.execute(
            sql.SQL("alter table {} drop constraint {}").format(sql.Identifier(schema, table), sql.Identifier(name))
        )
    yield
    for schema, table, name, definition in keys:
        cursor.execute(
            sql.SQL("alter table {} add constraint {} {}").format(
                sql.Identifier(schema, table), sql.Identifier(name), sql.SQL(definition)
            )
        )

"""Where each worker process's derived truth ends, in Postgres: what lets another worker publish the minutes of a
process that was killed.

Each worker process (an incarnation) writes, once a second, the start of its first minute whose truth is not yet
in Kafka (``beat``). A process that stops gracefully publishes everything and is marked ``ended``. One that has
not written for a while is taken to be dead: a live worker claims it (``claim_dead``), counts its records from
that moment on again from Kafka, publishes them and marks it ended. Blocking calls: run them in a thread.
"""

from __future__ import annotations

from importlib.resources import files
from typing import Any

import psycopg2

#: The DDL of truth_incarnations, shipped beside this module; applied once per TruthMarks, at its first connection.
DDL_FILE = "truth_marks.sql"

#: Serialises the DDL between sessions: two creating the same table at once collide.
DDL_LOCK = 0x7472757468  # "truth"


class TruthMarks:
    """The truth_incarnations rows of one APP_ID."""

    def __init__(self, dsn: str, app_id: str) -> None:
        self._dsn = dsn
        self._app_id = app_id
        self._ready = False

    def _connect(self) -> Any:
        connection = psycopg2.connect(self._dsn, connect_timeout=10)
        if not self._ready:
            with connection, connection.cursor() as cursor:
                cursor.execute("select pg_advisory_xact_lock(%s)", (DDL_LOCK,))
                cursor.execute(files("db").joinpath(DDL_FILE).read_text(encoding="utf-8"))
            self._ready = True
        return connection

    def _run(self, statement: str, params: tuple[Any, ...]) -> list[tuple[Any, ...]]:
        """Execute ``statement`` in a transaction of its own connection; the rows it returns, if any."""
        connection = self._connect()
        try:
            with connection, connection.cursor() as cursor:
                cursor.execute(statement, params)
                return cursor.fetchall() if cursor.description is not None else []
        finally:
            connection.close()

    def beat(self, incarnation: str, truth_from: int) -> None:
        """``incarnation`` lives, and its truth is published up to ``truth_from`` (epoch ms; it never goes back)."""
        self._run(
            "insert into truth_incarnations (app_id, incarnation, truth_from) values (%s, %s, %s)"
            " on conflict (app_id, incarnation) do update set seen_at = now(),"
            " truth_from = greatest(truth_incarnations.truth_from, excluded.truth_from)",
            (self._app_id, incarnation, truth_from),
        )

    def end(self, incarnations: list[str]) -> None:
        """The truth of ``incarnations`` is all in Kafka: nobody needs to count them again."""
        self._run(
            "update truth_incarnations set ended = true where app_id = %s and incarnation = any(%s)",
            (self._app_id, incarnations),
        )

    def claim_dead(self, me: str, silent_seconds: float) -> dict[str, int]:
        """Claim the incarnations (other than ``me``) not ended and silent for ``silent_seconds``: incarnation ->
        truth_from. A claim holds for ``silent_seconds``; one whose claimer dies in turn is claimed again."""
        rows = self._run(
            "update truth_incarnations set seen_at = now() where app_id = %s and not ended"
            " and incarnation <> %s and seen_at < now() - make_interval(secs => %s)"
            " returning incarnation, truth_from",
            (self._app_id, me, silent_seconds),
        )
        return {str(incarnation): int(truth_from) for incarnation, truth_from in rows}

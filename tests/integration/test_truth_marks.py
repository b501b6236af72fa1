"""The truth marks against a real Postgres: a beat records where a process's truth ends (never going back), a
silent process is claimed once with where to count from, and an ended one is never claimed."""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest

from db.throwaway import create_database, drop_database, dsn_for
from db.truth_marks import TruthMarks
from tests.support import PG_DSN

pytestmark = pytest.mark.integration


@pytest.fixture
def dsn() -> Iterator[str]:
    name = create_database(PG_DSN, "truthmarks")
    try:
        yield dsn_for(PG_DSN, name)
    finally:
        drop_database(PG_DSN, name)


def test_a_silent_process_is_claimed_once_from_where_its_truth_ends_and_an_ended_one_never(dsn: str) -> None:
    marks, other_app = TruthMarks(dsn, "app-a"), TruthMarks(dsn, "app-b")
    marks.beat("dead", 120_000)
    marks.beat("dead", 60_000)  # never back
    marks.beat("stopped", 180_000)
    marks.end(["stopped"])
    other_app.beat("elsewhere", 240_000)
    marks.beat("me", 300_000)
    time.sleep(1.2)
    assert marks.claim_dead("me", 1.0) == {"dead": 120_000}  # not itself, not the ended one, not another APP_ID
    assert marks.claim_dead("me", 1.0) == {}  # a claim holds for the silence it waited
    assert marks.claim_dead("someone", 30.0) == {}  # "me" beat 1.2 s ago: alive for a 30 s limit
    time.sleep(1.2)
    assert marks.claim_dead("someone", 1.0) == {"dead": 120_000, "me": 300_000}  # a claimer that dies is claimed
    marks.end(["dead", "me"])
    time.sleep(1.2)
    assert marks.claim_dead("someone", 1.0) == {}
    assert other_app.claim_dead("x", 1.0) == {"elsewhere": 240_000}

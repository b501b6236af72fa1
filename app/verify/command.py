"""``faust -A app verify``: take the topics' watermarks, read the stock, read every topic once, judge, report.

Exit status 0 when every check passes or is skipped, 1 when one fails, 2 when what verify needs cannot be read
(Kafka, the registry or Postgres not answering in time).
"""

from __future__ import annotations

import dataclasses
import json
import sys
import time
from collections import Counter
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import IO, Any

from app.settings import Settings
from app.verify.checks import SETTLE_MS, Evidence, Stock, evaluate
from app.verify.expectations import Expectations
from app.verify.observe import Collector
from app.verify.reader import (
    Ends,
    Progress,
    Snapshot,
    VerifyError,
    consumer_for,
    decoder_for,
    read_topic,
    take_snapshot,
    watermarks,
)
from app.verify.relations import OnHand
from app.verify.results import FAIL, PASS, SKIP, CheckResult
from app.verify.shares import MIN_EXPECTED
from app.verify.sources import read_listing, read_reference, read_stock
from app.verify.truth import count_generated, read_truth
from app.wire.roles import (
    CUSTOMER_INTERACTIONS,
    DEAD_LETTER,
    INVENTORY_CHANGES,
    ORDERS,
    PAYMENTS,
    REQUESTS,
    SHIPMENTS,
    TRUTH,
)

#: Exit statuses.
OK, FAILED, UNREADABLE = 0, 1, 2
#: The order the watermarks are taken in: derived topics before the topics they derive from, so that a derived
#: record inside the snapshot has its source inside it too, even while a worker runs.
SNAPSHOT_ORDER = (
    INVENTORY_CHANGES,
    SHIPMENTS,
    PAYMENTS,
    DEAD_LETTER,
    REQUESTS,
    ORDERS,
    CUSTOMER_INTERACTIONS,
)
#: The order the topics are read in.
READ_ORDER = (ORDERS, PAYMENTS, SHIPMENTS, INVENTORY_CHANGES, CUSTOMER_INTERACTIONS, REQUESTS, DEAD_LETTER)


def verify(
    settings: Settings,
    json_path: str | None,
    worker_urls: Sequence[str],
    timeout: float,
    out: IO[str] = sys.stdout,
    err: IO[str] = sys.stderr,
) -> int:
    """Check every promise against the deployment ``settings`` describe; the exit status."""
    expected = Expectations.from_settings(settings)
    print(header(expected), file=out, flush=True)
    try:
        evidence, snapshot = gather(settings, expected, worker_urls, timeout, err)
    except VerifyError as error:
        print(f"verify: cannot verify: {error}", file=err, flush=True)
        return UNREADABLE
    results = evaluate(evidence)
    for result in results:
        print(result.line(), file=out)
    status = FAILED if any(result.failed for result in results) else OK
    print(summary(results, status), file=out, flush=True)
    if json_path:
        Path(json_path).write_text(json.dumps(report(evidence, snapshot, results, status), indent=2) + "\n")
    return status


def header(expected: Expectations) -> str:
    """What the figures mean."""
    return (
        f"verify: a share passes within z = {expected.z:g} standard errors of its probability, sqrt(p(1-p)/n) each "
        f"(a correct run fails one with probability about 7e-6, at most 2e-4 for the smallest samples judged); "
        f"samples with n*p or n*(1-p) below {MIN_EXPECTED:g} are skipped; exact checks count what is wrong"
    )


def gather(
    settings: Settings, expected: Expectations, worker_urls: Sequence[str], timeout: float, err: IO[str]
) -> tuple[Evidence, Snapshot]:
    """The watermarks, the stock just after them, then every topic read once, and the reference rows named."""
    names = {**expected.topics, REQUESTS: expected.requests_topic}
    roles = [role for role in SNAPSHOT_ORDER if role != REQUESTS or expected.agents_enabled]
    consumer = consumer_for(settings)
    try:
        snapshot = take_snapshot(consumer, [names[role] for role in roles], timeout)
        started_ms = int(time.time() * 1000)
        for topic in snapshot.missing:
            print(f"verify: {topic} does not exist: read as empty", file=err, flush=True)
        stock = read_holders(settings, expected, worker_urls, timeout)
        ledger = names[INVENTORY_CHANGES]
        grown = _records(watermarks(consumer, ledger, timeout) or {}) - _records(snapshot.ends.get(ledger, {}))
        collector = Collector(expected, decoder_for(settings, time.monotonic() + timeout))
        progress = Progress(err)
        for role in READ_ORDER:
            topic = names[role]
            if topic in snapshot.ends:
                read_topic(consumer, topic, snapshot.ends[topic], collector.add, progress, time.monotonic() + timeout)
    finally:
        consumer.close()
    seen = collector.observations
    moving = _moving(grown, ledger, started_ms - seen.newest_ms.get(INVENTORY_CHANGES, 0))
    dsn = settings.pg_dsn.get_secret_value()
    products = {*seen.products, *(product_id for product_id, _ in seen.skus)}
    reference = read_reference(dsn, timeout, seen.users, products, seen.warehouses)
    evidence = Evidence(seen, reference, _with_moving(stock, moving), expected, started_ms)
    return _with_truth(evidence, settings, timeout, progress), snapshot


def _with_truth(evidence: Evidence, settings: Settings, timeout: float, progress: Progress) -> Evidence:
    """The evidence with the truth topic's latest records and, read after them, the same counts made from the
    generated topics (so every minute published is whole in what is counted)."""
    if not settings.truth_enabled:
        return dataclasses.replace(evidence, truth_reason="TRUTH_ENABLED=false: no truth topic is published")
    truth_topic = settings.topics()[TRUTH]
    told = read_truth(settings, timeout, lambda read: progress.tick(truth_topic, read, read))
    progress.tick(truth_topic, len(told), len(told), done=True)
    counted = count_generated(settings, lambda read: progress.tick("the generated topics, by shard", read, read))
    return dataclasses.replace(evidence, truth=told, recount=counted)


def read_holders(settings: Settings, expected: Expectations, worker_urls: Sequence[str], timeout: float) -> Stock:
    """The stock in Postgres and in the workers' tables, as far as this deployment keeps it there."""
    postgres: OnHand | None = None
    totals: list[str] | None = None
    rows = 0
    if expected.agents_enabled and expected.postgres_holds_stock:
        postgres, totals, rows = read_stock(settings.pg_dsn.get_secret_value(), timeout)
        postgres_reason = ""
    elif expected.agents_enabled:
        postgres_reason = "CANON_INVENTORY=kafka with MIRROR_INVENTORY_TO_DB=false: Postgres does not follow the stock"
    else:
        postgres_reason = "AGENTS_ENABLED=false"
    worker: OnHand | None = None
    if expected.canon_inventory != "kafka":
        worker_reason = "CANON_INVENTORY=postgres: the worker's view serves the warehouse_inventory rows checked above"
    else:
        try:
            worker = read_listing(worker_urls, min(timeout, 10.0))
            worker_reason = ""
        except VerifyError as error:
            worker_reason = f"the worker's stock table cannot be read: {error}"
    return Stock(postgres, postgres_reason, totals, rows, worker, worker_reason)


def _records(ends: Ends) -> int:
    """How many records a topic has had: the sum of its high watermarks."""
    return sum(high for _, high in ends.values())


def _moving(grown: int, ledger: str, age_ms: int) -> str:
    """Why the stock may have moved while it was read, or ''."""
    if grown:
        return f"{ledger} grew by {grown:,} records while the stock was read"
    if age_ms < SETTLE_MS:
        return f"the newest inventory change was {age_ms / 1000:.1f} s old (the stock may still be being written)"
    return ""


def _with_moving(stock: Stock, moving: str) -> Stock:
    return dataclasses.replace(stock, moving=moving)


def summary(results: Sequence[CheckResult], status: int) -> str:
    counts = Counter(result.status for result in results)
    return (
        f"verify: {len(results)} checks: {counts[PASS]} passed, {counts[FAIL]} failed, {counts[SKIP]} skipped; "
        f"exit status {status}"
    )


def report(evidence: Evidence, snapshot: Snapshot, results: Sequence[CheckResult], status: int) -> dict[str, Any]:
    """The JSON of ``--json``: every check's result, the figures it rests on, and what was read."""
    seen = evidence.seen
    return {
        "verified_at": datetime.fromtimestamp(evidence.started_ms / 1000, UTC).isoformat(),
        "exit_status": status,
        "z": evidence.expected.z,
        "min_expected": MIN_EXPECTED,
        "summary": dict(Counter(result.status for result in results)),
        "topics": {
            topic: {"records": snapshot.total(topic), "partitions": len(ends)} for topic, ends in snapshot.ends.items()
        },
        "missing_topics": snapshot.missing,
        "records_by_role": dict(seen.records),
        "byte_identical_copies": dict(seen.copies),
        "bad_records": dict(seen.bad_by_topic),
        "dead_letters_by_kind": dict(seen.dead_letters.kinds),
        "inventory_changes_by_kind": dict(seen.change_kinds),
        "checks": [result.to_dict() for result in results],
    }

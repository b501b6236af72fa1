"""Generation shards against the real stack: one total rate from 1, 2 or 3 workers, the same data from the same
seed whatever their number, and no id made twice when a worker is killed and its shards move."""

from __future__ import annotations

import os
import re
import signal
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path

import psycopg2
import pytest
from confluent_kafka import Consumer, TopicPartition
from confluent_kafka.serialization import MessageField, SerializationContext

from app.wire.headers import BAD_RECORD_HEADER
from tests.stock_support import high_watermarks as topic_watermarks
from tests.support import (
    KAFKA_BOOTSTRAP,
    ReadRecord,
    Worker,
    http_get,
    registry_client,
    run_worker,
    topic_deserializer,
    unique_topics,
    wait_for,
)

pytestmark = pytest.mark.integration

SHARDS = 12
SMALL = {"N_USERS": "300", "N_PRODUCTS": "200", "N_WAREHOUSES": "2", "N_SUPPLIERS": "8"}
#: Every shard a worker starts is logged with the event it starts at.
STARTED = re.compile(r"started ((?:\d+ at event \d+(?:, )?)+)")
#: Fields that carry times: the only ones allowed to differ between runs of one seed.
TIMES = {"event_time", "eta"}
#: Faust's BROKER_SESSION_TIMEOUT in the kill test: how long the group takes to notice a dead worker.
SESSION = 8
GENERATED = ("TOPIC_ORDERS", "TOPIC_CUSTOMER_INTERACTIONS", "TOPIC_INVENTORY_CHANGES")


@contextmanager
def group(tmp_path: Path, count: int, settings: dict[str, str]) -> Iterator[list[Worker]]:
    """``count`` workers of one APP_ID started together, each with its own data directory and port."""
    with ExitStack() as stack:
        workers = []
        for index in range(count):
            directory = tmp_path / f"worker-{index + 1}"
            directory.mkdir(parents=True, exist_ok=True)
            workers.append(stack.enter_context(run_worker(directory, settings)))
        for worker in workers:
            worker.wait_until("/stats/", 200, timeout=120)
        yield workers


def group_report(worker: Worker) -> dict:
    return http_get(worker.url + "/stats/", timeout=10)[1]["group"]


def all_shards_held(workers: list[Worker], count: int) -> bool:
    """Every shard held by one of ``count`` reachable workers, each of which emits."""
    report = group_report(workers[0])
    held = sorted(shard for worker in report["workers"] for shard in worker["generating"])
    live = [worker for worker in report["workers"] if worker["reachable"]]
    return held == list(range(SHARDS)) and len(live) == count


def still(worker: Worker, settle: float = 3.0, timeout: float = 120.0) -> None:
    """Wait until the agents' counts stop moving (reorders and returns stay scheduled: they are days away)."""
    deadline, last = time.monotonic() + timeout, None
    while time.monotonic() < deadline:
        now = http_get(worker.url + "/stats/?local")[1]["agents"]
        if now == last and now:
            return
        last = now
        time.sleep(settle)
    raise AssertionError(f"the agents never went still: {last}")


def started_shards(worker: Worker) -> list[tuple[int, int]]:
    """(shard, first event) of every shard the worker started, in order."""
    found = []
    for match in STARTED.finditer(worker.log()):
        for part in match.group(1).split(", "):
            shard, event = part.split(" at event ")
            found.append((int(shard), int(event)))
    return found


def high_watermarks(topics: list[str]) -> dict[tuple[str, int], int]:
    return {(topic, partition): end for topic in topics for partition, end in topic_watermarks(topic).items()}


def read_to_watermarks(topics: list[str]) -> list[ReadRecord]:
    """Every record of ``topics``, read from the start to the high watermarks taken first."""
    marks = high_watermarks(topics)
    deserializer = topic_deserializer(registry_client())
    consumer = Consumer(
        {"bootstrap.servers": KAFKA_BOOTSTRAP, "group.id": f"shards-{uuid.uuid4().hex}", "enable.auto.commit": False}
    )
    consumer.assign([TopicPartition(topic, partition, 0) for (topic, partition), end in marks.items() if end])
    left = {tp for tp, end in marks.items() if end}
    records: list[ReadRecord] = []
    deadline = time.monotonic() + 120
    try:
        while left and time.monotonic() < deadline:
            for message in consumer.consume(num_messages=5000, timeout=1.0):
                assert not message.error(), message.error()
                tp = (message.topic(), message.partition())
                if message.offset() >= marks[tp]:
                    continue
                value, error = None, None
                try:
                    value = deserializer(message.value(), SerializationContext(message.topic(), MessageField.VALUE))
                except Exception as caught:
                    error = type(caught).__name__
                headers = dict(message.headers() or [])
                raw, stamp = message.value(), message.timestamp()[1]
                records.append(ReadRecord(*tp, message.offset(), message.key(), raw, stamp, headers, value, error))
                if message.offset() == marks[tp] - 1:
                    left.discard(tp)
    finally:
        consumer.close()
    assert not left, f"never read to the high watermark of {sorted(left)}"
    return records


def contents(records: list[ReadRecord], roles: dict[str, str]) -> Counter[tuple]:
    """Each record as its topic role, key and fields but times (or, undecodable, its bad-record kind)."""
    seen: Counter[tuple] = Counter()
    for record in records:
        if record.value is None:
            seen[(roles[record.topic], record.key, record.headers.get(BAD_RECORD_HEADER))] += 1
        else:
            fields = tuple(sorted((name, value) for name, value in record.value.items() if name not in TIMES))
            seen[(roles[record.topic], record.key, fields)] += 1
    return seen


# Rate ------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("workers", [1, 2, 3])
def test_workers_of_one_app_id_keep_one_total_rate(
    tmp_path: Path, pg_database_factory: Callable[[], str], workers: int
) -> None:
    target, window = 3000.0, 15.0
    topics = unique_topics(f"rate{workers}")
    settings = {
        **topics,
        **SMALL,
        "PG_DSN": pg_database_factory(),
        "TARGET_EPS": str(target),
        "DIURNAL_ENABLED": "false",
        "AGENTS_ENABLED": "false",
    }
    names = [topics[role] for role in GENERATED]
    with group(tmp_path, workers, settings) as running:
        wait_for(lambda: all_shards_held(running, workers), f"{workers} workers to hold all {SHARDS} shards")
        time.sleep(2.0)  # past the start of the last shards
        start, first = time.monotonic(), sum(high_watermarks(names).values())
        time.sleep(window)
        end, last = time.monotonic(), sum(high_watermarks(names).values())
        report = group_report(running[0])
    achieved = (last - first) / (end - start)
    # 1%, plus what the two readings cannot see: a tick (0.05 s) and a delivery's jitter (0.05 s) at each end.
    tolerance = 0.01 + 2 * 0.1 / window
    assert abs(achieved / target - 1) <= tolerance, (achieved, target, report)
    assert report["target_eps"] == pytest.approx(target)
    assert sorted(len(worker["shards"]) for worker in report["workers"]) == sorted(
        [SHARDS // workers + (1 if index < SHARDS % workers else 0) for index in range(workers)]
    )


# Same seed -------------------------------------------------------------------------------------------------


def _seeded_run(tmp_path: Path, dsn: str, workers: int) -> tuple[Counter[tuple], list[list[tuple[int, int]]]]:
    topics = unique_topics(f"seed{workers}")
    settings = {
        **topics,
        **SMALL,
        "PG_DSN": dsn,
        "RANDOM_SEED": "23",
        "TARGET_EPS": "1500",
        "MAX_EVENTS": "1500",
        "DIURNAL_ENABLED": "false",
        "CANON_INVENTORY": "kafka",
        "P_BAD_RECORD": "0.01",
        # What the agents decide depends on the order requests arrive in only where they compete for stock: one
        # warehouse (no choice between two by the units they hold), no reorder or return arriving during the run
        # (a business day lasts 24 minutes) and no background changes (a DAMAGE before or after an order takes
        # different units) keep the decisions of a short run independent of it.
        "N_WAREHOUSES": "1",
        "WEIGHT_INVENTORY_CHG": "0",
        "LEAD_TIME_SCALE": str(1 / 60),
        # Long enough for workers started together on two cores to join before any shard starts.
        "GENERATION_SETTLE_SECONDS": "8",
    }
    with group(tmp_path, workers, settings) as running:
        for worker in running:
            worker.wait_until_logged("MAX_EVENTS=", timeout=180)
        for worker in running:
            still(worker)
        starts = [started_shards(worker) for worker in running]
    # The truth topic counts per minute of emission time, which differs from run to run.
    roles = {topics[name]: name for name in topics if name.startswith("TOPIC_") and name != "TOPIC_TRUTH"}
    return contents(read_to_watermarks(list(roles)), roles), starts


def test_the_same_seed_gives_the_same_data_whatever_the_number_of_workers(
    tmp_path: Path, pg_database_factory: Callable[[], str]
) -> None:
    dsn = pg_database_factory()
    runs = {count: _seeded_run(tmp_path / f"n{count}", dsn if count == 1 else pg_database_factory(), count)
            for count in (1, 2, 3)}
    for count, (_, starts) in runs.items():
        started = sorted(shard for worker in starts for shard in worker)
        assert started == [(shard, 0) for shard in range(SHARDS)], f"{count} workers: a shard moved: {starts}"
    one = runs[1][0]
    orders_and_interactions = sum(n for key, n in one.items() if key[0] in GENERATED[:2])
    assert orders_and_interactions == 1500  # no background changes here
    by_role = Counter(key[0] for key in one.elements())
    assert min(by_role[role] for role in ("TOPIC_PAYMENTS", "TOPIC_SHIPMENTS")) > 100, by_role
    assert by_role["TOPIC_DEAD_LETTER"] > 0, by_role
    # Where orders compete for a product's last units, which ships depends on the order they arrive in; elsewhere
    # every decision must be the same. A product competes when its good orders ask for more than the seeded stock
    # (the same in every run's database: one seed; Postgres keeps it, kafka mode without the mirror).
    contended = _contended(one, _available(dsn))
    one = _uncontended(one, contended)
    compared = Counter(key[0] for key in one.elements())
    assert compared["TOPIC_SHIPMENTS"] > 100, (compared, len(contended))
    for count in (2, 3):
        other = _uncontended(runs[count][0], contended)
        extra, missing = other - one, one - other
        assert other == one, f"{count} workers: {sum(extra.values())} records more, {sum(missing.values())} fewer: " + (
            f"{sorted(extra)[:3]} ... {sorted(missing)[:3]}"
        )


def _available(dsn: str) -> dict[int, int]:
    """Units each product had to sell when the run began: its seeded on_hand - reserved over the warehouses."""
    with psycopg2.connect(dsn) as connection, connection.cursor() as cursor:
        cursor.execute("select product_id, sum(on_hand - reserved) from warehouse_inventory group by product_id")
        return {int(product): int(units) for product, units in cursor.fetchall()}


def _fields(key: tuple) -> dict:
    return dict(key[2]) if isinstance(key[2], tuple) else {}


def _contended(seen: Counter[tuple], available: dict[int, int]) -> set[int]:
    """Products whose good orders ask for more units than they had."""
    asked: Counter[int] = Counter()
    for key, count in seen.items():
        order = _fields(key)
        if key[0] == "TOPIC_ORDERS" and order.get("quantity", 0) > 0:
            asked[order["product_id"]] += order["quantity"] * count
    return {product for product, units in asked.items() if units > available.get(product, 0)}


def _uncontended(seen: Counter[tuple], contended: set[int]) -> Counter[tuple]:
    """``seen`` without the shipments and SALEs of contended products (their order of arrival decides them)."""
    orders = [_fields(key) for key in seen if key[0] == "TOPIC_ORDERS"]
    product_of = {order.get("order_id"): order.get("product_id") for order in orders}
    kept: Counter[tuple] = Counter()
    for key, count in seen.items():
        fields = _fields(key)
        product = fields.get("product_id") if key[0] == "TOPIC_INVENTORY_CHANGES" else None
        if key[0] == "TOPIC_SHIPMENTS":
            product = product_of.get(fields.get("order_id"))
        if product not in contended:
            kept[key] = count
    return kept


# No replay -------------------------------------------------------------------------------------------------


def test_a_killed_worker_s_shards_move_and_no_id_is_made_twice(
    tmp_path: Path, pg_database_factory: Callable[[], str]
) -> None:
    topics = unique_topics("replay")
    settings = {
        **topics,
        **SMALL,
        "PG_DSN": pg_database_factory(),
        "RANDOM_SEED": "29",
        "TARGET_EPS": "1500",
        "DIURNAL_ENABLED": "false",
        "AGENTS_ENABLED": "false",
        "BROKER_SESSION_TIMEOUT": str(SESSION),
        "BROKER_HEARTBEAT_INTERVAL": "1",
    }
    with group(tmp_path / "first", 2, settings) as (keeper, victim):
        wait_for(lambda: all_shards_held([keeper, victim], 2), "2 workers to hold all shards")
        time.sleep(2.0 + 2.0 * (int.from_bytes(os.urandom(1)) / 255))
        before = len(started_shards(keeper))
        victim.process.send_signal(signal.SIGKILL)
        victim.process.wait()
        # Back to every shard generating, so to the whole rate, within the session timeout plus 10 s.
        wait_for(lambda: all_shards_held([keeper], 1), "the survivor to take over every shard", timeout=SESSION + 10)
        time.sleep(2.0)
        with group(tmp_path / "again", 1, settings) as (restarted,):
            wait_for(lambda: all_shards_held([keeper, restarted], 2), "the restarted worker to take shards back")
            time.sleep(3.0)
            moved = started_shards(keeper)[before:] + started_shards(restarted)
    assert moved, "no shard moved"
    assert all(event > 0 for _, event in moved), moved
    names = [topics[role] for role in GENERATED]
    records = read_to_watermarks(names)
    by_id: dict[str, set[bytes]] = {}
    for record in records:
        if record.value is None:
            continue
        for field in ("order_id", "interaction_id", "change_id"):
            if field in record.value:
                by_id.setdefault(record.value[field], set()).add(record.raw)
    assert len(by_id) > 10_000
    twice = {identifier: raws for identifier, raws in by_id.items() if len(raws) > 1}
    assert not twice, f"{len(twice)} ids made twice with different contents, e.g. {next(iter(twice))}"

    # The APP_ID's shards table now has 12 partitions: another GENERATION_SHARDS is refused in one line.
    (tmp_path / "other-count").mkdir()
    with run_worker(tmp_path / "other-count", {**settings, "GENERATION_SHARDS": "5"}) as refused:
        assert refused.process.wait(timeout=120) == 2
        lines = [line for line in refused.log().splitlines() if "GENERATION_SHARDS=5:" in line]
        table = f"{settings['APP_ID']}-generation-shards-changelog"
        assert len(lines) == 1, refused.log()[-3000:]
        assert lines[0].rstrip().endswith(
            f"[CRITICAL] retail-datagen: GENERATION_SHARDS=5: the shards table of this APP_ID ({table}) has {SHARDS} "
            f"partitions; accepted: GENERATION_SHARDS={SHARDS}, or a new APP_ID"
        )

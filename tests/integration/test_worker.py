"""The worker against the real stack: topics, subjects, and what GET /health says."""

from __future__ import annotations

from pathlib import Path

import pytest
from confluent_kafka.admin import AdminClient

from tests.support import KAFKA_BOOTSTRAP, REGISTRY_URL, free_port, http_get, run_worker, unique_topics

pytestmark = pytest.mark.integration

ROLES_WITH_SCHEMAS = (
    "TOPIC_ORDERS",
    "TOPIC_PAYMENTS",
    "TOPIC_SHIPMENTS",
    "TOPIC_INVENTORY_CHANGES",
    "TOPIC_CUSTOMER_INTERACTIONS",
    "TOPIC_TRUTH",
)


def _partition_counts(names: list[str]) -> dict[str, int]:
    metadata = AdminClient({"bootstrap.servers": KAFKA_BOOTSTRAP}).list_topics(timeout=10)
    return {name: len(metadata.topics[name].partitions) for name in names if name in metadata.topics}


def test_worker_creates_topics_registers_subjects_and_is_healthy(tmp_path: Path) -> None:
    topics = unique_topics("boot")
    with run_worker(tmp_path, {**topics, "TOPIC_PARTITIONS": "3"}) as worker:
        body = worker.wait_until("/health", 200)
        assert body["status"] == "ok"
        assert body["failing"] == []
        assert {name: check["ok"] for name, check in body["checks"].items()} == {
            "kafka": True,
            "registry": True,
            "postgres": True,
        }
        worker.wait_until_logged("registered value schemas")
        worker.wait_until_logged("topics ready")

        topic_names = [value for key, value in topics.items() if key.startswith("TOPIC_")]
        assert _partition_counts(topic_names) == dict.fromkeys(topic_names, 3)

        status, subjects = http_get(f"{REGISTRY_URL}/subjects")
        assert status == 200
        for key in ROLES_WITH_SCHEMAS:
            assert f"{topics[key]}-value" in subjects
        assert f"{topics['TOPIC_DEAD_LETTER']}-value" not in subjects

        status, latest = http_get(f"{REGISTRY_URL}/subjects/{topics['TOPIC_ORDERS']}-value/versions/latest")
        assert status == 200
        assert '"name":"Order"' in latest["schema"].replace(" ", "")


def test_health_names_postgres_when_it_does_not_answer(tmp_path: Path) -> None:
    dead_dsn = f"host=127.0.0.1 port={free_port()} dbname=demo user=admin password=admin connect_timeout=2"
    with run_worker(tmp_path, {**unique_topics("nopg"), "PG_DSN": dead_dsn}) as worker:
        body = worker.wait_until("/health", 503)
        assert body["failing"] == ["postgres"]
        assert body["checks"]["kafka"]["ok"] is True
        assert body["checks"]["registry"]["ok"] is True
        assert "password" not in str(body)
        worker.wait_until_logged("seeding Postgres failed")
        worker.wait_until_logged("topics ready")
        worker.wait_until_logged("registered value schemas")
        assert "password=admin" not in worker.log()


def test_registry_outage_does_not_stop_the_worker(tmp_path: Path) -> None:
    dead_registry = f"http://127.0.0.1:{free_port()}"
    with run_worker(tmp_path, {**unique_topics("noreg"), "SCHEMA_REGISTRY_URL": dead_registry}) as worker:
        body = worker.wait_until("/health", 503)
        assert body["failing"] == ["registry"]
        worker.wait_until_logged("retrying in")
        assert worker.process.poll() is None

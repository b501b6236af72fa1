"""Every worker, whatever its role, joins its group with Faust's own partition assignor: Kafka refuses a member
whose assignor no other member offers, so a worker on aiokafka's round robin could not join the others.

faust-streaming 0.15.3 picks the assignor when it creates the worker's consumer
(``AIOKafkaConsumerThread._create_worker_consumer``): its own when the app has a table or standby replicas, round
robin otherwise. ``app.main.standby_replicas`` relies on that; these tests ask Faust's code itself, for every role.
"""

from __future__ import annotations

import hashlib
import inspect
import itertools

import faust
import faust.transport.drivers.aiokafka
import pytest
from faust.assignor import PartitionAssignor

from app.main import create_app
from app.settings import load_settings

PINNED = "c2701bfc3e6f6cad95c2be36d6a255a86e2c57d18d36cc1082b5fb5c482d99d7"
ROLES = list(itertools.product(("true", "false"), ("true", "false"), ("kafka", "postgres")))


def test_the_assignor_choice_is_the_pinned_one() -> None:
    source = inspect.getsource(faust.transport.drivers.aiokafka.AIOKafkaConsumerThread._create_worker_consumer)
    assert faust.__version__ == "0.15.3"
    assert hashlib.sha256(source.encode()).hexdigest() == PINNED, (
        "faust-streaming changed how a worker's consumer picks its assignor: check app.main.standby_replicas"
    )


@pytest.mark.parametrize(("generation", "agents", "mode"), ROLES)
async def test_every_role_joins_with_faust_s_assignor(generation: str, agents: str, mode: str) -> None:
    settings = load_settings(
        {
            "PG_DSN": "host=127.0.0.1 dbname=demo user=admin password=admin",
            "GENERATION_ENABLED": generation,
            "AGENTS_ENABLED": agents,
            "CANON_INVENTORY": mode,
        }
    )
    app = create_app(settings)
    thread = app.consumer._thread  # type: ignore[attr-defined]
    consumer = thread._create_worker_consumer(app.transport)  # makes no connection until started
    try:
        assert isinstance(thread._assignor, PartitionAssignor)
        assert thread._assignor is app.assignor
    finally:
        await consumer.stop()

"""Builds the Faust app from the settings: wiring only (topics, agents, views, commands and the start-up task)."""

from __future__ import annotations

import logging
import os
import socket
import sys
from typing import Any

import faust
from confluent_kafka.schema_registry import SchemaRegistryClient
from mode import BaseSignalT

from agents.fulfilment import FulfilmentAgents
from agents.generation import GenerationAgent
from app.clients import faust_credentials, registry_config
from app.commands import register_commands
from app.exceptions import SettingsError
from app.fast_consumer import SeekFirstTableManager
from app.health import HealthChecker
from app.metrics import register_metrics
from app.settings import Settings, load_settings
from app.shutdown import DatagenWorker
from app.startup import register_start_up
from app.topics import DatagenApp, declare_topics
from app.web.health import register_health
from app.web.stock_sources import inventory_source
from app.web.views import register_inventory_views

log = logging.getLogger(__name__)

def app_from_environment() -> faust.App:
    """The app for ``faust -A app``: settings from the environment; exit 2 with one line if one is bad."""
    try:
        settings = load_settings(os.environ)
        return create_app(settings)
    except SettingsError as error:
        print(f"retail-datagen: {error}", file=sys.stderr)
        raise SystemExit(2) from None


#: WEB_HOST's value for "the address this machine's host name resolves to".
AUTO_HOST = "auto"


def advertised_host(web_host: str) -> str:
    """The host other workers reach this one by: WEB_HOST, or with ``auto`` the address of this machine's name.

    ``auto`` suits the containers of a scaled compose service (``--scale datagen=3``): they share one service name,
    but each has its own address, which is what Faust's routed views must reach.
    """
    if web_host != AUTO_HOST:
        return web_host
    try:
        return socket.gethostbyname(socket.gethostname())
    except OSError as error:
        log.warning("WEB_HOST=auto: this machine's name does not resolve (%s); using 127.0.0.1", error)
        return "127.0.0.1"


def has_tables(settings: Settings) -> bool:
    """True when this worker declares a table: the generation shards, or the Kafka ledger's."""
    return settings.generation_enabled or (settings.agents_enabled and settings.canon_inventory == "kafka")


def standby_replicas(settings: Settings) -> int:
    """Faust's table_standby_replicas: 0, but 1 on a worker without any table (it then has nothing to copy).

    No standby copies of other workers' tables: on one host they double each worker's RocksDB memory and the
    changelog reading, and the tables are small enough to recover from their changelogs when partitions move.
    But faust-streaming 0.15.3 gives a worker with no table and no standby replicas aiokafka's round-robin
    assignor instead of its own (``AIOKafkaConsumerThread._create_worker_consumer``), and Kafka refuses a member
    whose assignor no other member of the group offers (InconsistentGroupProtocol): a postgres-mode worker with
    GENERATION_ENABLED=false could not join generating workers. One standby replica keeps it on Faust's assignor;
    tests/unit/app/test_assignor.py fails when that choice in Faust changes.
    """
    return 0 if has_tables(settings) else 1


def create_app(settings: Settings) -> faust.App:
    """A Faust app wired to ``settings``; it opens no connection until the worker starts."""
    app = DatagenApp(
        settings.app_id,
        broker=[f"kafka://{server}" for server in settings.kafka_bootstrap.split(",")],
        broker_credentials=faust_credentials(settings),
        store="rocksdb://",
        TableManager=SeekFirstTableManager,  # recovery that stops the flow before it seeks (app/fast_consumer.py)
        datadir=settings.data_dir,
        topic_partitions=settings.topic_partitions,
        topic_replication_factor=settings.topic_replication_factor,
        table_standby_replicas=standby_replicas(settings),
        web_bind=settings.web_bind,
        web_host=advertised_host(settings.web_host),
        web_port=settings.web_port,
        # Faust's built-in views of raw tables and of the routing map answer only when asked for.
        web_tables_enabled=settings.web_faust_views_enabled,
        web_router_enabled=settings.web_faust_views_enabled,
        autodiscover=False,
        Worker=DatagenWorker,  # a stop ends in bounded time when Kafka is gone (app/shutdown.py)
    )
    app.datagen_settings = settings
    topics = declare_topics(app, settings)
    health = HealthChecker(settings)
    registry = SchemaRegistryClient(registry_config(settings))
    generation = GenerationAgent(app, settings, registry)
    fulfilment = FulfilmentAgents(app, settings, registry, generation.stats) if settings.agents_enabled else None
    inventory = inventory_source(settings, fulfilment)
    register_inventory_views(app, inventory, generation)
    register_metrics(app, settings, generation.stats, generation.counted)  # GET /metrics, for Prometheus
    app.declare_first = list(topics.by_role.values()) + ([fulfilment.requests] if fulfilment is not None else [])
    # The tables' changelogs too: a worker starting beside another could otherwise write to a changelog its
    # consumer's metadata does not show yet, which Faust takes for one with 0 partitions (PartitionsMismatch).
    app.declare_first += [table.changelog_topic for table in app.tables.values()]
    register_start_up(app, settings, registry, generation, fulfilment, inventory)

    if inventory is not None:

        async def close_inventory_views(sender: Any, /, *args: Any, signal: BaseSignalT[Any], **kwargs: Any) -> None:
            await inventory.stop()

        app.on_before_shutdown.connect(close_inventory_views)

    register_commands(app, settings)  # faust -A app seed, faust -A app verify
    register_health(app, health)  # GET /health

    return app

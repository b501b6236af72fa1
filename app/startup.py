"""The worker's start-up: each service's step on its own, then generation; and what start-up leaves behind tidied."""

from __future__ import annotations

import asyncio
import gc
import logging

import faust
from confluent_kafka.schema_registry import SchemaRegistryClient
from faust.utils.terminal import SpinnerHandler

from agents.fulfilment import FulfilmentAgents
from agents.generation import GenerationAgent
from app.registry import register_until_done
from app.retry import until_done
from app.settings import Settings
from app.web.stock_sources import StockSource
from db.catalog_store import load_catalog
from db.seed import ensure_seeded, log_progress
from db.stock_reference import load_stock_reference

log = logging.getLogger(__name__)

#: The cyclic collector's thresholds once the worker has started (Python's default: 700, 10, 10).
GC_THRESHOLDS = (50_000, 20, 100)


def register_start_up(
    app: faust.App,
    settings: Settings,
    registry: SchemaRegistryClient,
    generation: GenerationAgent,
    fulfilment: FulfilmentAgents | None,
    inventory: StockSource | None,
) -> None:
    """Run the start-up sequence as a task of ``app`` once the worker starts."""
    dsn = settings.pg_dsn.get_secret_value()

    async def seed_reference_data() -> None:
        seeded = await until_done(lambda: ensure_seeded(settings, progress=log_progress), "seeding Postgres")
        log.info("%s", seeded.summary())

    @app.task
    async def start_up() -> None:
        """Each service's step on its own, so one that is down does not hold back the others."""
        log.info("settings: %s", settings.display())
        # The ids every codec writes with: encoding never asks the registry again, so a registry that goes away
        # later stops nothing but decoding a schema id not seen yet.
        schema_ids, _ = await asyncio.gather(register_until_done(registry, settings), seed_reference_data())
        if inventory is not None:
            await inventory.start()
        catalog = await until_done(lambda: load_catalog(dsn), "loading the catalogue")
        if fulfilment is not None:
            reference = await until_done(lambda: load_stock_reference(dsn), "loading the stock")
            # With generation on, the worker holding shard 0 opens the ledger (once per deployment).
            await fulfilment.start(reference, open_ledger=not settings.generation_enabled, schema_ids=schema_ids)
        settle_garbage_collector()
        restore_root_log_level()
        if settings.generation_enabled:
            generation.start(catalog, fulfilment.open_ledger if fulfilment is not None else None, schema_ids)
        else:
            generation.stats.state = "disabled"
            log.info("GENERATION_ENABLED=false: this worker only runs the agents")


def settle_garbage_collector() -> None:
    """Keep what start-up built out of the cyclic collector's sight, and run it on young objects less often.

    At tens of thousands of events a second the default thresholds (700, 10, 10) start a collection every few
    hundred records, each walking the worker's long-lived objects too; this is 8% more events/s at the ceiling.
    Most garbage here has no cycles and goes by reference counting, so memory stays where it was.
    """
    gc.freeze()
    gc.set_threshold(*GC_THRESHOLDS)


def restore_root_log_level(root: logging.Logger | None = None) -> None:
    """Undo what Faust's start-up spinner did to the root logger once start-up is over.

    At a level of WARN or above, Faust's worker sets the root logger to DEBUG and adds a handler that turns
    its spinner on every record. The spinner ends with start-up, but the level stays: every debug call in
    Faust and aiokafka, several per record consumed or sent, then builds a record that no handler prints
    (2.5% of the worker's time in a profile at 500 events/s with the agents on). The handler goes and the
    root logger takes the least verbose level that any remaining handler prints.
    """
    root = root or logging.getLogger()
    for handler in [handler for handler in root.handlers if isinstance(handler, SpinnerHandler)]:
        root.removeHandler(handler)
    levels = [handler.level for handler in root.handlers]
    if levels and min(levels) > root.level:
        root.setLevel(min(levels))

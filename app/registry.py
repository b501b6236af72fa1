"""Registration of the five value schemas under TopicNameStrategy subjects (``<topic>-value``)."""

from __future__ import annotations

import asyncio
import logging

from confluent_kafka.schema_registry import Schema, SchemaRegistryClient

from app.settings import Settings, mask_url
from schemas import SCHEMA_FILES, load_schema

log = logging.getLogger(__name__)


def subject_for(topic: str) -> str:
    """The TopicNameStrategy subject of a topic's values."""
    return f"{topic}-value"


def value_subjects(settings: Settings) -> dict[str, str]:
    """The value subject of each schema-bearing topic, by role."""
    topics = settings.topics()
    return {role: subject_for(topics[role]) for role in SCHEMA_FILES}


def register_all(client: SchemaRegistryClient, settings: Settings) -> dict[str, int]:
    """Register each bundled schema under its subject (a no-op when already there); schema id by role."""
    return {
        role: client.register_schema(subject, Schema(load_schema(role), "AVRO"))
        for role, subject in value_subjects(settings).items()
    }


async def register_until_done(
    client: SchemaRegistryClient, settings: Settings, *, first_delay: float = 1.0, max_delay: float = 30.0
) -> dict[str, int]:
    """Register the schemas, retrying with backoff while the registry is unreachable."""
    delay = first_delay
    while True:
        try:
            ids = await asyncio.to_thread(register_all, client, settings)
        except Exception as error:  # the registry client raises several kinds on outages
            log.warning(
                "schema registry %s unavailable (%s); retrying in %.0f s",
                mask_url(settings.schema_registry_url),
                type(error).__name__,
                delay,
            )
            await asyncio.sleep(delay)
            delay = min(delay * 2, max_delay)
        else:
            log.info("registered value schemas: %s", ids)
            return ids

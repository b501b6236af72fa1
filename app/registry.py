"""Registration of the six value schemas (the five events' and the truth's) under TopicNameStrategy subjects
(``<topic>-value``)."""

from __future__ import annotations

import asyncio
import logging

from confluent_kafka.schema_registry import Schema, SchemaRegistryClient

from app.retry import until_done
from app.settings import Settings, mask_url
from schemas import EVOLVED_SCHEMAS, SCHEMA_FILES, load_schema

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


def evolve(client: SchemaRegistryClient, settings: Settings) -> dict[str, int]:
    """Register version 2 of the evolving schemas (schemas.EVOLVED_SCHEMAS) under their subjects, each subject set
    to BACKWARD compatibility first so that the registry checks it; schema id by role. The registry refuses an
    incompatible version (SchemaRegistryError, HTTP 409)."""
    topics = settings.topics()
    ids = {}
    for role in EVOLVED_SCHEMAS:
        subject = subject_for(topics[role])
        client.set_compatibility(subject_name=subject, level="BACKWARD")
        ids[role] = client.register_schema(subject, Schema(load_schema(role, 2), "AVRO"))
    return ids


async def register_until_done(client: SchemaRegistryClient, settings: Settings) -> dict[str, int]:
    """Register the schemas, retrying with backoff while the registry is unreachable."""
    what = f"registering schemas at {mask_url(settings.schema_registry_url)}"
    ids = await until_done(lambda: asyncio.to_thread(register_all, client, settings), what)
    log.info("registered value schemas: %s", ids)
    return ids

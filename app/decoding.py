"""Decoding what the agents consume: Confluent-framed Avro in, a value dict or the reason it is unreadable out."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import httpx2 as httpx
from confluent_kafka.schema_registry import SchemaRegistryClient
from confluent_kafka.schema_registry.avro import AvroDeserializer
from confluent_kafka.schema_registry.error import SchemaRegistryError
from confluent_kafka.serialization import MessageField, SerializationContext

from app.exceptions import DatagenError


class UndecodableRecord(DatagenError):
    """A record that is not Avro in Confluent wire format under a schema the registry holds."""


class RegistryUnavailable(DatagenError):
    """The registry could not be asked for a schema: a passing outage, not a fault of the record."""


class RecordDecoder:
    """confluent-kafka's AvroDeserializer per topic, with TopicNameStrategy stated (see app.avro)."""

    def __init__(self, client: SchemaRegistryClient) -> None:
        self._deserializer = AvroDeserializer(client, conf={"subject.name.strategy.type": "TOPIC"})
        self._contexts: dict[str, SerializationContext] = {}

    def decode(self, topic: str, raw: bytes | None) -> Mapping[str, Any]:
        """The record's value; UndecodableRecord naming why when there is none to be had."""
        if not raw:
            raise UndecodableRecord("empty value")
        if raw[0] != 0:
            msg = f"magic byte {raw[0]}, expected 0"
            raise UndecodableRecord(msg)
        context = self._contexts.get(topic)
        if context is None:
            context = self._contexts[topic] = SerializationContext(topic, MessageField.VALUE)
        try:
            value = self._deserializer(raw, context)
        except SchemaRegistryError as error:
            if error.http_status_code == 404:
                msg = f"schema id {int.from_bytes(raw[1:5], 'big')} unknown"
                raise UndecodableRecord(msg) from error
            msg = f"registry answered {error.http_status_code}"
            raise RegistryUnavailable(msg) from error
        except (OSError, httpx.TransportError) as error:
            raise RegistryUnavailable(type(error).__name__) from error
        except Exception as error:  # fastavro raises many kinds on a bad body: all mean "not readable"
            msg = f"{type(error).__name__}: {str(error)[:200]}"
            raise UndecodableRecord(msg) from error
        if not isinstance(value, dict):
            msg = f"decoded to {type(value).__name__}, expected a record"
            raise UndecodableRecord(msg)
        return value

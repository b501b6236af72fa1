"""Decoding what the agents consume: Confluent-framed Avro in, a value dict or the reason it is unreadable out."""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Mapping
from typing import Any

import httpx2 as httpx
from confluent_kafka.schema_registry import SchemaRegistryClient, topic_subject_name_strategy
from confluent_kafka.schema_registry.avro import AvroDeserializer
from confluent_kafka.schema_registry.error import SchemaRegistryError
from confluent_kafka.serialization import MessageField, SerializationContext

from app.avro_reader import Reader, compile_reader
from app.exceptions import DatagenError
from app.wire.framing import HEADER_SIZE, MAGIC_BYTE, schema_id

#: How long a schema id the registry said it does not hold is taken as unknown without asking again.
UNKNOWN_ID_SECONDS = 60.0


class UndecodableRecord(DatagenError):
    """A record that is not Avro in Confluent wire format under a schema the registry holds."""


class RegistryUnavailable(DatagenError):
    """The registry could not be asked for a schema: a passing outage, not a fault of the record."""


class RecordDecoder:
    """confluent-kafka's AvroDeserializer per topic, with TopicNameStrategy stated (see app.avro), and a fast path.

    The deserializer costs 11 to 13 us a record: it looks up the subject and the writer's schema and runs the
    rule checks for every record, then fastavro reads the body; a compiled reader takes about 1. So the first
    record of each schema id goes through it (which fetches the schema, or says why there is none), and once that
    succeeds the id's writer schema, cached by the registry client, is compiled (``app.avro_reader``) and reads
    the later records of that id. A record the compiled reader cannot read goes through the deserializer too, so its
    outcome (and the reason a dead letter gives) is the deserializer's, exactly as without the fast path.
    """

    def __init__(self, client: SchemaRegistryClient, *, clock: Callable[[], float] = time.monotonic) -> None:
        self._client = client
        self._clock = clock
        #: Schema ids the registry said it does not hold, and when: their records are refused without asking again
        #: for UNKNOWN_ID_SECONDS (a poison stream of them costs one lookup a minute, not one a record).
        self._unknown: dict[int, float] = {}
        self._deserializer = AvroDeserializer(client, conf={"subject.name.strategy.type": "TOPIC"})
        self._contexts: dict[str, SerializationContext] = {}
        #: The compiled reader of each schema id decoded once; None for one only the deserializer reads.
        self._readers: dict[int, Reader | None] = {}

    def decode(self, topic: str, raw: bytes | None) -> Mapping[str, Any]:
        """The record's value; UndecodableRecord naming why when there is none to be had."""
        if not raw:
            raise UndecodableRecord("empty value")
        if raw[0] != MAGIC_BYTE:
            msg = f"magic byte {raw[0]}, expected {MAGIC_BYTE}"
            raise UndecodableRecord(msg)
        writer_id = schema_id(raw)
        refused_at = self._unknown.get(writer_id)
        if refused_at is not None:
            if self._clock() - refused_at < UNKNOWN_ID_SECONDS:
                msg = f"schema id {writer_id} unknown"
                raise UndecodableRecord(msg)
            del self._unknown[writer_id]
        reader = self._readers.get(writer_id)
        if reader is not None and len(raw) > HEADER_SIZE:  # a bare header is the deserializer's to refuse
            try:
                return reader(raw, HEADER_SIZE)
            except Exception:  # a bad body: the deserializer names what is wrong with it
                pass
        value = self._deserialize(topic, raw)
        if writer_id not in self._readers:
            self._learn(topic, writer_id)
        return value

    def _deserialize(self, topic: str, raw: bytes) -> dict[str, Any]:
        """The record through confluent-kafka's AvroDeserializer; UndecodableRecord or RegistryUnavailable."""
        context = self._context(topic)
        try:
            value = self._deserializer(raw, context)
        except SchemaRegistryError as error:
            if error.http_status_code == 404:
                self._unknown[schema_id(raw)] = self._clock()
                msg = f"schema id {schema_id(raw)} unknown"
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

    def _context(self, topic: str) -> SerializationContext:
        context = self._contexts.get(topic)
        if context is None:
            context = self._contexts[topic] = SerializationContext(topic, MessageField.VALUE)
        return context

    def _learn(self, topic: str, writer_id: int) -> None:
        """Compile the reader of ``writer_id``, whose schema the deserializer has just fetched (None: it reads alone).

        The schema is asked for under the subject the deserializer used, so the client answers from its cache. A
        schema with rules, references or a type the compiled reader does not read stays with the deserializer; a
        registry that fails to answer here leaves the id to be learnt with its next record.
        """
        subject = topic_subject_name_strategy(self._context(topic), None)
        try:
            schema = self._client.get_schema(writer_id, subject)
        except (SchemaRegistryError, OSError, httpx.TransportError):
            return
        if schema.schema_type not in (None, "AVRO") or schema.references or schema.rule_set or not schema.schema_str:
            self._readers[writer_id] = None
            return
        try:
            self._readers[writer_id] = compile_reader(json.loads(schema.schema_str))
        except ValueError:  # not JSON, or UnsupportedSchema: a type the compiled reader does not read
            self._readers[writer_id] = None

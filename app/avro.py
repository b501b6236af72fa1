"""Avro values in Confluent wire format, through confluent-kafka's AvroSerializer (fastavro underneath)."""

from __future__ import annotations

from collections.abc import Mapping

from confluent_kafka.schema_registry import SchemaRegistryClient
from confluent_kafka.schema_registry.avro import AvroSerializer
from confluent_kafka.serialization import MessageField, SerializationContext

from schemas import SCHEMA_FILES, load_schema

#: Confluent framing: magic byte 0, then the schema id as 4 big-endian bytes, then the Avro body.
MAGIC_BYTE = 0
HEADER_SIZE = 5


#: TopicNameStrategy (``<topic>-value``) stated, not left to the client's default: since confluent-kafka 2.16
#: that default asks the registry's associations API first, which Apicurio answers 404 (and which has
#: been seen to stall a client there).
SERIALIZER_CONF = {"auto.register.schemas": True, "subject.name.strategy.type": "TOPIC"}


class AvroCodec:
    """One serializer per topic role; each registers its schema once, then encodes without the registry."""

    def __init__(self, client: SchemaRegistryClient, topics: Mapping[str, str]) -> None:
        self._serializers = {
            role: AvroSerializer(client, load_schema(role), conf=SERIALIZER_CONF)
            for role in SCHEMA_FILES
        }
        self._contexts = {role: SerializationContext(topics[role], MessageField.VALUE) for role in SCHEMA_FILES}

    def encode(self, role: str, value: Mapping[str, object]) -> bytes:
        """The framed Avro bytes of ``value`` for the topic of ``role``."""
        encoded = self._serializers[role](value, self._contexts[role])
        assert encoded is not None  # only None encodes to None
        return encoded

    def warm_up(self, samples: Mapping[str, Mapping[str, object]]) -> dict[str, int]:
        """Encode one sample per role, so every serializer has its schema id; the ids by role.

        Raises whatever the registry client raises while the registry cannot be reached.
        """
        return {role: schema_id(self.encode(role, sample)) for role, sample in samples.items()}


def schema_id(framed: bytes) -> int:
    """The schema id in a Confluent-framed record."""
    return int.from_bytes(framed[1:HEADER_SIZE], "big")

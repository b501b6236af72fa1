"""Avro values in Confluent wire format: registered and framed by confluent-kafka's AvroSerializer, over fastavro.

The serializer registers each schema under its subject and frames the first record of each topic. Its later
calls would redo the subject lookup, the rule checks and the framing for every record, and fastavro's own
``schemaless_writer`` costs 6 to 7 us a record, together over half of what one process may spend on a record
at 50,000 a second. So once a topic's schema id is known, its records are written behind the same 5-byte
header by a writer compiled for its schema (``app.avro_writer``), which writes fastavro's bytes; a value that
writer does not handle is written by fastavro itself, with the options the serializer uses.
``tests/integration/test_avro.py`` checks that both ways give the serializer's bytes for every kind of event,
``tests/unit/app/test_avro_writer.py`` the compiled writers against fastavro.
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import Mapping
from io import BytesIO
from typing import Any

from confluent_kafka.schema_registry import SchemaRegistryClient
from confluent_kafka.schema_registry.avro import AvroSerializer
from confluent_kafka.serialization import MessageField, SerializationContext
from fastavro import parse_schema, schemaless_writer

from app.avro_writer import UNHANDLED, UnsupportedSchema, Writer, compile_writer
from app.wire.framing import HEADER_SIZE
from app.wire.framing import header as frame_header
from schemas import EVOLVED_SCHEMAS, SCHEMA_FILES, load_schema

#: TopicNameStrategy (``<topic>-value``) stated, not left to the client's default: since confluent-kafka 2.16
#: that default asks the registry's associations API first, which Apicurio answers 404 (and which has
#: been seen to stall a client there).
SERIALIZER_CONF = {"auto.register.schemas": True, "subject.name.strategy.type": "TOPIC"}


class AvroCodec:
    """One serializer per topic role, used until it has registered its schema; then its header and a compiled writer."""

    def __init__(
        self,
        client: SchemaRegistryClient,
        topics: Mapping[str, str],
        version: int = 1,
        ids: Mapping[str, int] | None = None,
    ) -> None:
        """``version`` 2: the evolved schemas (schemas.EVOLVED_SCHEMAS) of the roles that have one, the others'
        version 1."""
        roles = EVOLVED_SCHEMAS if version == 2 else SCHEMA_FILES
        texts = {role: load_schema(role, version) for role in roles if role in topics}
        self._serializers = {role: AvroSerializer(client, text, conf=SERIALIZER_CONF) for role, text in texts.items()}
        self._contexts = {role: SerializationContext(topics[role], MessageField.VALUE) for role in texts}
        self._schemas = {role: parse_schema(json.loads(text)) for role, text in texts.items()}
        #: A compiled writer per role whose schema it writes (the truth topic's maps and boolean: fastavro's).
        self._writers: dict[str, Writer] = {}
        for role, text in texts.items():
            with contextlib.suppress(UnsupportedSchema):
                self._writers[role] = compile_writer(json.loads(text))
        #: The 5-byte header of each role whose schema the registry has given an id: those of ``ids`` (what
        #: registering this version's schemas answered at start-up) from the start, so that encoding them never asks
        #: the registry again (it may be down by then); any other role's with its first record.
        self._headers: dict[str, bytes] = {role: frame_header(ids[role]) for role in texts if ids and role in ids}

    def encode(self, role: str, value: Mapping[str, object]) -> bytes:
        """The framed Avro bytes of ``value`` for the topic of ``role``.

        Raises what the registry client raises while a role's schema has no id yet (not among the ``ids`` the codec
        was made with, nor written before) and the registry cannot be reached.
        """
        header = self._headers.get(role)
        if header is None:
            return self.serialize(role, value)
        writer = self._writers.get(role)
        if writer is None:
            return self.write_with_fastavro(role, value)
        try:
            return writer(value, header)
        except UNHANDLED:
            return self.write_with_fastavro(role, value)

    def write_with_fastavro(self, role: str, value: Mapping[str, object]) -> bytes:
        """``value`` framed for a role whose schema id is known, written by fastavro as the serializer writes it."""
        header = self._headers[role]
        out = BytesIO()
        out.write(header)
        schemaless_writer(out, self._schemas[role], value, strict=False, strict_allow_default=False)
        return out.getvalue()

    def serialize(self, role: str, value: Mapping[str, object]) -> bytes:
        """``value`` through confluent-kafka's AvroSerializer itself (registering its schema the first time)."""
        encoded: Any = self._serializers[role](value, self._contexts[role])
        assert isinstance(encoded, bytes)  # only None encodes to None
        self._headers.setdefault(role, encoded[:HEADER_SIZE])
        return encoded

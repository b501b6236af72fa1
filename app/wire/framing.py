"""Confluent wire framing: magic byte 0, the schema id as 4 big-endian bytes, then the Avro body."""

from __future__ import annotations

#: The first byte of every Confluent-framed record.
MAGIC_BYTE = 0
#: Bytes of the schema id after the magic byte (big-endian).
SCHEMA_ID_SIZE = 4
#: Bytes before the Avro body: the magic byte and the schema id.
HEADER_SIZE = 1 + SCHEMA_ID_SIZE


def header(schema_id: int) -> bytes:
    """The 5-byte header of a record written under ``schema_id`` (OverflowError outside 0 to 2**32 - 1)."""
    return bytes((MAGIC_BYTE,)) + schema_id.to_bytes(SCHEMA_ID_SIZE, "big")


def frame(schema_id: int, body: bytes) -> bytes:
    """``body``, Avro bytes written under ``schema_id``, behind its header."""
    return header(schema_id) + body


def schema_id(framed: bytes) -> int:
    """The schema id in a Confluent-framed record (its magic byte is not checked)."""
    return int.from_bytes(framed[1:HEADER_SIZE], "big")


def body(framed: bytes) -> bytes:
    """The Avro body of a Confluent-framed record: what follows its header."""
    return framed[HEADER_SIZE:]

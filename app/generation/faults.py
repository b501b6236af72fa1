"""Deliberate bad records: the fault kinds, and the byte-level corruption of a Confluent-framed record."""

from __future__ import annotations

import random

from app.generation.exceptions import GenerationError
from app.wire.framing import HEADER_SIZE, MAGIC_BYTE, body, frame

#: Faults applied to the encoded bytes by ``corrupt``.
BYTE_LEVEL_KINDS = ("undecodable", "unknown_schema_id", "wrong_magic_byte", "truncated_body")
#: Faults already in the value dict: decodable, but no valid business event.
SEMANTIC_KINDS = ("negative_quantity",)
BAD_KINDS = BYTE_LEVEL_KINDS + SEMANTIC_KINDS

#: Schema ids from here up to 2**31 - 1 are never assigned: registries count their ids up from 1.
UNKNOWN_SCHEMA_IDS = range(2**31 - 1024, 2**31)


def corrupt(kind: str, framed: bytes, rng: random.Random) -> bytes:
    """``framed``, a valid Confluent-framed record, spoilt as fault ``kind`` says; no Avro reader accepts it.

    - undecodable: 1 to 5 random bytes, too short for a frame (5-byte header and a body of at least one byte).
    - unknown_schema_id: the same body under a schema id from UNKNOWN_SCHEMA_IDS.
    - wrong_magic_byte: the same bytes with a first byte of 1 to 255.
    - truncated_body: the header and the body cut inside its first field, which in all our schemas is a
      string id: its length prefix is kept with fewer bytes than it announces (and nothing after them),
      so a reader runs out of bytes whether or not it checks string lengths.
    - negative_quantity: the bytes unchanged; the fault is in the value, made by the generator.
    """
    if len(framed) <= HEADER_SIZE or framed[0] != MAGIC_BYTE:
        raise GenerationError("corrupt() needs a Confluent-framed record: magic byte 0, schema id, a body")
    if kind == "undecodable":
        return rng.randbytes(rng.randint(1, HEADER_SIZE))
    if kind == "unknown_schema_id":
        schema_id = UNKNOWN_SCHEMA_IDS[rng.randrange(len(UNKNOWN_SCHEMA_IDS))]
        return frame(schema_id, body(framed))
    if kind == "wrong_magic_byte":
        return bytes((rng.randint(1, 255),)) + framed[1:]
    if kind == "truncated_body":
        return framed[:HEADER_SIZE] + _truncated(body(framed), rng)
    if kind in SEMANTIC_KINDS:
        return framed
    msg = f"fault kind {kind!r}: expected one of {', '.join(BAD_KINDS)}"
    raise GenerationError(msg)


def _truncated(body: bytes, rng: random.Random) -> bytes:
    """``body`` cut inside its leading string; a body that does not start with a string is cut in half."""
    length, prefix = _zigzag_varint(body)
    if length >= 1 and prefix + length <= len(body):
        return body[: prefix + rng.randrange(length)]
    return body[: len(body) // 2]


def _zigzag_varint(data: bytes) -> tuple[int, int]:
    """The Avro long at the start of ``data`` and its size in bytes; (-1, 0) when it is not complete."""
    shift = accumulated = 0
    for size, byte in enumerate(data[:10], start=1):
        accumulated |= (byte & 0x7F) << shift
        if not byte & 0x80:
            return (accumulated >> 1) ^ -(accumulated & 1), size
        shift += 7
    return -1, 0

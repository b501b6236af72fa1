"""corrupt(): each byte fault makes a record that a Confluent Avro deserializer cannot read."""

from __future__ import annotations

import io
import random
import struct
from typing import Any

import fastavro
import pytest

from app.generation import BYTE_LEVEL_KINDS, UNKNOWN_SCHEMA_IDS, GenerationError, corrupt
from app.generation.events import Event
from app.wire.roles import GENERATED as KINDS
from tests.unit.generation.support import NOW_MS, make_generator, schema

#: Schema ids as a registry would hand them out, one per kind.
REGISTRY = {index + 1: fastavro.parse_schema(schema(kind)) for index, kind in enumerate(KINDS)}
SCHEMA_ID = {kind: index + 1 for index, kind in enumerate(KINDS)}


class Undecodable(Exception):
    """The record is not Confluent-framed Avro of a known schema."""


def confluent_decode(data: bytes) -> dict[str, Any]:
    """Read ``data`` as confluent-kafka's AvroDeserializer does: framing, magic byte, schema id, then the body."""
    if len(data) <= 5:
        raise Undecodable("shorter than the framing")
    magic, schema_id = struct.unpack(">bI", data[:5])
    if magic != 0:
        raise Undecodable("wrong magic byte")
    if schema_id not in REGISTRY:
        raise Undecodable("unknown schema id")
    try:
        body = io.BytesIO(data[5:])
        record: dict[str, Any] = fastavro.schemaless_reader(body, REGISTRY[schema_id])  # type: ignore[assignment]
    except Exception as error:  # fastavro raises EOFError, ValueError, ... on bad bodies
        raise Undecodable("bad body") from error
    return record


def frame(event: Event) -> bytes:
    body = io.BytesIO()
    fastavro.schemaless_writer(body, REGISTRY[SCHEMA_ID[event.kind]], event.value)
    return struct.pack(">bI", 0, SCHEMA_ID[event.kind]) + body.getvalue()


@pytest.fixture(scope="module")
def framed() -> list[bytes]:
    events = make_generator(seed=4).next_batch(600, NOW_MS)
    assert {event.kind for event in events} == set(KINDS)
    return [frame(event) for event in events]


def test_records_decode_before_they_are_corrupted(framed: list[bytes]) -> None:
    for data in framed:
        confluent_decode(data)


@pytest.mark.parametrize("kind", BYTE_LEVEL_KINDS)
def test_every_byte_fault_fails_to_decode(kind: str, framed: list[bytes]) -> None:
    rng = random.Random(kind)
    for data in framed:
        spoilt = corrupt(kind, data, rng)
        assert spoilt != data
        with pytest.raises(Undecodable):
            confluent_decode(spoilt)


def test_each_fault_breaks_what_it_names(framed: list[bytes]) -> None:
    rng = random.Random(1)
    for data in framed:
        assert 1 <= len(corrupt("undecodable", data, rng)) <= 5
        unknown = corrupt("unknown_schema_id", data, rng)
        assert struct.unpack(">I", unknown[1:5])[0] in UNKNOWN_SCHEMA_IDS
        assert unknown[5:] == data[5:]
        wrong = corrupt("wrong_magic_byte", data, rng)
        assert wrong[0] != 0
        assert wrong[1:] == data[1:]
        truncated = corrupt("truncated_body", data, rng)
        assert truncated[:5] == data[:5]
        assert 6 <= len(truncated) < len(data)  # framing intact, at least one byte of body, cut short


def test_a_body_that_does_not_start_with_a_string_is_cut_in_half() -> None:
    long_first = fastavro.parse_schema(
        {"type": "record", "name": "Count", "fields": [{"name": "n", "type": "long"}, {"name": "m", "type": "long"}]}
    )
    body = io.BytesIO()
    fastavro.schemaless_writer(body, long_first, {"n": -(2**40), "m": 2**40})
    data = b"\x00\x00\x00\x00\x01" + body.getvalue()
    truncated = corrupt("truncated_body", data, random.Random(0))
    assert truncated == data[: 5 + len(body.getvalue()) // 2]
    with pytest.raises(EOFError):
        fastavro.schemaless_reader(io.BytesIO(truncated[5:]), long_first)


def test_a_semantic_fault_leaves_the_bytes_alone(framed: list[bytes]) -> None:
    assert corrupt("negative_quantity", framed[0], random.Random(0)) == framed[0]


@pytest.mark.parametrize(("kind", "data"), [("flipped_bits", b"\x00\x00\x00\x00\x01ab"), ("undecodable", b"\x01ab")])
def test_unknown_kinds_and_unframed_input_are_refused(kind: str, data: bytes) -> None:
    with pytest.raises(GenerationError):
        corrupt(kind, data, random.Random(0))

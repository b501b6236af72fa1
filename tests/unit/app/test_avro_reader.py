"""Compiled Avro readers read what fastavro reads and raise where it raises; the fast path changes no decoding."""

from __future__ import annotations

import json
import random
import struct
from collections.abc import Callable, Iterator
from io import BytesIO
from typing import Any

import pytest
from confluent_kafka.schema_registry import Schema, SchemaRegistryClient
from confluent_kafka.schema_registry.error import SchemaRegistryError
from fastavro import parse_schema, schemaless_reader, schemaless_writer

from app.avro import AvroCodec
from app.avro_reader import compile_reader, read_long
from app.avro_writer import UnsupportedSchema
from app.decoding import UNKNOWN_ID_SECONDS, RecordDecoder, RegistryUnavailable, UndecodableRecord
from app.derivation import DerivationConfig
from schemas import EVENT_SCHEMAS, load_schema
from tests.unit.derivation.support import derive, make_order
from tests.unit.generation.support import NOW_MS, make_generator

HEADER = b"\x00\x00\x00\x01\x2a"
LONGS = (0, 1, -1, 63, -64, 64, -65, 8191, 8192, -8193, 16383, 16384, 2**20, -(2**20), 2**31, -(2**31), 2**62)
LONGS += (2**63 - 1, -(2**63))
STRINGS = ("", "a", "Crème brûlée, 250 g", "日本語の本", "😀" * 100, "x" * 63, "x" * 64, "é" * 8191)
STRINGS += ("x" * 20_000, "ü" * 40_000)  # longer than 16 KB: 3-byte lengths
#: Epoch milliseconds: 1 to 7-byte varints, and the first and last millisecond of the years fastavro reads.
MILLIS = (0, 1, -1, 1_000_000, NOW_MS, NOW_MS + 1, 2**41 - 1, 2**41, -62_135_596_800_000, 253_402_300_799_999)


def schema(role: str) -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads(load_schema(role))
    return loaded


def write(parsed: Any, value: dict[str, Any], prefix: bytes = HEADER) -> bytes:
    out = BytesIO()
    out.write(prefix)
    schemaless_writer(out, parsed, value)
    return out.getvalue()


def outcome(read: Callable[[], object]) -> object:
    """What ``read`` returns, as its repr (which shows key order, types and time zones), or that it raised."""
    try:
        return repr(read())
    except Exception:
        return "raised"


def fastavro_outcome(parsed: Any, body: bytes) -> object:
    return outcome(lambda: schemaless_reader(BytesIO(body), parsed))


def assert_reads_as_fastavro(reader: Callable[[bytes, int], object], parsed: Any, framed: bytes) -> None:
    assert outcome(lambda: reader(framed, len(HEADER))) == fastavro_outcome(parsed, framed[len(HEADER) :]), framed


@pytest.fixture(scope="module")
def records() -> list[tuple[str, dict[str, Any]]]:
    """Generated events at NOW_MS and at 1 ms, and derived payments, shipments and sales: every schema."""
    generator = make_generator(p_bad_record=0.05)
    found = [(event.kind, event.value) for now in (NOW_MS, 1) for event in generator.next_batch(3_000, now)]
    rng, config = random.Random(9), DerivationConfig(seed=9)
    for _ in range(1_000):
        payment, decision = derive(make_order(rng), config)
        found += [("payments", payment)] if payment else []
        found += [("shipments", decision.shipment)] if decision.shipment else []
        found += [("inventory_changes", decision.sale)] if decision.sale else []
    assert {role for role, _ in found} == set(EVENT_SCHEMAS)
    return found


@pytest.mark.parametrize("parsed_first", [False, True], ids=["from the .avsc", "from fastavro's parsed schema"])
def test_generated_and_derived_records_read_as_fastavro_reads_them(
    records: list[tuple[str, dict[str, Any]]], parsed_first: bool
) -> None:
    parsed = {role: parse_schema(schema(role)) for role in EVENT_SCHEMAS}
    readers = {role: compile_reader(parsed[role] if parsed_first else schema(role)) for role in EVENT_SCHEMAS}
    for role, value in records:
        framed = write(parsed[role], value)
        expected = schemaless_reader(BytesIO(framed[len(HEADER) :]), parsed[role])
        read = readers[role](framed, len(HEADER))
        assert read == expected, (role, value)
        assert repr(read) == repr(expected)  # the same key order, value types and time zone


def edge_values(field_type: Any) -> list[Any]:
    """Values at the edges of what ``field_type`` holds: the varint and length boundaries, each symbol, null."""
    if field_type == "string":
        return list(STRINGS)
    if field_type in ("long", "int"):
        return list(LONGS)
    if isinstance(field_type, list):
        return [None, *edge_values(field_type[1])]
    if field_type["type"] == "enum":
        return list(field_type["symbols"])
    assert field_type["logicalType"] == "timestamp-millis"
    return list(MILLIS)


def edge_cases() -> Iterator[tuple[str, str, Any]]:
    for role in EVENT_SCHEMAS:
        for field in schema(role)["fields"]:
            for value in edge_values(field["type"]):
                yield role, field["name"], value


@pytest.fixture(scope="module")
def one_of_each(records: list[tuple[str, dict[str, Any]]]) -> dict[str, dict[str, Any]]:
    return {role: value for role, value in records}


@pytest.mark.parametrize(("role", "field", "value"), list(edge_cases()))
def test_every_field_of_every_schema_at_its_edge_values(
    one_of_each: dict[str, dict[str, Any]], role: str, field: str, value: Any
) -> None:
    parsed = parse_schema(schema(role))
    assert_reads_as_fastavro(compile_reader(schema(role)), parsed, write(parsed, {**one_of_each[role], field: value}))


def test_a_timestamp_read_again_is_the_same_datetime_and_a_neighbour_is_not() -> None:
    read = compile_reader(schema("shipments"))
    parsed = parse_schema(schema("shipments"))
    base = {"shipment_id": "s", "order_id": "o", "warehouse_id": 1, "carrier": "UPS"}
    for eta, event_time in [(NOW_MS, NOW_MS), (NOW_MS, NOW_MS + 1), (NOW_MS + 1, NOW_MS), (NOW_MS + 1, NOW_MS + 1)]:
        framed = write(parsed, {**base, "eta": eta, "event_time": event_time})
        assert_reads_as_fastavro(read, parsed, framed)
        assert_reads_as_fastavro(read, parsed, framed)


def test_timestamps_beyond_the_years_fastavro_reads_raise() -> None:
    read = compile_reader(schema("payments"))
    parsed = parse_schema(schema("payments"))
    value = {"payment_id": "p", "order_id": "o", "attempt": 1, "method": "CARD", "status": "CAPTURED", "amount": 5}
    for millis in (-62_135_596_800_001, 253_402_300_800_000, 2**63 - 1, -(2**63)):
        framed = write(parsed, {**value, "currency": "USD", "event_time": millis})
        assert fastavro_outcome(parsed, framed[len(HEADER) :]) == "raised"
        with pytest.raises(OverflowError):
            read(framed, len(HEADER))


#: The interaction schema's fields after the strings "i" and "s": user_id, product_id, interaction_type, search_term
#: and event_time, written as bytes; then what fastavro makes of them (and so must the reader).
INTERACTION_TAILS = {
    "every field at its smallest": bytes([2, 0, 0, 0, 0]),
    "a varint longer than it needs to be": bytes([0x82, 0x80, 0x00, 0, 0, 0, 0]),
    "a 10-byte varint with bits beyond 64": bytes([0xFE, *[0xFF] * 8, 0x7E, 0, 0, 0, 0]),
    "the largest long in 10 bytes": bytes([0xFE, *[0xFF] * 8, 0x01, 0, 0, 0, 0]),
    "a negative enum index: the last symbol": bytes([2, 0, 0x01, 0, 0]),
    "the enum index -3: the first symbol": bytes([2, 0, 0x05, 0, 0]),
    "the enum index -4": bytes([2, 0, 0x07, 0, 0]),
    "the enum index 3": bytes([2, 0, 0x06, 0, 0]),
    "a multi-byte enum index": bytes([2, 0, 0x82, 0x00, 0, 0]),
    "a multi-byte enum index beyond the symbols": bytes([2, 0, 0x82, 0x01, 0, 0]),
    "the union index -1: the long": bytes([2, 0x01, 0x04, 0, 0, 0]),
    "the union index -2: null": bytes([2, 0x03, 0, 0, 0]),
    "the union index 2": bytes([2, 0x04, 0, 0, 0]),
    "the union index -3": bytes([2, 0x05, 0, 0, 0]),
    "a multi-byte union index": bytes([2, 0x82, 0x00, 0x04, 0, 0, 0]),
    "a multi-byte union index beyond the branches": bytes([2, 0x84, 0x00, 0, 0, 0]),
    "a negative string length": bytes([2, 0, 2, 0x02, 0x01, 0x41, 0]),
    "a string length beyond the body": bytes([2, 0, 2, 0x02, 0x10, 0x41, 0]),
    "a multi-byte negative string length": bytes([2, 0, 2, 0x02, 0x81, 0x00, 0x41, 0]),
    "a string that is not UTF-8": bytes([2, 0, 2, 0x02, 0x02, 0xFF, 0]),
    "a lone surrogate in UTF-8": bytes([2, 0, 2, 0x02, 0x06, 0xED, 0xA0, 0x80, 0]),
    "bytes after the record": bytes([2, 0, 0, 0, 0, 0xFF, 0xFF, 0x80]),
    "a body ending inside a varint": bytes([2, 0, 0, 0, 0x80]),
    "a body ending before the last field": bytes([2, 0, 0, 0]),
}


@pytest.mark.parametrize("tail", INTERACTION_TAILS.values(), ids=INTERACTION_TAILS.keys())
def test_hand_made_bodies_read_as_fastavro_reads_them(tail: bytes) -> None:
    parsed = parse_schema(schema("customer_interactions"))
    assert_reads_as_fastavro(compile_reader(schema("customer_interactions")), parsed, HEADER + b"\x02i\x02s" + tail)


def test_every_truncated_body_raises_and_corrupted_ones_read_as_fastavro_reads_them(
    records: list[tuple[str, dict[str, Any]]],
) -> None:
    parsed = {role: parse_schema(schema(role)) for role in EVENT_SCHEMAS}
    readers = {role: compile_reader(schema(role)) for role in EVENT_SCHEMAS}
    rng = random.Random(5)
    for role, value in records[::20]:
        framed = write(parsed[role], value)
        for end in range(len(HEADER), len(framed)):
            with pytest.raises(Exception):  # noqa: B017, PT011 - fastavro raises many kinds too: any will do
                readers[role](framed[:end], len(HEADER))
        for _ in range(30):
            spoilt = bytearray(framed)
            for _ in range(rng.randint(1, 3)):
                spoilt[rng.randrange(len(HEADER), len(framed))] = rng.randrange(256)
            assert_reads_as_fastavro(readers[role], parsed[role], bytes(spoilt))


@pytest.mark.parametrize("number", LONGS)
def test_read_long_reads_what_fastavro_reads(number: int) -> None:
    record = {"type": "record", "name": "N", "fields": [{"name": "n", "type": "long"}]}
    body = write(parse_schema(record), {"n": number})
    assert read_long(body, len(HEADER)) == (number, len(body))


def test_a_varint_longer_than_10_bytes_raises_where_fastavro_returns_its_c_shift() -> None:
    parsed = parse_schema({"type": "record", "name": "N", "fields": [{"name": "n", "type": "long"}]})
    body = bytes([0x80] * 10 + [0x01])
    assert fastavro_outcome(parsed, body) != "raised"  # undefined behaviour in C: see test_decoder_* below
    with pytest.raises(ValueError, match="longer than 10 bytes"):
        compile_reader(parsed)(body, 0)


#: Every other type the compiled reader reads, each field named after what it holds.
OTHER_TYPES = {
    "type": "record",
    "name": "Reading",
    "namespace": "io.example",
    "fields": [
        {"name": "flag", "type": "boolean"},
        {"name": "ratio", "type": "float"},
        {"name": "celsius", "type": "double"},
        {"name": "blob", "type": "bytes"},
        {"name": "digest", "type": {"type": "fixed", "name": "Digest", "size": 4}},
        {"name": "nothing", "type": "null"},
        {"name": "level", "type": {"type": "enum", "name": "Level", "symbols": ["LOW", "HIGH"]}},
        {"name": "other_level", "type": "Level"},
        {"name": "other_digest", "type": ["null", "io.example.Digest"]},
        {"name": "either", "type": ["null", "string", "long", "double"]},
        {
            "name": "place",
            "type": {
                "type": "record",
                "name": "Place",
                "fields": [{"name": "code", "type": "string"}, {"name": "at", "type": ["null", "Level"]}],
            },
        },
        {"name": "places", "type": ["null", "Place"]},
        {"name": "day_ms", "type": {"type": "int", "logicalType": "timestamp-millis"}},  # fastavro: a plain int
        {"name": "label", "type": {"type": "string", "logicalType": "slug"}},  # unknown to fastavro: a string
        {"name": "wrapped", "type": {"type": "long"}},
        {"name": "when", "type": ["null", {"type": "long", "logicalType": "timestamp-millis"}]},
    ],
}


def other_value(rng: random.Random) -> dict[str, Any]:
    place = {"code": rng.choice(STRINGS[:5]), "at": rng.choice([None, "LOW", "HIGH"])}
    return {
        "flag": rng.random() < 0.5,
        "ratio": rng.choice([0.0, -0.0, 1.5, float("inf"), float("nan"), rng.uniform(-1e30, 1e30)]),
        "celsius": rng.choice([0.0, -0.0, 1e-308, 5e-324, float("-inf"), float("nan"), rng.uniform(-1e300, 1e300)]),
        "blob": rng.randbytes(rng.choice([0, 1, 63, 64, 20_000])),
        "digest": rng.randbytes(4),
        "nothing": None,
        "level": rng.choice(["LOW", "HIGH"]),
        "other_level": rng.choice(["LOW", "HIGH"]),
        "other_digest": rng.choice([None, rng.randbytes(4)]),
        "either": rng.choice([None, rng.choice(STRINGS), rng.choice(LONGS), rng.uniform(-1, 1)]),
        "place": place,
        "places": rng.choice([None, place]),
        "day_ms": rng.choice(LONGS[:16]),
        "label": rng.choice(STRINGS),
        "wrapped": rng.choice(LONGS),
        "when": rng.choice([None, *MILLIS]),
    }


def bits(value: Any) -> Any:
    """``value`` with each float as its 8 bytes: NaN equals NaN, and -0.0 differs from 0.0."""
    if isinstance(value, float):
        return struct.pack("<d", value)
    if isinstance(value, dict):
        return {key: bits(item) for key, item in value.items()}
    return value


def test_every_other_readable_type_reads_as_fastavro_reads_it() -> None:
    parsed, rng = parse_schema(OTHER_TYPES), random.Random(11)
    readers = [compile_reader(OTHER_TYPES), compile_reader(parsed)]
    for _ in range(500):
        framed = write(parsed, other_value(rng))
        expected = schemaless_reader(BytesIO(framed[len(HEADER) :]), parsed)
        for read in readers:
            value = read(framed, len(HEADER))
            assert bits(value) == bits(expected)
            assert [type(item) for item in value.values()] == [type(item) for item in expected.values()]
        for end in rng.sample(range(len(HEADER), len(framed)), 5):
            assert_reads_as_fastavro(readers[0], parsed, framed[:end])


@pytest.mark.parametrize(
    ("field_type", "value"),
    [("string", "the last words"), ("bytes", b"\x00" * 300), ({"type": "fixed", "name": "F", "size": 8}, b"8 bytes!")],
)
def test_a_body_cut_inside_its_last_field_raises(field_type: Any, value: Any) -> None:
    fields = [{"name": "n", "type": "long"}, {"name": "x", "type": field_type}]
    record = {"type": "record", "name": "Last", "fields": fields}
    parsed = parse_schema(record)
    framed = write(parsed, {"n": 1, "x": value})
    for end in range(len(HEADER), len(framed)):
        assert fastavro_outcome(parsed, framed[len(HEADER) : end]) == "raised"
        with pytest.raises((IndexError, EOFError)):  # cut inside a varint, or after it
            compile_reader(record)(framed[:end], len(HEADER))
    assert_reads_as_fastavro(compile_reader(record), parsed, framed)


def test_booleans_read_any_byte_but_zero_as_true() -> None:
    parsed = parse_schema({"type": "record", "name": "F", "fields": [{"name": "on", "type": "boolean"}]})
    for byte in (0, 1, 2, 0x80, 0xFF):
        assert compile_reader(parsed)(bytes([byte]), 0) == schemaless_reader(BytesIO(bytes([byte])), parsed)


def unsupported(field_type: Any) -> dict[str, Any]:
    return {"type": "record", "name": "Odd", "fields": [{"name": "odd", "type": field_type}]}


@pytest.mark.parametrize(
    ("record", "match"),
    [
        (unsupported({"type": "array", "items": "long"}), "'array' is not a type"),
        (unsupported({"type": "map", "values": "long"}), "'map' is not a type"),
        (unsupported({"type": "int", "logicalType": "date"}), "logical type 'int-date'"),
        (unsupported({"type": "string", "logicalType": "uuid"}), "logical type 'string-uuid'"),
        (unsupported({"type": "bytes", "logicalType": "decimal", "precision": 4}), "'bytes-decimal'"),
        (unsupported({"type": "long", "logicalType": "timestamp-micros"}), "'long-timestamp-micros'"),
        (unsupported("Elsewhere"), "the unknown name 'Elsewhere'"),
        (unsupported(["null", "Odd"]), "recursive record 'Odd'"),
        ({"type": "enum", "name": "E", "symbols": ["A"]}, "expected a record schema"),
    ],
)
def test_a_schema_with_a_type_it_does_not_read_is_refused_when_compiled(record: dict[str, Any], match: str) -> None:
    with pytest.raises(UnsupportedSchema, match=match):
        compile_reader(record)


# The decoder's fast path, against confluent-kafka's mock registry.

TOPICS = {role: f"test-{role}" for role in EVENT_SCHEMAS}


@pytest.fixture
def registry() -> SchemaRegistryClient:
    client: SchemaRegistryClient = SchemaRegistryClient.new_client({"url": "mock://"})
    return client


def reason(decoder: RecordDecoder, topic: str, raw: bytes) -> object:
    """The decoded value's repr, or the reason the record is undecodable."""
    try:
        return repr(decoder.decode(topic, raw))
    except UndecodableRecord as error:
        return f"undecodable: {error}"


def count_schema_requests(registry: SchemaRegistryClient, monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """The ids the registry is asked for from now on."""
    asked: list[int] = []
    get_schema = registry.get_schema

    def counting(schema_id: int, *args: Any, **kwargs: Any) -> Schema:
        asked.append(schema_id)
        return get_schema(schema_id, *args, **kwargs)

    monkeypatch.setattr(registry, "get_schema", counting)
    return asked


def test_decoder_reads_what_the_deserializer_reads_and_asks_the_registry_once_per_schema(
    registry: SchemaRegistryClient, records: list[tuple[str, dict[str, Any]]], monkeypatch: pytest.MonkeyPatch
) -> None:
    codec, decoder = AvroCodec(registry, TOPICS), RecordDecoder(registry)
    framed = [(TOPICS[role], codec.encode(role, value)) for role, value in records[::5]]
    expected = [reason(RecordDecoder(registry), topic, raw) for topic, raw in framed]  # each through the deserializer
    asked = count_schema_requests(registry, monkeypatch)
    assert [reason(decoder, topic, raw) for topic, raw in framed] == expected
    assert len(asked) <= 2 * len(EVENT_SCHEMAS)  # for the deserializer and the compiler, not for every record


def test_decoder_gives_a_bad_body_of_a_known_schema_the_deserializer_s_reason(
    registry: SchemaRegistryClient, records: list[tuple[str, dict[str, Any]]]
) -> None:
    codec, decoder, rng = AvroCodec(registry, TOPICS), RecordDecoder(registry), random.Random(6)
    for role, value in records[::40]:
        raw = codec.encode(role, value)
        decoder.decode(TOPICS[role], raw)
        spoilt = bytearray(raw)
        spoilt[rng.randrange(5, len(raw))] = rng.randrange(256)
        for bad in (raw[:5], raw[: rng.randrange(6, len(raw))], bytes(spoilt)):
            assert reason(decoder, TOPICS[role], bad) == reason(RecordDecoder(registry), TOPICS[role], bad)


def register(registry: SchemaRegistryClient, topic: str, record: dict[str, Any]) -> bytes:
    """The Confluent header of ``record`` registered for ``topic``."""
    schema_id = registry.register_schema(f"{topic}-value", Schema(json.dumps(record), "AVRO"))
    return b"\x00" + schema_id.to_bytes(4, "big")


def test_decoder_gives_what_fastavro_gives_where_the_reader_raises_and_fastavro_does_not(
    registry: SchemaRegistryClient,
) -> None:
    record = {"type": "record", "name": "N", "fields": [{"name": "n", "type": "long"}]}
    header, decoder = register(registry, "counts", record), RecordDecoder(registry)
    assert decoder.decode("counts", header + b"\x04") == {"n": 2}
    overlong = header + bytes([0x80] * 10 + [0x01])
    assert decoder.decode("counts", overlong) == schemaless_reader(BytesIO(overlong[5:]), parse_schema(record))


def test_decoder_reads_a_schema_the_reader_does_not_compile_with_the_deserializer(
    registry: SchemaRegistryClient,
) -> None:
    record = unsupported({"type": "array", "items": "long"})
    header, decoder = register(registry, "odds", record), RecordDecoder(registry)
    for items in ([], [1], [1, -2, 2**40]):
        raw = write(parse_schema(record), {"odd": items}, header)
        assert decoder.decode("odds", raw) == {"odd": items}


def test_decoder_names_an_unknown_schema_id_and_a_registry_outage_as_before(
    registry: SchemaRegistryClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    codec, decoder = AvroCodec(registry, TOPICS), RecordDecoder(registry)
    raw = codec.encode("orders", make_order(random.Random(1)))
    decoder.decode(TOPICS["orders"], raw)
    with pytest.raises(UndecodableRecord, match=r"^schema id 4242 unknown$"):
        decoder.decode(TOPICS["orders"], raw[:1] + (4242).to_bytes(4, "big") + raw[5:])

    def unavailable(*args: Any, **kwargs: Any) -> Schema:
        raise SchemaRegistryError(503, 50300, "unavailable")

    monkeypatch.setattr(registry, "get_schema", unavailable)
    with pytest.raises(RegistryUnavailable, match=r"^registry answered 503$"):
        decoder.decode(TOPICS["orders"], raw[:1] + (4243).to_bytes(4, "big") + raw[5:])
    assert decoder.decode(TOPICS["orders"], raw)["order_id"] == make_order(random.Random(1))["order_id"]


def test_an_unknown_schema_id_costs_one_lookup_a_minute_not_one_a_record(
    registry: SchemaRegistryClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    now = [1_000.0]
    decoder = RecordDecoder(registry, clock=lambda: now[0])
    asked = count_schema_requests(registry, monkeypatch)
    poison = b"\x00" + (987_654).to_bytes(4, "big") + b"\x02\x04abcd"
    reasons = {reason(decoder, TOPICS["orders"], poison) for _ in range(500)}
    assert reasons == {"undecodable: schema id 987654 unknown"}
    assert asked == [987_654]
    now[0] += UNKNOWN_ID_SECONDS + 1  # a schema registered later is found then
    assert reason(decoder, TOPICS["orders"], poison) == "undecodable: schema id 987654 unknown"
    assert asked == [987_654, 987_654]

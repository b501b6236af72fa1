"""AvroCodec made with the schema ids registered at start-up writes every role without asking the registry, which
may be gone by then; without them, a role's first record asks it."""

from __future__ import annotations

import json
import random
from io import BytesIO
from typing import Any

import httpx2 as httpx
import pytest
from confluent_kafka.schema_registry import SchemaRegistryClient
from fastavro import parse_schema, schemaless_writer

from app.avro import AvroCodec
from app.derivation import DerivationConfig
from app.truth import MinuteCounts
from app.wire.framing import body, header
from app.wire.roles import TRUTH
from schemas import SCHEMA_FILES, load_schema
from tests.unit.derivation.support import derive, make_order
from tests.unit.generation.support import make_generator

TOPICS = {role: f"codec-{role}" for role in SCHEMA_FILES}
IDS = {role: 100 + number for number, role in enumerate(sorted(SCHEMA_FILES))}


def nobody_listening() -> SchemaRegistryClient:
    """A real registry client whose registry is down: nothing listens on port 9 here."""
    return SchemaRegistryClient({"url": "http://127.0.0.1:9", "timeout": 2})


def one_of_each() -> dict[str, dict[str, Any]]:
    """A good value of every role: generated events, a derived payment, shipment and sale, a truth record."""
    found: dict[str, dict[str, Any]] = {}
    for event in make_generator().next_batch(2_000, 1_700_000_000_000):
        if event.bad_kind is None:
            found.setdefault(event.kind, event.value)
    rng, config = random.Random(3), DerivationConfig(seed=3)
    while not {"payments", "shipments"} <= set(found):
        payment, decision = derive(make_order(rng), config)
        if payment:
            found.setdefault("payments", payment)
        if decision.shipment:
            found.setdefault("shipments", decision.shipment)
    counts = MinuteCounts()
    counts.records["orders.v1"] = 3
    found[TRUTH] = counts.value("app", 0, 1_700_000_040_000, True)
    assert set(found) == set(SCHEMA_FILES)
    return found


def fastavro_bytes(role: str, value: dict[str, Any]) -> bytes:
    out = BytesIO()
    schemaless_writer(out, parse_schema(json.loads(load_schema(role))), value, strict=False, strict_allow_default=False)
    return out.getvalue()


def test_with_the_ids_of_start_up_every_role_is_written_while_the_registry_is_down() -> None:
    codec = AvroCodec(nobody_listening(), TOPICS, ids=IDS)
    for role, value in one_of_each().items():
        framed = codec.encode(role, value)
        assert framed[:5] == header(IDS[role]), role
        assert body(framed) == fastavro_bytes(role, value), role


def test_without_them_a_role_s_first_record_asks_the_registry() -> None:
    codec = AvroCodec(nobody_listening(), TOPICS)
    with pytest.raises(httpx.TransportError):
        codec.encode(TRUTH, one_of_each()[TRUTH])


def test_ids_of_roles_the_codec_does_not_write_are_left_out() -> None:
    codec = AvroCodec(nobody_listening(), {TRUTH: "codec-truth"}, ids=IDS)
    value = one_of_each()[TRUTH]
    assert codec.encode(TRUTH, value) == header(IDS[TRUTH]) + fastavro_bytes(TRUTH, value)

"""The codec's fast path writes the very bytes confluent-kafka's AvroSerializer writes, for every kind of record."""

from __future__ import annotations

import random
from collections import Counter

import pytest
from confluent_kafka.schema_registry import SchemaRegistryClient
from confluent_kafka.serialization import MessageField, SerializationContext

from app.avro import AvroCodec
from app.derivation import DerivationConfig
from app.settings import load_settings
from app.truth import MinuteCounts
from app.wire.framing import schema_id
from tests.support import registry_client, topic_deserializer, unique_topics
from tests.unit.derivation.support import derive, make_order
from tests.unit.generation.support import make_generator

pytestmark = pytest.mark.integration

@pytest.fixture
def codec_and_topics() -> tuple[AvroCodec, dict[str, str], SchemaRegistryClient]:
    topics = load_settings(unique_topics("avro")).topics()
    client = registry_client()
    return AvroCodec(client, topics), topics, client


def derived_records(count: int) -> list[tuple[str, dict[str, object]]]:
    """Payments, shipments and SALE changes the agents would derive from ``count`` orders."""
    rng, config, records = random.Random(4), DerivationConfig(seed=4), []
    for _ in range(count):
        payment, decision = derive(make_order(rng), config)
        records += [("payments", payment)] if payment else []
        records += [("shipments", decision.shipment)] if decision.shipment else []
        records += [("inventory_changes", decision.sale)] if decision.sale else []
    return records


def truth_records(generated: list[tuple[str, dict[str, object]]]) -> list[tuple[str, dict[str, object]]]:
    """Truth records counting ``generated`` (all of it, then the first tenth), as the generator publishes them."""
    records = []
    for part in (generated, generated[: len(generated) // 10]):
        counts = MinuteCounts()
        for kind, value in part:
            counts.add(kind, kind, value, False, None)
        records.append(("truth", counts.value("app", 3, 1_796_000_000_000, bool(len(records)))))
    return records


def test_the_fast_path_writes_the_serializers_bytes(
    codec_and_topics: tuple[AvroCodec, dict[str, str], SchemaRegistryClient],
) -> None:
    codec, topics, client = codec_and_topics
    generated = [(event.kind, event.value) for event in make_generator(p_bad_record=0.05).next_batch(3000, 0)]
    records = generated + derived_records(500) + truth_records(generated)
    kinds = Counter(role for role, _ in records)
    assert set(kinds) == set(topics) - {"dead_letter"}, kinds
    for role, value in records:
        fast = codec.encode(role, value)
        assert fast == codec.serialize(role, value), (role, value)
    deserializer = topic_deserializer(client)
    for role, value in records[:200]:
        framed = codec.encode(role, value)
        decoded = deserializer(framed, SerializationContext(topics[role], MessageField.VALUE))
        assert decoded is not None
        assert decoded["event_time"].timestamp() * 1000 == value["event_time"], role
        assert schema_id(framed) > 0

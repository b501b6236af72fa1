"""Schema evolution: where each shard switches to version 2, the new fields' values, and version 2 against version 1
(a reader of either decodes records of both)."""

from __future__ import annotations

import io
import json

import pytest
from fastavro import parse_schema, schemaless_reader, schemaless_writer
from fastavro.validation import validate

from app.generation.evolution import evolved as with_new_fields
from app.generation.evolution import first_evolved
from schemas import EVOLVED_SCHEMAS, load_schema
from tests.unit.generation.support import make_generator


@pytest.mark.parametrize(("after", "shards"), [(0, 1), (10, 3), (11, 3), (12, 4), (7, 8), (1_000_003, 5)])
def test_every_event_of_the_stream_from_the_switch_on_is_version_2(after: int, shards: int) -> None:
    for shard in range(shards):
        first = first_evolved(after, shard, shards)
        # Event n of a shard is the stream's event n x shards + shard.
        assert first * shards + shard >= after
        assert first == 0 or (first - 1) * shards + shard < after


def schema(role: str, version: int) -> dict:
    return parse_schema(json.loads(load_schema(role, version)))


@pytest.mark.parametrize("role", sorted(EVOLVED_SCHEMAS))
def test_version_2_only_adds_fields_with_defaults(role: str) -> None:
    first, second = (json.loads(load_schema(role, version)) for version in (1, 2))
    assert second["fields"][: len(first["fields"])] == first["fields"]
    added = second["fields"][len(first["fields"]) :]
    assert added
    assert all("default" in field for field in added)


def events(kind: str) -> list[dict]:
    batch = make_generator(seed=4).next_batch(3_000, 1_700_000_000_000)
    return [event.value for event in batch if event.kind == kind and event.bad_kind is None]


@pytest.mark.parametrize("role", sorted(EVOLVED_SCHEMAS))
def test_records_of_either_version_decode_with_either_reader(role: str) -> None:
    v1, v2 = schema(role, 1), schema(role, 2)
    for value in events(role)[:300]:
        new = with_new_fields(role, value)
        assert validate(new, v2)
        for writer, written in ((v1, value), (v2, new)):
            out = io.BytesIO()
            schemaless_writer(out, writer, written)
            for reader in (v1, v2):
                read = schemaless_reader(io.BytesIO(out.getvalue()), writer, reader)
                assert set(read) == {field["name"] for field in reader["fields"]}


def test_the_new_fields_follow_from_the_ids_and_spread_over_their_values() -> None:
    orders = [with_new_fields("orders", value) for value in events("orders")]
    again = [with_new_fields("orders", value) for value in events("orders")]
    assert orders == again
    assert {order["channel"] for order in orders} == {"web", "app", "marketplace"}
    coupons = sum(order["coupon_code"] is not None for order in orders)
    assert 0.05 < coupons / len(orders) < 0.2  # one in eight, give or take
    interactions = [with_new_fields("customer_interactions", value) for value in events("customer_interactions")]
    assert {step["device"] for step in interactions} == {"desktop", "mobile", "tablet"}
    assert None in {step["referrer"] for step in interactions}

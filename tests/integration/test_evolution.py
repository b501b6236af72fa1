"""SCHEMA_EVOLVE_AFTER against the real registry and broker: version 2 of the orders and interactions schemas is
registered mid-run under the same subjects with BACKWARD compatibility (the registry checks it), the topics carry
both versions from then on, and consumers reading with version 1 and with version 2 decode every record."""

from __future__ import annotations

import io
import json
import struct
from pathlib import Path

import pytest
from fastavro import parse_schema, schemaless_reader

from schemas import load_schema
from tests.stock_support import high_watermarks
from tests.support import read_back, registry_client, run_worker, unique_topics
from tests.unit.generation.support import assert_share

pytestmark = pytest.mark.integration

EVENTS, AFTER = 1_500, 500
#: The share of orders and interactions in the mix (WEIGHT_ORDERS + WEIGHT_INTERACTIONS, of 1).
EVOLVING_SHARE = 0.9


def test_version_2_is_registered_mid_run_and_both_versions_decode_with_either_reader(tmp_path: Path) -> None:
    topics = unique_topics("evolve")
    settings = {
        **topics,
        "TARGET_EPS": "300",
        "MAX_EVENTS": str(EVENTS),
        "SCHEMA_EVOLVE_AFTER": str(AFTER),
        "AGENTS_ENABLED": "false",
        "DIURNAL_ENABLED": "false",
        "P_BAD_RECORD": "0",
        "GENERATION_SHARDS": "3",
    }
    with run_worker(tmp_path, settings) as worker:
        worker.wait_until_logged("MAX_EVENTS=", timeout=180)
        assert "version 2 registered (BACKWARD checked)" in worker.log()
    registry = registry_client()
    evolving = [topics["TOPIC_ORDERS"], topics["TOPIC_CUSTOMER_INTERACTIONS"]]
    every = [*evolving, topics["TOPIC_INVENTORY_CHANGES"]]
    expected = sum(sum(high_watermarks(topic).values()) for topic in every)
    assert expected == EVENTS
    records = read_back(every, expected, timeout=120)
    assert len(records) == EVENTS

    readers = {
        topics["TOPIC_ORDERS"]: "orders",
        topics["TOPIC_CUSTOMER_INTERACTIONS"]: "customer_interactions",
    }
    versions: dict[str, dict[int, int]] = {}
    for topic, role in readers.items():
        subject = f"{topic}-value"
        assert registry.get_compatibility(subject) == "BACKWARD"
        assert registry.get_versions(subject) == [1, 2]
        ids = {version: registry.get_version(subject, version).schema_id for version in (1, 2)}
        versions[topic] = {schema_id: version for version, schema_id in ids.items()}
        v1, v2 = (parse_schema(json.loads(load_schema(role, version))) for version in (1, 2))
        for record in (record for record in records if record.topic == topic):
            magic, schema_id = struct.unpack(">bI", record.raw[:5])
            assert magic == 0
            assert schema_id in versions[topic], f"{topic}: schema id {schema_id} is neither version"
            writer = parse_schema(json.loads(registry.get_schema(schema_id).schema_str))
            as_v1 = schemaless_reader(io.BytesIO(record.raw[5:]), writer, v1)
            as_v2 = schemaless_reader(io.BytesIO(record.raw[5:]), writer, v2)
            assert {key: as_v2[key] for key in as_v1} == as_v1
            if versions[topic][schema_id] == 1:  # read with version 2: the new fields' defaults
                new = {key: value for key, value in as_v2.items() if key not in as_v1}
                assert new in ({"channel": "web", "coupon_code": None}, {"device": "desktop", "referrer": None})

    by_version = {1: 0, 2: 0}
    for record in records:
        if record.topic in versions:
            by_version[versions[record.topic][struct.unpack(">I", record.raw[1:5])[0]]] += 1
    assert by_version[2] > 0
    # The stream's first AFTER events are written with version 1: that many draws of the mix, 90% of them evolving.
    assert_share(by_version[1], AFTER, EVOLVING_SHARE, "version 1 records among the first events")

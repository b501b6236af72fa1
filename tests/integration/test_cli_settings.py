"""`faust -A app worker` refuses each kind of bad setting: exit status 2 and one line naming the variable."""

from __future__ import annotations

import os

import pytest

from tests.harness import run_faust

pytestmark = pytest.mark.integration


@pytest.mark.parametrize(
    ("variable", "value", "extra"),
    [
        ("TARGET_EPS", "abc", {}),
        ("P_LATE_EVENT", "1.5", {}),
        ("WEIGHT_INTERACTIONS", "-0.3", {}),
        ("WEIGHT_ORDERS", "0", {"WEIGHT_INTERACTIONS": "0", "WEIGHT_INVENTORY_CHG": "0"}),
        ("CANON_INVENTORY", "redis", {}),
        ("PG_DSN", "host=127.0.0.1 port=5432 dbname", {}),
        ("SCHEMA_REGISTRY_URL", "registry:8081", {}),
        ("P_ORDER_HAS_SHIPMENT", "0.95", {}),
    ],
)
def test_bad_setting_stops_the_worker_with_status_2(variable: str, value: str, extra: dict[str, str]) -> None:
    env = {**os.environ, variable: value, **extra}
    done = run_faust("worker", env=env, timeout=60)
    assert done.returncode == 2, done.stderr
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1, done.stderr
    assert variable in lines[0]
    assert "expected" in lines[0]
    assert "Traceback" not in done.stdout + done.stderr

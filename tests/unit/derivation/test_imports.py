"""The derivation and inventory cores stay pure: importing them loads no I/O library."""

from __future__ import annotations

import subprocess
import sys

from tests.unit.generation.support import SCHEMAS


def test_the_derivation_and_inventory_cores_import_no_io_library() -> None:
    probe = "import sys, app.derivation, app.inventory; print(' '.join(sorted(sys.modules)))"
    run = subprocess.run([sys.executable, "-c", probe], check=True, capture_output=True, text=True, cwd=SCHEMAS.parent)
    loaded = set(run.stdout.split())
    assert not loaded & {"faust", "confluent_kafka", "aiopg", "psycopg2", "fastavro", "aiohttp", "pydantic", "kafka"}

"""The generation core stays pure: importing it loads no I/O library."""

from __future__ import annotations

import subprocess
import sys

from tests.unit.generation.support import SCHEMAS


def test_the_generation_core_imports_no_io_library() -> None:
    probe = "import sys, app.generation; print(' '.join(sorted(sys.modules)))"
    run = subprocess.run([sys.executable, "-c", probe], check=True, capture_output=True, text=True, cwd=SCHEMAS.parent)
    loaded = set(run.stdout.split())
    assert not loaded & {"faust", "confluent_kafka", "aiopg", "psycopg2", "fastavro", "aiohttp", "pydantic"}

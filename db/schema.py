"""The reference schema: the DDL file shipped in this package, its fingerprint, and applying it."""

from __future__ import annotations

import hashlib
from functools import cache
from importlib.resources import files
from typing import Any

SCHEMA_FILE = "reference_schema.sql"


@cache
def schema_sql() -> str:
    """The DDL of the eight reference tables and of reference_seed."""
    return files("db").joinpath(SCHEMA_FILE).read_text(encoding="utf-8")


@cache
def schema_sha256() -> str:
    """The fingerprint recorded with a seed: a start that finds it current skips the DDL."""
    return hashlib.sha256(schema_sql().encode("utf-8")).hexdigest()


def apply_schema(cursor: Any) -> None:
    """Create whatever of the schema is missing; applying it again changes nothing.

    Run it under the seed's advisory lock: two sessions creating the same table at once would collide.
    """
    cursor.execute(schema_sql())

"""Faust table definitions; every table lives in RocksDB through the rocksdict driver."""

from __future__ import annotations

from typing import Any

import faust
from faust.types import TableT

#: Store options that pin faust's RocksDB store to rocksdict (python-rocksdb is not installed).
ROCKSDICT = {"driver": "rocksdict"}


def rocksdict_table(app: faust.App, name: str, **kwargs: Any) -> TableT:
    """A table of str keys and JSON values on the app's ``rocksdb://`` store, opened with the rocksdict driver."""
    schema: faust.Schema = faust.Schema(key_type=str, key_serializer="json", value_serializer="json")
    return app.Table(name, options=dict(ROCKSDICT), schema=schema, **kwargs)

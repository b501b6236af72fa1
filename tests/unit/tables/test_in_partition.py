"""``tables.in_partition`` relies on faust-streaming internals: these tests fail when any of them changes."""

from __future__ import annotations

import hashlib
import inspect

import faust
import faust.stores.rocksdb
import faust.streams
import faust.tables.base
import faust.tables.table
import pytest

from tables import in_partition

#: The source of each internal ``in_partition`` relies on, as in faust-streaming 0.15.3 (sha256 of the source).
PINNED = {
    faust.streams.current_event: "3b821f1a78d86a58234dfe781fbf539775b00e66fdac9489c1c398a2d81d7e9d",
    faust.tables.base.Collection.partition_for_key: "3b2291811b8dd791cdd0e690b2b09d966a4e961e2a2861182241195696393bed",
    faust.tables.table.Table.on_key_set: "a370e35ca55c2c7e36e93f0d4b485927c32d49199043cab2314572846184dd94",
    faust.tables.table.Table.on_key_del: "4f2900b2f9d24a080d5cbc9eaa1f5566f1d11e56916e79b02f079c52f4751053",
    faust.stores.rocksdb.Store._set: "4227e561e288d9413bf663a3a67940fd4976f5484e70e49445858ce4d400d26e",
    faust.stores.rocksdb.Store._get: "7ae8dfd6d7754a5952ae162d4d5cf0d51a8a020ed730a4a7c7dc7f7c84e73fb8",
}


def test_faust_streaming_is_the_pinned_version() -> None:
    assert faust.__version__ == "0.15.3", "tables.in_partition was checked against faust-streaming 0.15.3 only"


@pytest.mark.parametrize("function", list(PINNED), ids=lambda function: function.__qualname__)
def test_the_internals_in_partition_relies_on_are_unchanged(function: object) -> None:
    digest = hashlib.sha256(inspect.getsource(function).encode()).hexdigest()  # type: ignore[arg-type]
    assert digest == PINNED[function], (
        f"{function.__qualname__} changed: check that table writes are still placed by "  # type: ignore[attr-defined]
        "current_event().message.partition and .topic, then update tables.in_partition and this pin"
    )


def test_in_partition_makes_the_current_event_one_of_that_partition_and_restores_it() -> None:
    assert faust.streams.current_event() is None
    with in_partition("stock-requests", 3):
        event = faust.streams.current_event()
        assert event is not None
        assert (event.message.topic, event.message.partition) == ("stock-requests", 3)
        with in_partition("stock-requests", 1):
            assert faust.streams.current_event().message.partition == 1  # type: ignore[union-attr]
        assert faust.streams.current_event().message.partition == 3  # type: ignore[union-attr]
    assert faust.streams.current_event() is None

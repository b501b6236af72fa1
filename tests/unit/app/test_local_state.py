"""Local table files are kept only for the cluster and the changelog topics they were read from."""

from __future__ import annotations

from pathlib import Path

from app.local_state import KafkaOrigin, LocalTables, stale_reason

STOCK, SHARDS = "app-stock-changelog", "app-generation-shards-changelog"
HERE = KafkaOrigin("cluster-A", {STOCK: "id-1", SHARDS: "id-2"})


def _tables(tmp_path: Path, tables: dict[str, str] | None = None) -> LocalTables:
    local = LocalTables(tmp_path / "v1" / "tables", "app", tables or {"stock": STOCK, "generation-shards": SHARDS})
    for name in ("stock-0.db", "stock-3.db", "generation-shards-11.db", "other-app-table-0.db"):
        (local.tabledir / name).mkdir(parents=True, exist_ok=True)
        (local.tabledir / name / "CURRENT").write_text("rocksdb")
    return local


def test_the_same_cluster_and_topic_keep_a_table() -> None:
    assert stale_reason(HERE, KafkaOrigin("cluster-A", dict(HERE.topic_ids)), STOCK) is None
    assert stale_reason(HERE, KafkaOrigin("cluster-A", {STOCK: "id-1"}), STOCK) is None  # the other one is not asked


def test_another_cluster_a_recreated_or_lost_topic_or_no_record_drop_a_table() -> None:
    assert "cluster-A" in (stale_reason(HERE, KafkaOrigin("cluster-B", dict(HERE.topic_ids)), STOCK) or "")
    recreated = KafkaOrigin("cluster-A", {**HERE.topic_ids, STOCK: "id-7"})
    assert STOCK in (stale_reason(HERE, recreated, STOCK) or "")
    assert STOCK in (stale_reason(HERE, KafkaOrigin("cluster-A", {SHARDS: "id-2"}), STOCK) or "")
    assert stale_reason(None, HERE, STOCK) is not None
    assert stale_reason(KafkaOrigin("cluster-A", {SHARDS: "id-2"}), HERE, STOCK) is not None  # never recorded


def test_stale_files_of_this_app_are_removed_and_others_kept(tmp_path: Path) -> None:
    local = _tables(tmp_path)
    local.remember(HERE)
    assert local.recorded() == HERE
    assert local.discard_if_stale(HERE) == []
    assert len(local.files()) == 3
    dropped = local.discard_if_stale(KafkaOrigin("cluster-B", dict(HERE.topic_ids)))
    assert [line.split(":")[0] for line in dropped] == ["generation-shards", "stock"]
    assert local.files() == []
    assert (local.tabledir / "other-app-table-0.db" / "CURRENT").exists()  # another APP_ID's table


def test_only_the_table_whose_changelog_changed_is_dropped(tmp_path: Path) -> None:
    local = _tables(tmp_path)
    local.remember(HERE)
    dropped = local.discard_if_stale(KafkaOrigin("cluster-A", {STOCK: "id-1", SHARDS: "id-9"}))
    assert len(dropped) == 1
    assert dropped[0].startswith("generation-shards")
    assert [path.name for path in local.files()] == ["stock-0.db", "stock-3.db"]


def test_a_worker_without_a_table_neither_checks_it_nor_forgets_it(tmp_path: Path) -> None:
    _tables(tmp_path).remember(HERE)
    agents_only = _tables(tmp_path, {"stock": STOCK})  # e.g. GENERATION_ENABLED=false
    assert agents_only.discard_if_stale(KafkaOrigin("cluster-A", {STOCK: "id-1"})) == []
    agents_only.remember(KafkaOrigin("cluster-A", {STOCK: "id-1"}))
    assert agents_only.recorded() == HERE  # the shards' entry kept for the next generating start
    assert len(agents_only.files("generation-shards")) == 1


def test_files_without_a_record_are_dropped_and_no_files_need_nothing(tmp_path: Path) -> None:
    empty = LocalTables(tmp_path / "nothing", "app", {"stock": STOCK})
    assert empty.discard_if_stale(HERE) == []
    local = _tables(tmp_path)
    assert len(local.discard_if_stale(HERE)) == 2
    assert local.files() == []


def test_a_damaged_record_counts_as_none(tmp_path: Path) -> None:
    local = _tables(tmp_path)
    local.record.write_text("{not json", encoding="utf-8")
    assert local.recorded() is None
    assert KafkaOrigin.from_json('{"cluster_id": "x"}') is None
    assert KafkaOrigin.from_json(HERE.to_json()) == HERE

"""Local table files are kept only for the cluster and the changelog topics they were read from."""

from __future__ import annotations

from pathlib import Path

from app.local_state import KafkaOrigin, LocalTables, stale_reason

HERE = KafkaOrigin("cluster-A", {"app-stock-changelog": "id-1", "app-generation-shards-changelog": "id-2"})


def _tables(tmp_path: Path) -> LocalTables:
    local = LocalTables(tmp_path / "v1" / "tables", "app", ["stock", "generation-shards"])
    for name in ("stock-0.db", "stock-3.db", "generation-shards-11.db", "other-app-table-0.db"):
        (local.tabledir / name).mkdir(parents=True)
        (local.tabledir / name / "CURRENT").write_text("rocksdb")
    return local


def test_the_same_cluster_and_topics_keep_the_files() -> None:
    assert stale_reason(HERE, KafkaOrigin("cluster-A", dict(HERE.topic_ids))) is None
    # A changelog recorded then is the one that matters; a table added since has nothing recorded to contradict.
    assert stale_reason(HERE, KafkaOrigin("cluster-A", {**HERE.topic_ids, "app-new-changelog": "id-9"})) is None


def test_another_cluster_a_recreated_or_lost_topic_or_no_record_drop_them() -> None:
    assert "cluster-A" in (stale_reason(HERE, KafkaOrigin("cluster-B", dict(HERE.topic_ids))) or "")
    recreated = KafkaOrigin("cluster-A", {**HERE.topic_ids, "app-stock-changelog": "id-7"})
    assert "app-stock-changelog" in (stale_reason(HERE, recreated) or "")
    lost = KafkaOrigin("cluster-A", {"app-generation-shards-changelog": "id-2"})
    assert "app-stock-changelog" in (stale_reason(HERE, lost) or "")
    assert stale_reason(None, HERE) is not None


def test_stale_files_of_this_app_are_removed_and_others_kept(tmp_path: Path) -> None:
    local = _tables(tmp_path)
    local.remember(HERE)
    assert local.recorded() == HERE
    assert local.discard_if_stale(HERE) is None
    assert len(local.files()) == 3
    reason = local.discard_if_stale(KafkaOrigin("cluster-B", dict(HERE.topic_ids)))
    assert reason is not None
    assert local.files() == []
    assert (local.tabledir / "other-app-table-0.db" / "CURRENT").exists()  # another APP_ID's table
    assert local.recorded() is None


def test_files_without_a_record_are_dropped_and_no_files_need_nothing(tmp_path: Path) -> None:
    empty = LocalTables(tmp_path / "nothing", "app", ["stock"])
    assert empty.discard_if_stale(HERE) is None
    local = _tables(tmp_path)
    assert local.discard_if_stale(HERE) == stale_reason(None, HERE)
    assert local.files() == []


def test_a_damaged_record_counts_as_none(tmp_path: Path) -> None:
    local = _tables(tmp_path)
    local.record.write_text("{not json", encoding="utf-8")
    assert local.recorded() is None
    assert KafkaOrigin.from_json('{"cluster_id": "x"}') is None
    assert KafkaOrigin.from_json(HERE.to_json()) == HERE

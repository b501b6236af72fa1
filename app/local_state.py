"""Local table state that belongs to another Kafka: noticed at start, discarded, and rebuilt from the changelogs.

Faust keeps each table in RocksDB under DATA_DIR, with the changelog offset it has read up to. Those files are a cache
of the changelog topics. When the cluster is not the one they were built from (a wiped local stack, another
environment) or a changelog topic was deleted and created again, the offsets they hold point past the end of the
topics, and Faust stops with a ConsistencyError ("persisted offset ... is higher than the last offset"). So the worker
records, beside the files, which cluster and which topics (by Kafka's topic ids) they came from; at the next start, a
different cluster, a changed topic id, or no record at all means the files are dropped before any table opens them,
with one log line, and Faust recovers the tables from their changelogs as on a new machine.
"""

from __future__ import annotations

import asyncio
import json
import logging
import shutil
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from confluent_kafka import KafkaError, KafkaException, TopicCollection
from confluent_kafka.admin import AdminClient

log = logging.getLogger(__name__)

#: How long one look at the cluster may take before it counts as a failure (and is retried by the caller).
ADMIN_TIMEOUT_SECONDS = 10.0


@dataclass(frozen=True)
class KafkaOrigin:
    """Which cluster, and which incarnation of each changelog topic, a set of table files was read from."""

    cluster_id: str
    topic_ids: dict[str, str]  # changelog topic -> topic id; a topic that does not exist is absent

    def to_json(self) -> str:
        return json.dumps({"cluster_id": self.cluster_id, "topic_ids": self.topic_ids}, sort_keys=True)

    @classmethod
    def from_json(cls, text: str) -> KafkaOrigin | None:
        try:
            data = json.loads(text)
            return cls(str(data["cluster_id"]), {str(k): str(v) for k, v in dict(data["topic_ids"]).items()})
        except (ValueError, KeyError, TypeError, AttributeError):
            return None


def stale_reason(recorded: KafkaOrigin | None, current: KafkaOrigin, changelog: str) -> str | None:
    """Why a table's files, recorded as read from ``recorded``, cannot serve ``current``; None when they can."""
    if recorded is None:
        return "they carry no record of the Kafka cluster they were read from"
    if recorded.cluster_id != current.cluster_id:
        return f"they were read from Kafka cluster {recorded.cluster_id}, and this one is {current.cluster_id}"
    if changelog not in recorded.topic_ids:
        return f"they carry no record of changelog topic {changelog}"
    if current.topic_ids.get(changelog) != recorded.topic_ids[changelog]:
        return f"changelog topic {changelog} was deleted or created again since they were read from it"
    return None


class LocalTables:
    """The RocksDB files of one app's tables under Faust's ``tabledir``, and the record of where they came from.

    ``tables`` maps each table this worker declares to its changelog topic; a table it does not declare (another
    role's) is neither checked nor dropped, and its entry in the record is kept.
    """

    def __init__(self, tabledir: Path, app_id: str, tables: Mapping[str, str]) -> None:
        self.tabledir = tabledir
        self.record = tabledir / f"{app_id}.kafka-origin.json"
        self.tables = dict(tables)

    def files(self, table: str | None = None) -> list[Path]:
        """The files present of ``table``, or of all the tables (one directory per table partition)."""
        if not self.tabledir.is_dir():
            return []
        names = [table] if table is not None else sorted(self.tables)
        return sorted(path for name in names for path in self.tabledir.glob(f"{name}-*.db"))

    def recorded(self) -> KafkaOrigin | None:
        try:
            return KafkaOrigin.from_json(self.record.read_text(encoding="utf-8"))
        except OSError:
            return None

    def discard_if_stale(self, current: KafkaOrigin) -> list[str]:
        """Remove the files of each table that cannot serve ``current``; a line for each table removed."""
        recorded = self.recorded()
        dropped = []
        for table, changelog in sorted(self.tables.items()):
            files = self.files(table)
            reason = stale_reason(recorded, current, changelog) if files else None
            if reason is None:
                continue
            for path in files:
                if path.is_dir():
                    shutil.rmtree(path)
                else:
                    path.unlink(missing_ok=True)
            dropped.append(f"{table}: {reason}")
        return dropped

    def remember(self, current: KafkaOrigin) -> None:
        """Record ``current`` as the origin of this worker's tables from now on, keeping what the record says of
        other tables while the cluster is the same (written whole, then renamed into place)."""
        recorded = self.recorded()
        kept = recorded.topic_ids if recorded is not None and recorded.cluster_id == current.cluster_id else {}
        ids = {
            **kept,
            **{
                changelog: current.topic_ids[changelog]
                for changelog in self.tables.values()
                if changelog in current.topic_ids
            },
        }
        self.tabledir.mkdir(parents=True, exist_ok=True)
        partial = self.record.with_name(self.record.name + ".partial")
        partial.write_text(KafkaOrigin(current.cluster_id, ids).to_json(), encoding="utf-8")
        partial.replace(self.record)


def kafka_origin(config: dict[str, Any], topics: Iterable[str]) -> KafkaOrigin:
    """The cluster's id and the ids of those of ``topics`` that exist, asked of the cluster (blocking)."""
    admin = AdminClient(config)
    cluster = admin.describe_cluster(request_timeout=ADMIN_TIMEOUT_SECONDS).result(timeout=ADMIN_TIMEOUT_SECONDS)
    wanted = sorted(set(topics))
    existing = set(admin.list_topics(timeout=ADMIN_TIMEOUT_SECONDS).topics)
    present = [topic for topic in wanted if topic in existing]
    ids: dict[str, str] = {}
    if present:
        described = admin.describe_topics(TopicCollection(present), request_timeout=ADMIN_TIMEOUT_SECONDS)
        for topic, future in described.items():
            try:
                ids[topic] = str(future.result(timeout=ADMIN_TIMEOUT_SECONDS).topic_id)
            except KafkaException:
                continue  # deleted since the listing: absent
    return KafkaOrigin(str(cluster.cluster_id), ids)


async def drop_stale_tables(local: LocalTables, config: dict[str, Any]) -> None:
    """Before any table opens: drop the files that belong to another cluster or to lost changelogs, saying so."""
    try:
        current = await asyncio.to_thread(kafka_origin, config, local.tables.values())
    except KafkaException as error:
        if not _unsupported(error):
            raise
        log.warning("the broker does not tell its cluster and topic ids (%s): local table state kept unchecked", error)
        return
    dropped = local.discard_if_stale(current)
    if dropped:
        log.warning(
            "local table state in %s discarded (%s); the tables rebuild from their changelogs",
            local.tabledir,
            "; ".join(dropped),
        )


async def remember_origin(local: LocalTables, config: dict[str, Any]) -> None:
    """Once the changelogs exist: record the cluster and their ids beside the table files."""
    try:
        local.remember(await asyncio.to_thread(kafka_origin, config, local.tables.values()))
    except KafkaException as error:
        if not _unsupported(error):
            raise


def _unsupported(error: KafkaException) -> bool:
    """True when the broker is too old to describe its cluster or topic ids (before Kafka 2.8)."""
    code = error.args[0].code() if error.args and isinstance(error.args[0], KafkaError) else None
    return code in (KafkaError.UNSUPPORTED_VERSION, KafkaError._UNSUPPORTED_FEATURE)

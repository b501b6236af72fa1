"""The five event topics and the dead-letter topic, declared with the configured partition counts."""

from __future__ import annotations

from dataclasses import dataclass

import faust
from faust.types import TopicT

from app.settings import Settings


@dataclass(frozen=True)
class Topics:
    """The app's topics by role; values travel as Confluent-framed Avro bytes, so Faust sees raw bytes."""

    by_role: dict[str, TopicT]

    def __getitem__(self, role: str) -> TopicT:
        return self.by_role[role]

    async def declare_all(self) -> None:
        """Create every topic that does not exist yet (existing ones are left as they are)."""
        for topic in self.by_role.values():
            await topic.maybe_declare()


def declare_topics(app: faust.App, settings: Settings) -> Topics:
    """Define the six topics on ``app``; nothing reaches Kafka until ``declare_all`` is awaited."""
    return Topics(
        {
            role: app.topic(
                name,
                partitions=settings.topic_partitions,
                replicas=settings.topic_replication_factor,
                key_serializer="raw",
                value_serializer="raw",
            )
            for role, name in settings.topics().items()
        }
    )

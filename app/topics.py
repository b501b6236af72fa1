"""The five event topics, the dead-letter topic and the truth topic, declared with the configured partition counts."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

import faust
from faust.types import TopicT

from app.clients import kafka_config, refuse_wrong_credentials
from app.fast_consumer import FastDrainTransport
from app.local_state import LocalTables, drop_stale_tables, remember_origin
from app.retry import until_done
from app.settings import Settings

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Topics:
    """The app's topics by role; values travel as Confluent-framed Avro bytes, so Faust sees raw bytes."""

    by_role: dict[str, TopicT]

    def __getitem__(self, role: str) -> TopicT:
        return self.by_role[role]


class DatagenApp(faust.App):
    """A Faust app that creates its topics before its consumer subscribes.

    The broker does not create topics on demand, and a consumer that subscribes to a topic its metadata does
    not show yet ignores it for good (seen on a freshly started broker), so the topics come first.
    """

    declare_first: list[TopicT]
    #: The settings the app was made with; None for an app made without (tests).
    datagen_settings: Settings | None = None

    async def on_first_start(self) -> None:
        await super().on_first_start()
        settings = self.datagen_settings
        if settings is not None:
            await refuse_wrong_credentials(settings)
        topics = getattr(self, "declare_first", [])
        tables = {table.name: table.changelog_topic.get_topic_name() for table in self.tables.values()}
        local = LocalTables(Path(self.conf.tabledir), self.conf.id, tables)
        if settings is not None and tables:
            config = kafka_config(settings, logger=logging.getLogger("librdkafka"))
            await until_done(lambda: drop_stale_tables(local, config), "checking the local table state")

        async def declare() -> None:
            for topic in topics:
                await topic.maybe_declare()

        await until_done(declare, "creating topics")
        log.info("topics ready: %s", ", ".join(topic.get_topic_name() for topic in topics))
        if settings is not None and tables:
            await until_done(lambda: remember_origin(local, config), "recording the tables' origin")

    def _new_transport(self) -> FastDrainTransport:
        # Faust's, with the consumer that hands records to the streams without a task race per record.
        return FastDrainTransport(self.conf.broker_consumer, self)


def declare_topics(app: faust.App, settings: Settings) -> Topics:
    """Define the seven topics on ``app``; the app creates them when it first starts."""
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

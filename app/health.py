"""Whether Kafka, the schema registry and Postgres answer: what ``GET /health`` reports."""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass

import aiohttp
import aiopg
from confluent_kafka.admin import AdminClient

from app.clients import kafka_config, registry_http, without_secrets
from app.settings import Settings, mask_url


@dataclass(frozen=True)
class Check:
    """One service's answer: reachable or not, and why not."""

    service: str
    ok: bool
    detail: str


class HealthChecker:
    """Probes each service with a short timeout; holds one Kafka admin client, opened on first use."""

    def __init__(self, settings: Settings, *, timeout: float = 3.0) -> None:
        self._settings = settings
        self._timeout = timeout
        self._admin: AdminClient | None = None

    async def check_all(self) -> list[Check]:
        """Probe the three services at once."""
        return list(await asyncio.gather(self.kafka(), self.registry(), self.postgres()))

    async def kafka(self) -> Check:
        """Kafka answers a metadata request."""
        try:
            metadata = await asyncio.to_thread(self._admin_client().list_topics, timeout=self._timeout)
        except Exception as error:
            return self._failed("kafka", error)
        return Check("kafka", True, f"{len(metadata.brokers)} broker(s)")

    async def registry(self) -> Check:
        """The registry lists its subjects."""
        url = f"{self._settings.schema_registry_url}/subjects"
        try:
            timeout = aiohttp.ClientTimeout(total=self._timeout)
            async with (
                aiohttp.ClientSession(timeout=timeout) as session,
                session.get(url, **registry_http(self._settings)) as response,
            ):
                response.raise_for_status()
                subjects = await response.json(content_type=None)
        except Exception as error:
            return self._failed("registry", error)
        return Check("registry", True, f"{len(subjects)} subject(s)")

    async def postgres(self) -> Check:
        """Postgres runs ``select 1``."""
        dsn = self._settings.pg_dsn.get_secret_value()
        try:
            async with aiopg.connect(dsn, timeout=self._timeout) as conn, conn.cursor() as cursor:
                await cursor.execute("select 1")
                await cursor.fetchone()
        except Exception as error:
            return self._failed("postgres", error)
        return Check("postgres", True, "select 1")

    def _admin_client(self) -> AdminClient:
        if self._admin is None:
            self._admin = AdminClient(kafka_config(self._settings, logger=logging.getLogger("librdkafka")))
        return self._admin

    def _failed(self, service: str, error: BaseException) -> Check:
        text = str(error).strip().splitlines()[0] if str(error).strip() else ""
        text = without_secrets(text.replace(self._settings.pg_dsn.get_secret_value(), "<PG_DSN>"), self._settings)
        text = text.replace(self._settings.schema_registry_url, mask_url(self._settings.schema_registry_url))
        return Check(service, False, f"{type(error).__name__}: {text}"[:300])

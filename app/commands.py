"""The app's commands besides ``worker``: ``faust -A app seed`` and ``faust -A app verify``."""

from __future__ import annotations

import asyncio

import faust
from faust.cli import AppCommand, option

from app.settings import Settings
from app.verify.command import verify as verify_deployment
from db.seed import seed_command


def register_commands(app: faust.App, settings: Settings) -> None:
    """Add the ``seed`` and ``verify`` commands to ``app``, both reading ``settings``."""

    @app.command()
    async def seed(self: AppCommand) -> None:
        """Apply the Postgres schema and seed the reference data unless the database holds it already."""
        await seed_command(settings, say=self.say)

    @app.command(
        option("--json", "json_path", default=None, metavar="PATH", help="Also write every check's result to PATH."),
        option(
            "--worker-url",
            "worker_urls",
            multiple=True,
            default=[f"http://127.0.0.1:{settings.web_port}"],
            help="A worker whose stock table to compare (kafka mode); repeat it for each worker of the APP_ID.",
        ),
        option("--timeout", default=60.0, type=float, help="Seconds to wait for Kafka, the registry and Postgres."),
    )
    async def verify(self: AppCommand, json_path: str | None, worker_urls: tuple[str, ...], timeout: float) -> None:
        """Check every promise of the docs against the topics, Postgres and the worker: exit 1 if one fails."""
        raise SystemExit(await asyncio.to_thread(verify_deployment, settings, json_path, worker_urls, timeout))

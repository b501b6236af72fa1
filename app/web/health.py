"""``GET /health``: 200 when Kafka, the registry and Postgres all answer; 503 naming those that do not."""

from __future__ import annotations

import faust
from faust.web import Request, Response, View

from app.health import HealthChecker


def register_health(app: faust.App, health: HealthChecker) -> None:
    """Add ``/health`` to ``app``, answered by ``health``'s checks."""

    @app.page("/health")
    class Health(View):
        """200 when Kafka, the registry and Postgres all answer; 503 naming those that do not."""

        async def get(self, request: Request) -> Response:
            checks = await health.check_all()
            failing = [check.service for check in checks if not check.ok]
            body = {
                "status": "ok" if not failing else "unavailable",
                "failing": failing,
                "checks": {check.service: {"ok": check.ok, "detail": check.detail} for check in checks},
            }
            return self.json(body, status=503 if failing else 200)

"""Retrying a start-up step while a service it needs does not answer."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from typing import TypeVar

T = TypeVar("T")

log = logging.getLogger(__name__)


async def until_done(
    step: Callable[[], Awaitable[T]], what: str, *, first_delay: float = 1.0, max_delay: float = 30.0
) -> T:
    """Await ``step()`` until it succeeds, doubling the pause after each failure up to ``max_delay``.

    Failures are logged by exception type and first line only: messages of database drivers may quote a DSN.
    """
    delay = first_delay
    while True:
        try:
            return await step()
        except asyncio.CancelledError:
            raise
        except Exception as error:
            first_line = (str(error).strip().splitlines() or [""])[0][:200]
            log.warning("%s failed (%s: %s); retrying in %.0f s", what, type(error).__name__, first_line, delay)
            await asyncio.sleep(delay)
            delay = min(delay * 2, max_delay)

"""Schema evolution mid-run (SCHEMA_EVOLVE_AFTER): from which event a shard writes version 2 of the evolving
schemas (schemas.EVOLVED_SCHEMAS), and the values of their new fields.

The switch is at a position of the whole stream, not of a worker: event ``n`` of shard ``s`` is the stream's event
``n x GENERATION_SHARDS + s``, so every event from SCHEMA_EVOLVE_AFTER on is written with version 2, whatever the
number of workers. The new fields' values follow from the record's own ids, so a seeded run stays reproducible.
"""

from __future__ import annotations

import zlib
from collections.abc import Mapping
from typing import Any

from app.wire.roles import CUSTOMER_INTERACTIONS, ORDERS

CHANNELS = ("web", "web", "app", "app", "marketplace")
DEVICES = ("desktop", "mobile", "mobile", "tablet")
REFERRERS = (None, None, "google.com", "instagram.com", "newsletter")
#: One order in COUPON_EVERY has a coupon.
COUPON_EVERY = 8
COUPONS = ("SPRING10", "WELCOME5", "FREESHIP")


def first_evolved(after: int, shard: int, shards: int) -> int:
    """The first event number of ``shard`` (of ``shards``) at or past the stream's event ``after``."""
    return max(0, -(-(after - shard) // shards))


def _pick(choices: tuple[Any, ...], identifier: object, salt: int = 0) -> Any:
    """One of ``choices``, the same for the same id (and ``salt``) in every process."""
    return choices[zlib.crc32(f"{salt}:{identifier}".encode()) % len(choices)]


def evolved(kind: str, value: Mapping[str, Any]) -> dict[str, Any]:
    """``value`` of ``kind`` with the fields version 2 adds."""
    if kind == ORDERS:
        order_id = value["order_id"]
        coupon = _pick(COUPONS, order_id, 2) if _pick(tuple(range(COUPON_EVERY)), order_id, 1) == 0 else None
        return {**value, "channel": _pick(CHANNELS, order_id), "coupon_code": coupon}
    if kind == CUSTOMER_INTERACTIONS:
        session_id = value["session_id"]
        return {**value, "device": _pick(DEVICES, session_id), "referrer": _pick(REFERRERS, session_id, 1)}
    return dict(value)

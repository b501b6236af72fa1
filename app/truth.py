"""Known answers: exact counts of what each generation shard emitted per minute of emission time.

A minute is ``[m, m + 60 s)`` of Kafka record timestamps (the emission time, not the event time). Per shard and
minute the generator counts every record it hands to the producer (``MinuteCounts``), and a ``TruthBook`` keeps
those counts until every record of the minute has been delivered or has failed; failures are taken back out. Once
the minute is over and nothing of it is in flight, its counts are final and go out on the truth topic.

What a count means, so that a consumer counting the topics gets the same figures (``classify`` is that consumer's
rule, used where the generator cannot know: a record whose delivery failed, and the minutes a killed worker left
open, which the shard's next owner counts again from Kafka):

- ``records``: every record per topic, the deliberately bad ones included;
- ``bad_records``: records carrying the ``x-datagen-bad-record`` header, by kind;
- ``duplicates``: the second copies of records sent twice on purpose (``DUPLICATE_HEADER``), counted in
  ``records`` too and nowhere else;
- everything else counts good records only (no bad-record header): ``orders``, ``units_ordered`` and
  ``revenue_cents`` by currency from orders, ``interactions`` by type, ``inventory_changes`` by type (the
  background changes: RESTOCK and DAMAGE; RETURNs are the stock agent's), ``late_events`` per topic (event time
  before the record timestamp).

The agents count what they derive the same way, per source (``SOURCE_HEADER``: the agent and the worker process
that sent it) rather than per shard: ``payments`` by status and method, ``shipments`` by carrier,
``inventory_changes`` by type and ``units_shipped`` (the units of the SALE changes), with ``records`` per topic
(``add_derived``; agents/derived_truth.py).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from app.wire.headers import BAD_RECORD_HEADER
from app.wire.roles import CUSTOMER_INTERACTIONS, INVENTORY_CHANGES, ORDERS, PAYMENTS, SHIPMENTS
from schemas.symbols import SALE

#: One minute of record timestamps, in milliseconds.
MINUTE_MS = 60_000
#: The ``source`` of the generator's truth records; the agents' name their agent and incarnation.
GENERATOR = "generator"


def minute_of(timestamp_ms: int) -> int:
    """The start of the minute ``timestamp_ms`` falls in, epoch milliseconds."""
    return timestamp_ms - timestamp_ms % MINUTE_MS


@dataclass
class MinuteCounts:
    """What one shard emitted in one minute; see the module's docstring for what each count means."""

    records: Counter[str] = field(default_factory=Counter)
    orders: int = 0
    units_ordered: int = 0
    revenue_cents: Counter[str] = field(default_factory=Counter)
    interactions: Counter[str] = field(default_factory=Counter)
    inventory_changes: Counter[str] = field(default_factory=Counter)
    late_events: Counter[str] = field(default_factory=Counter)
    bad_records: Counter[str] = field(default_factory=Counter)
    duplicates: int = 0
    payments: Counter[str] = field(default_factory=Counter)
    shipments: Counter[str] = field(default_factory=Counter)
    units_shipped: int = 0

    def add(
        self, topic: str, kind: str, value: Mapping[str, Any] | None, late: bool, bad_kind: str | None, n: int = 1
    ) -> None:
        """Count one record (``n=-1`` takes one back): on ``topic``, of ``kind``; ``value`` is read only when good."""
        self.records[topic] += n
        if bad_kind is not None:
            self.bad_records[bad_kind] += n
            return
        assert value is not None
        if late:
            self.late_events[topic] += n
        if kind == ORDERS:
            self.orders += n
            self.units_ordered += n * int(value["quantity"])
            self.revenue_cents[str(value["currency"])] += n * int(value["amount"])
        elif kind == CUSTOMER_INTERACTIONS:
            self.interactions[str(value["interaction_type"])] += n
        elif kind == INVENTORY_CHANGES:
            self.inventory_changes[str(value["change_type"])] += n

    def add_duplicate(self, topic: str, n: int = 1) -> None:
        """Count the second copy of a record sent twice on purpose (``n=-1`` takes one back)."""
        self.records[topic] += n
        self.duplicates += n

    def add_derived(self, topic: str, role: str, value: Mapping[str, Any], n: int = 1) -> None:
        """Count one record an agent derived (``n=-1`` takes one back): on ``topic`` of ``role`` (payments,
        shipments or inventory_changes)."""
        self.records[topic] += n
        if role == PAYMENTS:
            self.payments[f"{value['status']}/{value['method']}"] += n
        elif role == SHIPMENTS:
            self.shipments[str(value["carrier"])] += n
        elif role == INVENTORY_CHANGES:
            change_type = str(value["change_type"])
            self.inventory_changes[change_type] += n
            if change_type == SALE:
                self.units_shipped -= n * int(value["delta"])

    def merge(self, other: MinuteCounts) -> None:
        """Add ``other``'s counts to these."""
        self.records.update(other.records)
        self.orders += other.orders
        self.units_ordered += other.units_ordered
        self.revenue_cents.update(other.revenue_cents)
        self.interactions.update(other.interactions)
        self.inventory_changes.update(other.inventory_changes)
        self.late_events.update(other.late_events)
        self.bad_records.update(other.bad_records)
        self.duplicates += other.duplicates
        self.payments.update(other.payments)
        self.shipments.update(other.shipments)
        self.units_shipped += other.units_shipped

    @property
    def total(self) -> int:
        """Records of every topic."""
        return sum(self.records.values())

    def value(
        self, app_id: str, shard: int, minute_ms: int, complete: bool, source: str = GENERATOR
    ) -> dict[str, Any]:
        """The truth record (schemas/truth.avsc) of these counts: of generation shard ``shard``, or of an agent's
        ``source`` (shard -1)."""

        def positive(counts: Counter[str]) -> dict[str, int]:
            return {key: count for key, count in sorted(counts.items()) if count}

        return {
            "app_id": app_id,
            "shard": shard,
            "minute": minute_ms,
            "complete": complete,
            "records": positive(self.records),
            "orders": self.orders,
            "units_ordered": self.units_ordered,
            "revenue_cents": positive(self.revenue_cents),
            "interactions": positive(self.interactions),
            "inventory_changes": positive(self.inventory_changes),
            "late_events": positive(self.late_events),
            "bad_records": positive(self.bad_records),
            "duplicates": self.duplicates,
            "source": source,
            "payments": positive(self.payments),
            "shipments": positive(self.shipments),
            "units_shipped": self.units_shipped,
        }

    @classmethod
    def from_value(cls, value: Mapping[str, Any]) -> MinuteCounts:
        """The counts of a truth record (the inverse of ``value``)."""
        return cls(
            records=Counter(value["records"]),
            orders=int(value["orders"]),
            units_ordered=int(value["units_ordered"]),
            revenue_cents=Counter(value["revenue_cents"]),
            interactions=Counter(value["interactions"]),
            inventory_changes=Counter(value["inventory_changes"]),
            late_events=Counter(value["late_events"]),
            bad_records=Counter(value["bad_records"]),
            duplicates=int(value["duplicates"]),
            payments=Counter(value.get("payments") or {}),
            shipments=Counter(value.get("shipments") or {}),
            units_shipped=int(value.get("units_shipped") or 0),
        )

    def comparable(self) -> dict[str, Any]:
        """The counts without zeros, for comparing two countings."""
        ignored = ("app_id", "shard", "minute", "complete", "source")
        return {key: item for key, item in self.value("", 0, 0, True).items() if key not in ignored}


def truth_key(shard: int, minute_ms: int) -> str:
    """The truth record's key: one per (shard, minute); the latest record of a key is the truth."""
    return f"{shard}:{minute_ms}"


def source_key(source: str, minute_ms: int) -> str:
    """An agent's truth record key: one per (source, minute)."""
    return f"{source}:{minute_ms}"


def header(headers: Any, name: str) -> str | None:
    """The value of header ``name`` as text, or None (``headers``: pairs, or a mapping, or None)."""
    pairs = headers.items() if isinstance(headers, Mapping) else (headers or ())
    for key, value in pairs:
        if key == name and value is not None:
            return value.decode() if isinstance(value, bytes) else str(value)
    return None


#: Decodes a good record's value: (topic role, raw bytes) -> the value dict.
Decode = Callable[[str, bytes], Mapping[str, Any]]


def classify(
    topic: str, role: str, headers: Any, raw: bytes | None, timestamp_ms: int, decode: Decode
) -> tuple[Mapping[str, Any] | None, bool, str | None]:
    """How a consumer counts one record read from ``topic`` (of event kind ``role``): (value, late, bad kind).

    A record with the bad-record header is counted by its kind and not decoded; any other is decoded, and is late
    when its event time is before its record timestamp.
    """
    bad_kind = header(headers, BAD_RECORD_HEADER)
    if bad_kind is not None:
        return None, False, bad_kind
    value = decode(role, raw or b"")
    event_time = value["event_time"]
    event_ms = int(event_time.timestamp() * 1000) if hasattr(event_time, "timestamp") else int(event_time)
    return value, event_ms < timestamp_ms, None


class TruthBook:
    """The counts of the shards this worker holds, per (shard, minute), until each minute can be published.

    A minute is ready once every record of it has been delivered or reported failed: once the producer's queue has
    been seen empty (``settle``) after the minute ended. The generator waits for that at each minute's end rather
    than hear of every record's delivery, which would cost a Python callback per record.
    """

    def __init__(self) -> None:
        self.minutes: dict[tuple[int, int], MinuteCounts] = {}
        #: Every record emitted before this moment (epoch ms) is delivered or reported failed.
        self.settled_through = 0
        #: Nothing before this moment is emitted any more: minutes before it were taken (published).
        self.closed_through = 0
        #: The counts of every minute taken or dropped, so that ``so_far`` only ever grows.
        self._past = MinuteCounts()

    def counts(self, shard: int, minute_ms: int) -> MinuteCounts:
        """The (live) counts of ``shard`` in ``minute_ms``."""
        key = (shard, minute_ms)
        found = self.minutes.get(key)
        if found is None:
            found = self.minutes[key] = MinuteCounts()
        return found

    def unsettled(self, now_ms: int) -> bool:
        """True when a minute with counts is over at ``now_ms`` but not yet known to be delivered."""
        return any(self.settled_through < minute + MINUTE_MS <= now_ms for _, minute in self.minutes)

    def settle(self, now_ms: int) -> None:
        """Nothing is in flight at ``now_ms``: everything emitted so far is delivered or reported failed."""
        self.settled_through = max(self.settled_through, now_ms)

    def ready(self) -> list[int]:
        """The minutes that are over and settled, oldest first."""
        return sorted({minute for _, minute in self.minutes if minute + MINUTE_MS <= self.settled_through})

    def take(self, minute_ms: int) -> dict[int, MinuteCounts]:
        """Remove and return every shard's counts of ``minute_ms``; nothing earlier may be emitted from now on."""
        keys = [key for key in self.minutes if key[1] == minute_ms]
        taken = {shard: self.minutes.pop((shard, minute)) for shard, minute in keys}
        self.closed_through = max(self.closed_through, minute_ms + MINUTE_MS)
        for counts in taken.values():
            self._past.merge(counts)
        return taken

    def open_minutes(self, shard: int) -> dict[int, MinuteCounts]:
        """``shard``'s counts not yet taken, by minute."""
        return {minute: counts for (held, minute), counts in self.minutes.items() if held == shard}

    def drop(self, shards: Iterable[int]) -> None:
        """Forget ``shards`` (they moved to another worker, which counts their open minutes again from Kafka)."""
        gone = set(shards)
        for key in [key for key in self.minutes if key[0] in gone]:
            self._past.merge(self.minutes.pop(key))

    def so_far(self) -> MinuteCounts:
        """Everything counted here since the worker started: the minutes taken or dropped and the open ones.

        Read when Prometheus scrapes (``app/metrics.py``), never per record. It counts what this worker emitted,
        plus what it counted again from Kafka for a shard it took over (so the minute open when a shard moves is
        counted by both owners; the truth records themselves are exact).
        """
        total = MinuteCounts()
        total.merge(self._past)
        for counts in self.minutes.values():
            total.merge(counts)
        return total

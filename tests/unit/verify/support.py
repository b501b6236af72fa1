"""A synthetic deployment for the verify tests: the records a conforming run writes, drawn with the promised chances.

Values travel as JSON (the collector is handed a decode function, so no registry is needed); everything else is as
on the real topics: keys, record timestamps, the bad-record header, the stock requests, the dead letters with their
source headers, derived ids from ``app.derivation``.
"""

from __future__ import annotations

import json
import math
import random
import uuid
from collections import deque
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from agents.requests import CHANGE
from app.derivation import payment_id, return_change_id, sale_change_id, shipment_id
from app.settings import Settings, load_settings
from app.truth import MinuteCounts
from app.verify.checks import Evidence, Reference, Stock
from app.verify.expectations import Expectations
from app.verify.observe import Collector, Record
from app.wire.headers import BAD_RECORD_HEADER as BAD_HEADER
from app.wire.headers import DLQ_ERROR_HEADER as ERROR
from app.wire.headers import DLQ_SOURCE_OFFSET_HEADER as SOURCE_OFFSET
from app.wire.headers import DLQ_SOURCE_PARTITION_HEADER as SOURCE_PARTITION
from app.wire.headers import DLQ_SOURCE_TOPIC_HEADER as SOURCE_TOPIC
from app.wire.headers import REQUEST_KIND_HEADER as KIND_HEADER

START_MS = 1_700_000_000_000
PRODUCTS = range(1, 21)
#: Every product's unit cost in cents: the synthetic orders are priced at 250, so each unit earns 70.
COST = 180
WAREHOUSES = (1, 2, 3)
USERS = range(1, 301)
OPENING_UNITS = 1_000
ENVIRONMENT = {"P_BAD_RECORD": "0.01", "CANON_INVENTORY": "kafka", "MIRROR_INVENTORY_TO_DB": "true"}


def settings_for(**variables: str) -> Settings:
    return load_settings({**ENVIRONMENT, **variables})


def decode_json(topic: str, raw: bytes | None) -> tuple[Mapping[str, Any] | None, str]:
    """The collector's decode for JSON values: the value, or None and why."""
    try:
        value = json.loads(raw or b"")
    except ValueError as error:
        return None, f"not JSON: {error}"
    return (value, "") if isinstance(value, dict) else (None, "not an object")


@dataclass
class SyntheticRun:
    """Draws a conforming run of ``events`` generated events and what the agents derive from them."""

    settings: Settings = field(default_factory=settings_for)
    seed: int = 5
    events: int = 8_000
    records: list[Record] = field(default_factory=list)
    fold: dict[tuple[int, int], int] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.rng = random.Random(self.seed)
        self.topics = self.settings.topics()
        self.expected = Expectations.from_settings(self.settings)
        self._offsets: dict[str, int] = {}
        self._now = START_MS
        self._sessions: list[list[Any]] = []
        self._carts: deque[tuple[str, int, int]] = deque()
        for product_id in PRODUCTS:
            for warehouse_id in WAREHOUSES:
                self._change(f"opening-{product_id}-{warehouse_id}", product_id, warehouse_id, "RESTOCK", OPENING_UNITS)
        for _ in range(self.events):
            self._event()

    # ----- output

    def emit(
        self,
        role: str,
        key: str | bytes,
        value: Mapping[str, Any] | bytes,
        timestamp_ms: int | None = None,
        headers: Mapping[str, bytes] | None = None,
    ) -> Record:
        """Append one record to ``role``'s topic (role "requests" is the stock requests topic)."""
        topic = self.expected.requests_topic if role == "requests" else self.topics[role]
        offset = self._offsets.get(topic, 0)
        self._offsets[topic] = offset + 1
        raw = value if isinstance(value, bytes) else json.dumps(value).encode()
        record = Record(
            topic,
            0,
            offset,
            key if isinstance(key, bytes) else key.encode(),
            raw,
            self._now if timestamp_ms is None else timestamp_ms,
            dict(headers or {}),
        )
        self.records.append(record)
        return record

    def collect(self, records: list[Record] | None = None) -> Collector:
        collector = Collector(self.expected, decode_json)
        for record in self.records if records is None else records:
            collector.add(record)
        return collector

    def evidence(self, collector: Collector | None = None, **stock: Any) -> Evidence:
        """What the checks judge: the records collected, every reference known, the stock held as the topic says."""
        seen = (collector or self.collect()).observations
        costs = {p: COST for p in PRODUCTS}
        reference = Reference(frozenset(USERS), {p: f"SKU-{p}" for p in PRODUCTS}, frozenset(WAREHOUSES), costs)
        held = {
            "postgres": dict(self.fold),
            "postgres_reason": "",
            "totals_wrong": [],
            "inventory_rows": len(PRODUCTS),
            "worker": dict(self.fold),
            "worker_reason": "",
            **stock,
        }
        # A truth topic that agrees with its recount (the truth checks' own cases are in test_checks.py).
        told = MinuteCounts()
        told.add("orders", "orders", {"quantity": 1, "amount": 5, "currency": "EUR"}, False, None)
        counted = MinuteCounts()
        counted.merge(told)
        return Evidence(
            seen,
            reference,
            Stock(**held),
            self.expected,
            START_MS + 10**9,
            truth={(0, START_MS): (told, True)},
            recount={(0, START_MS): counted},
        )

    # ----- drawing

    def _id(self) -> str:
        return str(uuid.UUID(int=self.rng.getrandbits(128), version=4))

    def _late(self) -> int:
        if self.rng.random() >= self.settings.p_late_event:
            return 0
        return int(min(max(self.rng.lognormvariate(math.log(20_000), 1.0), 1_000), 600_000))

    def _event(self) -> None:
        self._now += 10
        late = self._late()
        bad = self.rng.choice(self.expected.bad_kinds) if self.rng.random() < self.settings.p_bad_record else None
        draw = self.rng.random() * sum(self.expected.mix.values())
        weights = list(self.expected.mix.values())
        if draw < weights[0]:
            self._order(late, bad)
        elif draw < weights[0] + weights[1]:
            self._interaction(late, bad)
        else:
            self._background(bad)

    def _bad(self, role: str, kind: str) -> None:
        record = self.emit(role, b"k", b"\x01spoilt", headers={BAD_HEADER: kind.encode()})
        if role in ("orders", "requests"):  # the agents consume these: dead-lettered
            self.dead_letter(record, "undecodable")

    def dead_letter(self, record: Record, error: str) -> Record:
        headers = {
            **record.headers,
            SOURCE_TOPIC: record.topic.encode(),
            SOURCE_PARTITION: str(record.partition).encode(),
            SOURCE_OFFSET: str(record.offset).encode(),
            ERROR: error.encode(),
        }
        return self.emit("dead_letter", record.key or b"", record.value or b"", headers=headers)

    def _order(self, late: int, bad: str | None) -> None:
        if bad is not None:
            self._bad("orders", bad)
            return
        rng = self.rng
        session_id = None
        if self._carts and rng.random() < 0.5:
            session_id, user_id, product_id = self._carts.popleft()
        else:
            user_id, product_id = rng.choice(USERS), rng.choice(PRODUCTS)
        weights = list(self.expected.quantity.values())
        quantity = rng.choices(range(1, len(weights) + 1), weights)[0]
        order = {
            "order_id": self._id(),
            "user_id": user_id,
            "product_id": product_id,
            "sku": f"SKU-{product_id}",
            "quantity": quantity,
            "unit_price": 250,
            "amount": quantity * 250,
            "currency": "USD",
            "session_id": session_id,
            "event_time": self._now - late,
        }
        self.emit("orders", order["order_id"], order)
        self._decide(order)

    def _decide(self, order: dict[str, Any]) -> None:
        """The payment, shipment, SALE and scheduled RETURN the agents derive."""
        rng, expected = self.rng, self.expected
        order_id = order["order_id"]
        if rng.random() >= expected.p_payment:
            return
        declined = rng.random() < expected.decline_share
        methods = list(expected.methods)
        payment = {
            "payment_id": payment_id(order_id, 1),
            "order_id": order_id,
            "attempt": 1,
            "method": rng.choices(methods, [expected.methods[m] for m in methods])[0],
            "status": "DECLINED" if declined else "CAPTURED",
            "amount": order["amount"],
            "currency": "USD",
            "event_time": self._now,
        }
        self.emit("payments", order_id, payment)
        p_ship = expected.p_shipment / (expected.p_payment * (1 - expected.decline_share))
        if declined or rng.random() >= p_ship:
            return
        warehouse_id = rng.choice(WAREHOUSES)
        eta = START_MS - 3_600_000  # long ago: any return of it is due
        shipment = {
            "shipment_id": shipment_id(order_id),
            "order_id": order_id,
            "warehouse_id": warehouse_id,
            "carrier": "UPS",
            "eta": eta,
            "event_time": self._now,
        }
        self.emit("shipments", order_id, shipment)
        product_id, quantity = order["product_id"], order["quantity"]
        self._change(sale_change_id(order_id), product_id, warehouse_id, "SALE", -quantity, order_id)
        if rng.random() < expected.p_return:  # P_UPDATE_INVENTORY of the shipped orders, once, to their warehouse
            units = rng.randint(1, quantity)
            self._change(return_change_id(order_id), product_id, warehouse_id, "RETURN", units, order_id)

    def _change(
        self,
        change_id: str,
        product_id: int,
        warehouse_id: int,
        change_type: str,
        delta: int,
        source_id: str | None = None,
    ) -> None:
        change = {
            "change_id": change_id,
            "product_id": product_id,
            "sku": f"SKU-{product_id}",
            "warehouse_id": warehouse_id,
            "change_type": change_type,
            "delta": delta,
            "source_id": source_id,
            "event_time": self._now,
        }
        self.emit("inventory_changes", str(product_id), change)
        place = (product_id, warehouse_id)
        self.fold[place] = self.fold.get(place, 0) + delta

    def _background(self, bad: str | None) -> None:
        """A background RESTOCK or DAMAGE: a request to the stock agent, which writes it to inventory-changes.v1
        decided."""
        if bad is not None:
            self._bad("requests", bad)
            return
        rng = self.rng
        product_id, warehouse_id = rng.choice(PRODUCTS), rng.choice(WAREHOUSES)
        change_type = rng.choice(("RESTOCK", "DAMAGE"))
        delta = -rng.randint(1, 3) if change_type == "DAMAGE" else rng.randint(1, 20)
        self.emit("requests", str(product_id), b"{}", headers={KIND_HEADER: CHANGE.encode()})
        self._change(self._id(), product_id, warehouse_id, change_type, delta)

    def _interaction(self, late: int, bad: str | None) -> None:
        rng = self.rng
        if bad is not None:
            self.emit("customer_interactions", self._id(), b"\x01spoilt", headers={BAD_HEADER: bad.encode()})
            return
        if self._sessions and rng.random() < 0.7:
            session = self._sessions.pop(rng.randrange(len(self._sessions)))
        else:
            session = [self._id(), rng.choice(USERS), "landing", None]
        session_id, user_id, stage, product_id = session
        kind, term, following = "PAGE_VIEW", None, None
        draw = rng.random()
        if stage == "landing":
            following = "search" if draw < 0.7 else None
        elif stage == "search":
            kind, term, product_id = "SEARCH", "lamp", rng.choice(PRODUCTS)
            following = "view" if draw < 0.8 else None
        elif stage == "view":
            following = "cart" if draw < 0.35 else "search" if draw < 0.65 else None
        else:
            kind, following = "CART_ADD", "search" if draw < 0.25 else None
            self._carts.append((session_id, user_id, product_id))
        interaction = {
            "interaction_id": self._id(),
            "session_id": session_id,
            "user_id": user_id,
            "product_id": product_id if stage in ("view", "cart") else None,
            "interaction_type": kind,
            "search_term": term,
            "event_time": self._now - late,
        }
        self.emit("customer_interactions", session_id, interaction)
        if following is not None:
            self._sessions.append([session_id, user_id, following, product_id])

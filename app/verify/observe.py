"""What the records show, gathered in one pass per topic into plain data (counters, sets, dicts) for the checks.

The reader hands over every record of each topic up to the high watermarks it found when it started, and a decode
function; the collector decodes the good records of the five event topics (a record with the bad-record header is
counted by kind, never decoded) and keeps, per kind of event, what the checks compare: the facts of each first copy
of an id, a digest of each id's content (so a second copy that differs shows), the references to the reference
data, and running counts. The requests topic is read by its headers only (the generator's background changes go
there when the agents run, and some never reach inventory-changes.v1), the dead-letter topic by its headers.
"""

from __future__ import annotations

import hashlib
from collections import Counter
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, NamedTuple

from agents.requests import CHANGE, kind_of
from app.derivation import (
    payment_id,
    return_change_id,
    sale_change_id,
    shipment_id,
    validate_interaction,
    validate_order,
)
from app.inventory import validate_change
from app.verify.expectations import BACKGROUND, INTERACTIONS, Expectations
from app.verify.expectations import ORDERS as MIX_ORDERS
from app.verify.results import Problems
from app.wire.headers import (
    BAD_RECORD_HEADER,
    DLQ_HEADERS,
    DLQ_SOURCE_OFFSET_HEADER,
    DLQ_SOURCE_PARTITION_HEADER,
    DLQ_SOURCE_TOPIC_HEADER,
    DUPLICATE_HEADER,
)
from app.wire.roles import (
    CUSTOMER_INTERACTIONS,
    DEAD_LETTER,
    INVENTORY_CHANGES,
    ORDERS,
    PAYMENTS,
    REQUESTS,
    SHIPMENTS,
)
from schemas.symbols import CART_ADD, DAMAGE, PAGE_VIEW, RESTOCK, RETURN, SALE, SEARCH

#: The id field of each event topic's records.
ID_FIELDS = {
    ORDERS: "order_id",
    PAYMENTS: "payment_id",
    SHIPMENTS: "shipment_id",
    INVENTORY_CHANGES: "change_id",
    CUSTOMER_INTERACTIONS: "interaction_id",
}
#: The change id prefix of the opening balances (agents/fulfilment.py's OPENING_PREFIX).
OPENING_PREFIX = "opening-"
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MILLISECOND = timedelta(milliseconds=1)

#: A funnel step: what a session did last.
LANDING, SEARCHED, VIEWED, CARTED = "landing page view", "search", "product page view", "cart add"


@dataclass(frozen=True)
class Record:
    """One record as read from Kafka."""

    topic: str
    partition: int
    offset: int
    key: bytes | None
    value: bytes | None
    timestamp_ms: int
    headers: Mapping[str, bytes]


#: Decodes a record of a topic: its value, or None and why it could not be read.
Decode = Callable[[str, bytes | None], tuple[Mapping[str, Any] | None, str]]


class OrderFacts(NamedTuple):
    user_id: int
    product_id: int
    quantity: int
    amount: int
    currency: str
    unit_price: int = 0


class PaymentFacts(NamedTuple):
    order_id: str
    status: str
    method: str
    amount: int
    currency: str


class ShipmentFacts(NamedTuple):
    order_id: str
    warehouse_id: int
    eta_ms: int


class ChangeFacts(NamedTuple):
    source_id: str
    product_id: int
    warehouse_id: int
    delta: int


@dataclass
class DeadLetters:
    """The dead-letter topic: how many, which lack their headers, where they came from, of what kind."""

    count: int = 0
    headers_missing: Problems = field(default_factory=Problems)
    #: (topic, partition, offset) of each source record.
    sources: set[tuple[str, int, int]] = field(default_factory=set)
    #: By the source's bad-record kind ("none": a record the generator did not spoil).
    kinds: Counter[str] = field(default_factory=Counter)
    topics: Counter[str] = field(default_factory=Counter)


@dataclass
class Observations:
    """Everything the checks need, as plain data."""

    #: Records read per topic role.
    records: Counter[str] = field(default_factory=Counter)
    #: Generated events (bad ones included) per kind of the mix, and the bad ones by kind and by "role/kind".
    generated: Counter[str] = field(default_factory=Counter)
    bad_kinds: Counter[str] = field(default_factory=Counter)
    #: Second copies of generated records (the duplicate header), by topic role: left out of every other count.
    duplicates: Counter[str] = field(default_factory=Counter)
    bad_by_topic: Counter[str] = field(default_factory=Counter)
    #: Bad records on topics the agents consume, by (topic, partition, offset): each must be dead-lettered.
    bad_consumed: set[tuple[str, int, int]] = field(default_factory=set)
    #: Bad records where none may be: inventory-changes.v1 while the agents run (it is their ledger).
    bad_on_ledger: Problems = field(default_factory=Problems)
    #: Good records (no bad-record header) that do not decode or are no valid event, and how many were checked.
    unreadable: Problems = field(default_factory=Problems)
    decoded: Counter[str] = field(default_factory=Counter)
    #: Generated good events whose lateness shows (their record timestamp is their emission time).
    late_sample: int = 0
    late: int = 0
    late_below_median: int = 0
    late_delays_wrong: Problems = field(default_factory=Problems)
    #: Records not keyed as docs/events.md says, and derived ids that are not derived from their order.
    keys: Problems = field(default_factory=Problems)
    derived_ids: Problems = field(default_factory=Problems)
    orders: dict[str, OrderFacts] = field(default_factory=dict)
    quantities: Counter[str] = field(default_factory=Counter)
    #: (order_id, session_id, user_id, product_id) of the orders placed from a session.
    session_orders: list[tuple[str, str, int, int]] = field(default_factory=list)
    carts: set[tuple[str, int, int]] = field(default_factory=set)
    #: session_id -> (last step, its product_id, the session's user_id).
    sessions: dict[str, tuple[str, int | None, int]] = field(default_factory=dict)
    funnel: Problems = field(default_factory=Problems)
    funnel_steps: int = 0
    after_product_view: int = 0
    cart_after_product_view: int = 0
    payments: dict[str, PaymentFacts] = field(default_factory=dict)
    shipments: dict[str, ShipmentFacts] = field(default_factory=dict)
    #: By change id: SALEs and the agents' scheduled RETURNs.
    sales: dict[str, ChangeFacts] = field(default_factory=dict)
    returns: dict[str, ChangeFacts] = field(default_factory=dict)
    change_kinds: Counter[str] = field(default_factory=Counter)
    #: The generator's background changes (its ids), and those of another kind than RESTOCK or DAMAGE.
    background_changes: int = 0
    background_kinds: Problems = field(default_factory=Problems)
    #: The sum of the deltas per (product_id, warehouse_id), each change id once, and where it fell below zero.
    fold: dict[tuple[int, int], int] = field(default_factory=dict)
    below_zero: Problems = field(default_factory=Problems)
    users: set[int] = field(default_factory=set)
    products: set[int] = field(default_factory=set)
    skus: set[tuple[int, str]] = field(default_factory=set)
    warehouses: set[int] = field(default_factory=set)
    #: Per id field: id -> digest of (key, value); byte-identical copies counted, differing ones problems.
    contents: dict[str, dict[str, bytes]] = field(default_factory=dict)
    copies: Counter[str] = field(default_factory=Counter)
    conflicts: dict[str, Problems] = field(default_factory=dict)
    dead_letters: DeadLetters = field(default_factory=DeadLetters)
    #: The newest record timestamp per topic role (epoch ms).
    newest_ms: dict[str, int] = field(default_factory=dict)


def epoch_ms(value: datetime | int) -> int:
    """Epoch milliseconds of a decoded timestamp (an aware datetime, or already a number), exactly."""
    if isinstance(value, datetime):
        return (value - _EPOCH) // _MILLISECOND
    return int(value)


def is_generated_id(change_id: str) -> bool:
    """Whether an id is the generator's (a version-4 UUID); the agents derive version-5 ones."""
    return len(change_id) == 36 and change_id[14] == "4"


class Collector:
    """Reads records into ``observations``; the reader calls ``add`` for every record, in each partition's order."""

    def __init__(self, expected: Expectations, decode: Decode) -> None:
        self.observations = Observations()
        self._expected = expected
        self._decode = decode
        topics = expected.topics
        self._roles = {name: role for role, name in topics.items()}
        self._roles[expected.requests_topic] = REQUESTS
        self._handlers: dict[str, Callable[[Record, Mapping[str, Any]], None]] = {
            ORDERS: self._order,
            CUSTOMER_INTERACTIONS: self._interaction,
            PAYMENTS: self._payment,
            SHIPMENTS: self._shipment,
            INVENTORY_CHANGES: self._change,
        }
        #: Where a generated event of each event topic counts in the mix, and whether its lateness shows there.
        self._mix_kind = {ORDERS: MIX_ORDERS, CUSTOMER_INTERACTIONS: INTERACTIONS}
        if not expected.agents_enabled:  # background changes go straight to inventory-changes.v1, as drawn
            self._mix_kind[INVENTORY_CHANGES] = BACKGROUND
        #: Topics the agents consume: a bad record there must be dead-lettered.
        self._consumed = {topics[ORDERS], expected.requests_topic} if expected.agents_enabled else set()

    def add(self, record: Record) -> None:
        """Count and take in one record."""
        seen = self.observations
        role = self._roles[record.topic]
        seen.records[role] += 1
        seen.newest_ms[role] = max(seen.newest_ms.get(role, 0), record.timestamp_ms)
        if role == DEAD_LETTER:
            self._dead_letter(record)
            return
        if record.headers.get(DUPLICATE_HEADER) is not None:
            seen.duplicates[role] += 1
            return
        if role == REQUESTS:
            self._request(record)
            return
        mix_kind = self._mix_kind.get(role)
        if mix_kind is not None:
            seen.generated[mix_kind] += 1
        bad = record.headers.get(BAD_RECORD_HEADER)
        if bad is not None:
            self._bad(record, role, bad.decode(errors="replace"), counted=mix_kind is not None)
            return
        value, error = self._decode(record.topic, record.value)
        if value is None:
            seen.unreadable.add(f"{record.topic} undecodable", f"{_position(record)} {error}")
            return
        seen.decoded[role] += 1
        value = {name: epoch_ms(item) if isinstance(item, datetime) else item for name, item in value.items()}
        if not self._first_copy(record, role, value):
            return
        if mix_kind is not None:
            self._lateness(record, value)
        self._handlers[role](record, value)

    # ----- bad records, requests and dead letters

    def _bad(self, record: Record, role: str, kind: str, *, counted: bool) -> None:
        seen = self.observations
        seen.bad_by_topic[f"{role}/{kind}"] += 1
        if counted:
            seen.bad_kinds[kind] += 1
        if record.topic in self._consumed:
            seen.bad_consumed.add((record.topic, record.partition, record.offset))
        elif role == INVENTORY_CHANGES and self._expected.agents_enabled:
            seen.bad_on_ledger.add(f"bad record ({kind}) on {record.topic}", _position(record))

    def _request(self, record: Record) -> None:
        """A stock request: only the generator's background changes count (the mix, the bad records)."""
        if kind_of(record.headers) != CHANGE:
            return
        self.observations.generated[BACKGROUND] += 1
        bad = record.headers.get(BAD_RECORD_HEADER)
        if bad is not None:
            self._bad(record, REQUESTS, bad.decode(errors="replace"), counted=True)

    def _dead_letter(self, record: Record) -> None:
        letters = self.observations.dead_letters
        letters.count += 1
        headers = record.headers
        bad = headers.get(BAD_RECORD_HEADER)
        letters.kinds[bad.decode(errors="replace") if bad is not None else "none"] += 1
        missing = [name for name in DLQ_HEADERS if not headers.get(name)]
        if missing:
            letters.headers_missing.add(f"without {', '.join(missing)}", _position(record))
            return
        try:
            source = (
                headers[DLQ_SOURCE_TOPIC_HEADER].decode(),
                int(headers[DLQ_SOURCE_PARTITION_HEADER]),
                int(headers[DLQ_SOURCE_OFFSET_HEADER]),
            )
        except ValueError:
            letters.headers_missing.add("source partition or offset not a number", _position(record))
            return
        letters.sources.add(source)
        letters.topics[source[0]] += 1

    # ----- ids, lateness

    def _first_copy(self, record: Record, role: str, value: Mapping[str, Any]) -> bool:
        """Whether this is the first record of its id; a later copy is counted, and a problem if it differs."""
        seen = self.observations
        id_field = ID_FIELDS[role]
        record_id = str(value.get(id_field))
        content = hashlib.blake2b(
            len(record.key or b"").to_bytes(4, "big") + (record.key or b"") + (record.value or b""), digest_size=16
        ).digest()
        known = seen.contents.setdefault(id_field, {})
        first = known.setdefault(record_id, content)
        if first is content:
            return True
        if first == content:
            seen.copies[id_field] += 1
        else:
            seen.conflicts.setdefault(id_field, Problems()).add("ids with two contents", record_id)
        return False

    def _lateness(self, record: Record, value: Mapping[str, Any]) -> None:
        seen = self.observations
        seen.late_sample += 1
        delay = record.timestamp_ms - int(value["event_time"])
        if delay == 0:
            return
        seen.late += 1
        low, high = self._expected.late_range_ms
        if not low <= delay <= high:
            seen.late_delays_wrong.add(f"delay outside {low:,}-{high:,} ms", f"{_position(record)} {delay:,} ms")
        if delay < self._expected.late_median_ms:
            seen.late_below_median += 1

    # ----- the five event topics

    def _order(self, record: Record, value: Mapping[str, Any]) -> None:
        seen = self.observations
        order_id = str(value["order_id"])
        reason = validate_order(value)
        if reason is not None:
            seen.unreadable.add(f"{record.topic} invalid order", f"{order_id}: {reason}")
            return
        if record.key != order_id.encode():
            seen.keys.add(f"{record.topic}: key is not the order_id", order_id)
        quantity = int(value["quantity"])
        seen.orders[order_id] = OrderFacts(
            int(value["user_id"]),
            int(value["product_id"]),
            quantity,
            int(value["amount"]),
            str(value["currency"]),
            int(value["unit_price"]),
        )
        seen.quantities[str(quantity)] += 1
        seen.users.add(int(value["user_id"]))
        seen.skus.add((int(value["product_id"]), str(value["sku"])))
        if value.get("session_id") is not None:
            seen.session_orders.append(
                (order_id, str(value["session_id"]), int(value["user_id"]), int(value["product_id"]))
            )

    def _interaction(self, record: Record, value: Mapping[str, Any]) -> None:
        seen = self.observations
        reason = validate_interaction(value)
        if reason is not None:
            seen.unreadable.add(f"{record.topic} invalid interaction", f"{value.get('interaction_id')}: {reason}")
            return
        session_id, user_id = str(value["session_id"]), int(value["user_id"])
        product_id = value.get("product_id")
        if record.key != session_id.encode():
            seen.keys.add(f"{record.topic}: key is not the session_id", value["interaction_id"])
        seen.users.add(user_id)
        if product_id is not None:
            seen.products.add(int(product_id))
        step = _step(str(value["interaction_type"]), product_id)
        previous = seen.sessions.get(session_id)
        seen.funnel_steps += 1
        problem = _funnel_problem(previous, step, value, user_id)
        if problem:
            seen.funnel.add(problem, session_id)
        if previous is not None and previous[0] == VIEWED:
            seen.after_product_view += 1
            if step == CARTED:
                seen.cart_after_product_view += 1
        if step == CARTED and product_id is not None:
            seen.carts.add((session_id, user_id, int(product_id)))
        seen.sessions[session_id] = (step, product_id, user_id)

    def _payment(self, record: Record, value: Mapping[str, Any]) -> None:
        seen = self.observations
        order_id, attempt = str(value["order_id"]), int(value["attempt"])
        if record.key != order_id.encode():
            seen.keys.add(f"{record.topic}: key is not the order_id", value["payment_id"])
        if value["payment_id"] != payment_id(order_id, attempt):
            seen.derived_ids.add("payment_id not derived from its order_id and attempt", value["payment_id"])
        seen.payments[str(value["payment_id"])] = PaymentFacts(
            order_id, str(value["status"]), str(value["method"]), int(value["amount"]), str(value["currency"])
        )

    def _shipment(self, record: Record, value: Mapping[str, Any]) -> None:
        seen = self.observations
        order_id = str(value["order_id"])
        if record.key != order_id.encode():
            seen.keys.add(f"{record.topic}: key is not the order_id", value["shipment_id"])
        if value["shipment_id"] != shipment_id(order_id):
            seen.derived_ids.add("shipment_id not derived from its order_id", value["shipment_id"])
        warehouse_id = int(value["warehouse_id"])
        seen.warehouses.add(warehouse_id)
        seen.shipments[str(value["shipment_id"])] = ShipmentFacts(order_id, warehouse_id, int(value["eta"]))

    def _change(self, record: Record, value: Mapping[str, Any]) -> None:
        seen = self.observations
        change_id = str(value["change_id"])
        reason = validate_change(value)
        if reason is not None:
            seen.unreadable.add(f"{record.topic} invalid change", f"{change_id}: {reason}")
            return
        product_id, warehouse_id, delta = int(value["product_id"]), int(value["warehouse_id"]), int(value["delta"])
        if record.key != str(product_id).encode():
            seen.keys.add(f"{record.topic}: key is not the product_id", change_id)
        seen.skus.add((product_id, str(value["sku"])))
        seen.warehouses.add(warehouse_id)
        self._classify(change_id, str(value["change_type"]), value.get("source_id"), product_id, warehouse_id, delta)
        place = (product_id, warehouse_id)
        stock = seen.fold[place] = seen.fold.get(place, 0) + delta
        if stock < 0 and self._expected.agents_enabled:
            seen.below_zero.add("stock below zero", f"product {product_id} warehouse {warehouse_id} at {change_id}")

    def _classify(
        self, change_id: str, change_type: str, source_id: object, product_id: int, warehouse_id: int, delta: int
    ) -> None:
        """Which kind of change: a SALE, a scheduled RETURN, an opening balance, a reorder, or the generator's."""
        seen = self.observations
        facts = ChangeFacts(str(source_id), product_id, warehouse_id, delta)
        if change_type == SALE:
            seen.change_kinds[SALE] += 1
            seen.sales[change_id] = facts
            if source_id is None or change_id != sale_change_id(str(source_id)):
                seen.derived_ids.add("SALE change_id not derived from its order (source_id)", change_id)
        elif change_id.startswith(OPENING_PREFIX):
            seen.change_kinds["opening RESTOCK"] += 1
        elif change_type == RETURN and source_id is not None and change_id == return_change_id(str(source_id)):
            seen.change_kinds["scheduled RETURN"] += 1
            seen.returns[change_id] = facts
        elif not is_generated_id(change_id):
            seen.change_kinds[f"reorder {change_type}"] += 1
        else:
            seen.change_kinds[f"background {change_type}"] += 1
            seen.background_changes += 1
            if change_type not in (RESTOCK, DAMAGE):
                seen.background_kinds.add(f"background {change_type}", change_id)


def _position(record: Record) -> str:
    return f"{record.topic}/{record.partition}@{record.offset}"


def _step(interaction_type: str, product_id: object) -> str:
    if interaction_type == SEARCH:
        return SEARCHED
    if interaction_type == CART_ADD:
        return CARTED
    return VIEWED if interaction_type == PAGE_VIEW and product_id is not None else LANDING


#: The steps each step may follow (None: the session's first).
_FOLLOWS: dict[str, tuple[str | None, ...]] = {
    LANDING: (None,),
    SEARCHED: (LANDING, VIEWED, CARTED),
    VIEWED: (SEARCHED,),
    CARTED: (VIEWED,),
}


def _funnel_problem(
    previous: tuple[str, int | None, int] | None, step: str, value: Mapping[str, Any], user_id: int
) -> str:
    """What breaks the funnel at this step ('' when nothing does)."""
    last = previous[0] if previous is not None else None
    if last not in _FOLLOWS[step]:
        return f"{step} after {last or 'nothing (a session must start with a landing page view)'}"
    if previous is not None and previous[2] != user_id:
        return "a session with two users"
    if step == SEARCHED and not value.get("search_term"):
        return "search without a term"
    if step == CARTED and previous is not None and previous[1] != value.get("product_id"):
        return "cart add of another product than the page viewed"
    return ""

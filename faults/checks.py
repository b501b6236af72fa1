"""What must hold after any fault, judged from the topics (read to their high watermarks) and Postgres alone.

Each check counts what it finds wrong instead of stopping at the first: the fault suite reports the counts, and its
tests assert them zero.

- decided: every good order has exactly the payment the pure functions decide for it (none lost, none extra, none
  decided differently), and every shipped order exactly one shipment and one SALE, from the shipping warehouse, of
  the ordered quantity; shipments only for accepted payments.
- copies: every id seen twice on a topic (a redelivery) has byte-identical copies, key and value.
- ledger: the inventory changes (each id once) fold without clamping; the fold equals the stock table's changelog
  (kafka mode), the Postgres rows (the mirror, or the canonical rows) and the listing.
- dead letters: exactly the deliberately bad records are dead-lettered, none good.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from app.derivation import DerivationConfig, Stage, decide_payment, rng_for
from app.inventory import fold
from app.settings import Settings
from app.wire.headers import (
    BAD_RECORD_HEADER,
    DLQ_SOURCE_OFFSET_HEADER,
    DLQ_SOURCE_PARTITION_HEADER,
    DLQ_SOURCE_TOPIC_HEADER,
)
from app.wire.roles import DEAD_LETTER, INVENTORY_CHANGES, ORDERS, PAYMENTS, REQUESTS, SHIPMENTS
from schemas.symbols import DECLINED, SALE
from tests.stock_support import differences
from tests.support import ReadRecord, foldable_changes

#: Which field is each derived topic's id.
IDS = {PAYMENTS: "payment_id", SHIPMENTS: "shipment_id", INVENTORY_CHANGES: "change_id"}

Stock = Mapping[tuple[int, int], int]


@dataclass
class Verdict:
    """What the checks found: ``lost`` and ``doubled`` are derived events missing or decided twice (or differently)."""

    orders: int = 0
    payments: int = 0
    shipments: int = 0
    lost: int = 0
    doubled: int = 0
    ledger_mismatches: int = 0
    clamped_units: int = 0
    dead_letters_wrong: int = 0
    problems: list[str] = field(default_factory=list)

    def note(self, kind: str, count: int, example: object) -> None:
        if count:
            self.problems.append(f"{kind}: {count} (e.g. {example})")

    @property
    def ok(self) -> bool:
        return not (
            self.lost
            or self.doubled
            or self.ledger_mismatches
            or self.clamped_units
            or self.dead_letters_wrong
            or self.problems
        )


def millis(value: Mapping[str, Any]) -> dict[str, Any]:
    return {key: int(item.timestamp() * 1000) if isinstance(item, datetime) else item for key, item in value.items()}


def good_orders(records: Iterable[ReadRecord]) -> dict[str, dict]:
    return {
        record.value["order_id"]: record.value
        for record in records
        if BAD_RECORD_HEADER not in record.headers and record.value is not None
    }


def distinct(records: Iterable[ReadRecord], role: str) -> dict[str, dict]:
    """The good records of ``role`` by id, first copy first."""
    found: dict[str, dict] = {}
    for record in sorted(records, key=lambda record: (record.partition, record.offset)):
        if record.value is not None and BAD_RECORD_HEADER not in record.headers:
            found.setdefault(record.value[IDS[role]], record.value)
    return found


def distinct_changes(records: Iterable[ReadRecord]) -> list[dict]:
    """The inventory changes, each id once (its first copy), in the topic's order."""
    seen: set[str] = set()
    changes = []
    for change in foldable_changes(list(records)):
        if change["change_id"] not in seen:
            seen.add(change["change_id"])
            changes.append(change)
    return changes


def ledger_sums(changes: Iterable[Mapping[str, Any]]) -> dict[tuple[int, int], int]:
    """The sum of the deltas per (product, warehouse)."""
    sums: dict[tuple[int, int], int] = defaultdict(int)
    for change in changes:
        sums[(change["product_id"], change["warehouse_id"])] += change["delta"]
    return dict(sums)


def judge(
    settings: Settings,
    records: Mapping[str, list[ReadRecord]],
    stocks: Mapping[str, Stock],
) -> Verdict:
    """The verdict on one run: ``records`` by role (orders, payments, shipments, inventory_changes, dead_letter and
    requests), ``stocks`` the stock as each other holder shows it (changelog, postgres, listing) by name."""
    verdict = Verdict()
    orders = good_orders(records[ORDERS])
    verdict.orders = len(orders)
    _judge_payments(settings, orders, records, verdict)
    _judge_shipments(orders, records, verdict)
    _judge_copies(records, verdict)
    _judge_ledger(records, stocks, verdict)
    _judge_dead_letters(records, verdict)
    return verdict


def _judge_payments(
    settings: Settings, orders: Mapping[str, dict], records: Mapping[str, list[ReadRecord]], verdict: Verdict
) -> None:
    config = DerivationConfig.from_settings(settings, lead_time_scale=settings.lead_time_scale)
    expected = {}
    for order_id, order in orders.items():
        payment = decide_payment(millis(order), config, rng_for(config.seed, order_id, Stage.PAYMENT))
        if payment is not None:
            expected[payment["payment_id"]] = (order_id, payment["status"], payment["amount"], payment["method"])
    found = {
        payment_id: (payment["order_id"], payment["status"], payment["amount"], payment["method"])
        for payment_id, payment in distinct(records[PAYMENTS], PAYMENTS).items()
    }
    verdict.payments = len(found)
    missing = sorted(set(expected) - set(found))
    extra = sorted(set(found) - set(expected))
    different = sorted(key for key in set(found) & set(expected) if found[key] != expected[key])
    verdict.lost += len(missing)
    verdict.doubled += len(extra) + len(different)
    verdict.note("payments missing", len(missing), missing[:1])
    verdict.note("payments not decided for any order", len(extra), extra[:1])
    verdict.note("payments decided differently", len(different), different[:1])


def _judge_shipments(orders: Mapping[str, dict], records: Mapping[str, list[ReadRecord]], verdict: Verdict) -> None:
    payments = distinct(records[PAYMENTS], PAYMENTS)
    accepted = {payment["order_id"] for payment in payments.values() if payment["status"] != DECLINED}
    shipments = distinct(records[SHIPMENTS], SHIPMENTS)
    verdict.shipments = len(shipments)
    per_order: dict[str, list[dict]] = defaultdict(list)
    for shipment in shipments.values():
        per_order[shipment["order_id"]].append(shipment)
    twice = [order_id for order_id, found in per_order.items() if len(found) > 1]
    unpaid = [order_id for order_id in per_order if order_id not in accepted]
    sales: dict[str, list[dict]] = defaultdict(list)
    for change in distinct_changes(records[INVENTORY_CHANGES]):
        if change["change_type"] == SALE:
            sales[change["source_id"]].append(change)
    without_sale = [order_id for order_id in per_order if order_id not in sales]
    sale_without_shipment = [order_id for order_id in sales if order_id not in per_order]
    sold_twice = [order_id for order_id, found in sales.items() if len(found) > 1]
    wrong_sale = [
        order_id
        for order_id, found in per_order.items()
        if order_id in sales
        and (
            sales[order_id][0]["warehouse_id"] != found[0]["warehouse_id"]
            or -sales[order_id][0]["delta"] != orders.get(order_id, {}).get("quantity")
        )
    ]
    verdict.lost += len(without_sale) + len(sale_without_shipment)
    verdict.doubled += len(twice) + len(unpaid) + len(sold_twice) + len(wrong_sale)
    verdict.note("orders shipped twice", len(twice), twice[:1])
    verdict.note("shipments of orders without an accepted payment", len(unpaid), unpaid[:1])
    verdict.note("shipments without their SALE", len(without_sale), without_sale[:1])
    verdict.note("SALEs without their shipment", len(sale_without_shipment), sale_without_shipment[:1])
    verdict.note("orders sold twice", len(sold_twice), sold_twice[:1])
    verdict.note("SALEs from another warehouse or of another quantity", len(wrong_sale), wrong_sale[:1])


def _judge_copies(records: Mapping[str, list[ReadRecord]], verdict: Verdict) -> None:
    for role, id_field in IDS.items():
        first: dict[str, tuple[bytes | None, bytes]] = {}
        differing = []
        for record in records[role]:
            if record.value is None:
                continue
            key = record.value[id_field]
            if first.setdefault(key, (record.key, record.raw)) != (record.key, record.raw):
                differing.append(key)
        verdict.doubled += len(differing)
        verdict.note(f"{role} ids with copies that differ", len(differing), differing[:1])


def _judge_ledger(records: Mapping[str, list[ReadRecord]], stocks: Mapping[str, Stock], verdict: Verdict) -> None:
    changes = distinct_changes(records[INVENTORY_CHANGES])
    sums = ledger_sums(changes)
    verdict.clamped_units = sum(state.clamped_units for state in fold(changes).values())
    verdict.note("units clamped in the fold", verdict.clamped_units, "")
    negative = [key for key, units in sums.items() if units < 0]
    verdict.ledger_mismatches += len(negative)
    verdict.note("stock below zero on the topic", len(negative), negative[:1])
    for name, stock in stocks.items():
        wrong = differences(stock, sums, default=0)
        verdict.ledger_mismatches += len(wrong)
        verdict.note(f"{name} differs from the fold of the topic", len(wrong), next(iter(wrong.items()), ""))


def _judge_dead_letters(records: Mapping[str, list[ReadRecord]], verdict: Verdict) -> None:
    bad = {
        (record.topic, record.partition, record.offset)
        for role in (ORDERS, REQUESTS)
        for record in records[role]
        if BAD_RECORD_HEADER in record.headers
    }
    sources = {
        (
            letter.headers[DLQ_SOURCE_TOPIC_HEADER].decode(),
            int(letter.headers[DLQ_SOURCE_PARTITION_HEADER]),
            int(letter.headers[DLQ_SOURCE_OFFSET_HEADER]),
        )
        for letter in records[DEAD_LETTER]
        if DLQ_SOURCE_TOPIC_HEADER in letter.headers
    }
    good_dead = sorted(sources - bad)
    bad_kept = sorted(bad - sources)
    verdict.dead_letters_wrong = len(good_dead) + len(bad_kept)
    verdict.note("good records dead-lettered", len(good_dead), good_dead[:1])
    verdict.note("bad records not dead-lettered", len(bad_kept), bad_kept[:1])

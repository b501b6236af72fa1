"""The checks: each promise of the docs as one or more results, from what the records, Postgres and the worker show.

Every check takes the evidence (plain data) and returns its results; ``CHECKS`` lists them in the order they print.
Share checks are judged with ``app.verify.shares`` (z standard errors); exact checks count what is wrong. A check
the deployment cannot show (the agents off, a view not reachable, a sample too small) is skipped with its reason.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime

from app.truth import MinuteCounts
from app.verify import relations
from app.verify.expectations import Expectations
from app.verify.observe import Observations
from app.verify.relations import OnHand
from app.verify.results import CheckResult, Problems, exact, skipped
from app.verify.shares import share_check, shares_check
from app.wire.roles import INVENTORY_CHANGES, ORDERS
from schemas.symbols import DECLINED

#: How long after the newest inventory change the mirror may still be writing it (it writes once a second).
SETTLE_MS = 5_000


@dataclass(frozen=True)
class Reference:
    """What Postgres holds of what the events refer to: of the ids referenced, those a row holds."""

    users: frozenset[int]
    #: product_id -> its SKU.
    products: dict[int, str]
    warehouses: frozenset[int]
    #: product_id -> its unit cost in cents (products.cost_cents): what an order's margin is taken against.
    costs: dict[int, int] = field(default_factory=dict)


@dataclass(frozen=True)
class Stock:
    """The stock as each other holder shows it, read just after the topics' high watermarks were taken.

    ``None`` where a holder was not read, with the reason; ``moving`` says why the stock may have changed while it was
    read ('' when it was still).
    """

    postgres: OnHand | None
    postgres_reason: str
    #: Products whose ``inventory`` row is not the sum of their ``warehouse_inventory`` rows, described, and how
    #: many ``inventory`` rows there are.
    totals_wrong: list[str] | None
    inventory_rows: int
    worker: OnHand | None
    worker_reason: str
    moving: str = ""


@dataclass(frozen=True)
class Evidence:
    """Everything the checks judge."""

    seen: Observations
    reference: Reference
    stock: Stock
    expected: Expectations
    #: When the topics' high watermarks were taken (epoch ms).
    started_ms: int
    #: The truth topic's latest record per (shard, minute): counts and whether complete; None when not read.
    truth: dict[tuple[str, int], tuple[MinuteCounts, bool]] | None = None
    #: The same counts made from the generated topics, read after the truth topic.
    recount: dict[tuple[str, int], MinuteCounts] = field(default_factory=dict)
    #: Why the truth topic was not read.
    truth_reason: str = ""


Check = Callable[[Evidence], list[CheckResult]]


def mix(evidence: Evidence) -> list[CheckResult]:
    """Orders : interactions : background changes as WEIGHT_ORDERS : WEIGHT_INTERACTIONS : WEIGHT_INVENTORY_CHG."""
    expected = evidence.expected
    return shares_check("mix", evidence.seen.generated, expected.mix, "generated events", expected.z)


def bad_records(evidence: Evidence) -> list[CheckResult]:
    """P_BAD_RECORD of the generated records carry the bad-record header, each kind equally likely."""
    seen, expected = evidence.seen, evidence.expected
    bad, generated = sum(seen.bad_kinds.values()), sum(seen.generated.values())
    kinds = dict.fromkeys(expected.bad_kinds, 1.0)
    return [
        share_check("bad_records.share", bad, generated, expected.p_bad_record, "generated events bad", expected.z),
        *shares_check("bad_records.kind", seen.bad_kinds, kinds, "bad records", expected.z),
    ]


def duplicates(evidence: Evidence) -> list[CheckResult]:
    """P_DUPLICATE of the generated records are sent a second time (the copy with the duplicate header)."""
    seen, expected = evidence.seen, evidence.expected
    copies, generated = sum(seen.duplicates.values()), sum(seen.generated.values())
    what = "generated events sent twice"
    return [share_check("duplicates.share", copies, generated, expected.p_duplicate, what, expected.z)]


def late_events(evidence: Evidence) -> list[CheckResult]:
    """P_LATE_EVENT of the events are late, by 1 s to 10 min, half of them by less than the median delay."""
    seen, expected = evidence.seen, evidence.expected
    low, high = expected.late_range_ms
    median_s = expected.late_median_ms / 1000
    return [
        share_check("late.share", seen.late, seen.late_sample, expected.p_late_event, "events late", expected.z),
        exact("late.delays", seen.late_delays_wrong, seen.late, f"late events, delays {low:,}-{high:,} ms"),
        share_check("late.median", seen.late_below_median, seen.late, 0.5, f"late by < {median_s:g} s", expected.z),
    ]


def records(evidence: Evidence) -> list[CheckResult]:
    """Every good record decodes and is a valid event, keyed as docs/events.md says, with its derived ids."""
    seen = evidence.seen
    checked = sum(seen.decoded.values()) + seen.unreadable.total
    derived = len(seen.payments) + len(seen.shipments) + len(seen.sales)
    return [
        exact("records.readable", seen.unreadable, checked, "good records on the event topics"),
        exact("records.keys", seen.keys, sum(seen.decoded.values()), "decoded records"),
        exact("records.derived_ids", seen.derived_ids, derived, "payments, shipments and SALEs"),
    ]


def orders(evidence: Evidence) -> list[CheckResult]:
    """1 to 5 units (62% one), orders placed from a session follow its cart add, and no order sells below cost."""
    seen, expected = evidence.seen, evidence.expected
    placed = relations.orders_from_carts(seen.session_orders, seen.carts)
    below, margins, costed = relations.margins(seen.orders, evidence.reference.costs)
    shown = ", ".join(f"{cents / 100:,.2f} {currency}" for currency, cents in sorted(margins.items())) or "none"
    return [
        *shares_check("orders.quantity", seen.quantities, expected.quantity, "orders", expected.z),
        exact("orders.from_carts", placed, len(seen.session_orders), "orders placed from a session"),
        exact("orders.margin", below, costed, f"orders at or above their product's cost (margin {shown})"),
    ]


def sessions(evidence: Evidence) -> list[CheckResult]:
    """The funnel's order of steps; after a product page, cart adds and searches in the ratio of their chances."""
    seen, expected = evidence.seen, evidence.expected
    return [
        exact("sessions.funnel", seen.funnel, seen.funnel_steps, f"interactions in {len(seen.sessions):,} sessions"),
        share_check(
            "sessions.cart_after_product_view",
            seen.cart_after_product_view,
            seen.after_product_view,
            expected.p_cart_after_product_view,
            "steps after a product page that are cart adds",
            expected.z,
        ),
    ]


def payments(evidence: Evidence) -> list[CheckResult]:
    """P_ORDER_HAS_PAYMENT of the orders are paid, the decline share, the methods; payments only of orders."""
    seen, expected = evidence.seen, evidence.expected
    if not expected.agents_enabled:
        return [skipped("payments", "AGENTS_ENABLED=false: no agent derives payments")]
    paid = {payment.order_id for payment in seen.payments.values()} & seen.orders.keys()
    declined = sum(payment.status == DECLINED for payment in seen.payments.values())
    methods = Counter(payment.method for payment in seen.payments.values())
    z = expected.z
    return [
        share_check("payments.share", len(paid), len(seen.orders), expected.p_payment, "orders paid", z),
        share_check("payments.declined", declined, len(seen.payments), expected.decline_share, "payments DECLINED", z),
        *shares_check("payments.method", methods, expected.methods, "payments", z),
        exact(
            "payments.for_orders",
            relations.payments_for_orders(seen.orders, seen.payments),
            len(seen.payments),
            "payments",
        ),
    ]


def shipments(evidence: Evidence) -> list[CheckResult]:
    """P_ORDER_HAS_SHIPMENT of the orders ship; only orders with an accepted payment, each with its SALE."""
    seen, expected = evidence.seen, evidence.expected
    if not expected.agents_enabled:
        return [skipped("shipments", "AGENTS_ENABLED=false: no agent derives shipments")]
    shipped = {shipment.order_id for shipment in seen.shipments.values()} & seen.orders.keys()
    found = relations.shipments_for_accepted(seen.orders, seen.payments, seen.shipments, seen.sales)
    return [
        share_check(
            "shipments.share", len(shipped), len(seen.orders), expected.p_shipment, "orders shipped", expected.z
        ),
        exact("shipments.for_accepted", found, len(seen.shipments), "shipments"),
    ]


def inventory_changes(evidence: Evidence) -> list[CheckResult]:
    """The generator's background changes are RESTOCKs and DAMAGEs only; SALEs only of shipped orders; RETURNs only
    of shipped orders, P_UPDATE_INVENTORY of them."""
    seen, expected = evidence.seen, evidence.expected
    z = expected.z
    background = exact(
        "changes.background_kinds",
        seen.background_kinds,
        seen.background_changes,
        "background changes, RESTOCK and DAMAGE only",
    )
    if not expected.agents_enabled:
        return [background, skipped("changes", "AGENTS_ENABLED=false: no SALE or RETURN is derived")]
    until_ms = seen.newest_ms.get(INVENTORY_CHANGES, 0) - SETTLE_MS
    hits, due = relations.returns_due(seen.shipments, seen.returns, expected.return_window_ms, until_ms)
    sales = relations.sales_for_shipments(seen.orders, seen.shipments, seen.sales)
    returns = relations.returns_for_orders(seen.orders, seen.shipments, seen.returns)
    kinds = ", ".join(f"{kind} {count:,}" for kind, count in sorted(seen.change_kinds.items())) or "none"
    return [
        background,
        exact("changes.sales", sales, len(seen.sales), f"SALEs (changes by kind: {kinds})"),
        exact("changes.returns", returns, len(seen.returns), "RETURNs of an order"),
        share_check("changes.returned_share", hits, due, expected.p_return, "shipped orders due back returned", z),
    ]


def references(evidence: Evidence) -> list[CheckResult]:
    """Every user_id, product_id, sku and warehouse_id of the events names a Postgres row."""
    seen, known = evidence.seen, evidence.reference
    products = {*seen.products, *(product_id for product_id, _ in seen.skus)}
    return [
        exact("references.user_id", relations.missing(seen.users, known.users, "user_id"), len(seen.users), "user ids"),
        exact(
            "references.product_id",
            relations.product_problems(seen.products, seen.skus, known.products),
            len(products),
            f"product ids, {len(seen.skus):,} (product_id, sku) pairs",
        ),
        exact(
            "references.warehouse_id",
            relations.missing(seen.warehouses, known.warehouses, "warehouse_id"),
            len(seen.warehouses),
            "warehouse ids",
        ),
    ]


def ids(evidence: Evidence) -> list[CheckResult]:
    """No id has two different contents; byte-identical copies (redeliveries after a crash) are counted only."""
    seen = evidence.seen
    results = []
    for id_field in ("order_id", "payment_id", "shipment_id", "change_id", "interaction_id"):
        distinct = len(seen.contents.get(id_field, {}))
        copies = seen.copies[id_field]
        what = f"distinct ids, {copies:,} byte-identical copies"
        results.append(exact(f"ids.{id_field}", seen.conflicts.get(id_field, Problems()), distinct, what))
    return results


def stock(evidence: Evidence) -> list[CheckResult]:
    """The fold of inventory-changes.v1 never goes below zero and equals Postgres and the worker's table."""
    seen, expected, held = evidence.seen, evidence.expected, evidence.stock
    if not expected.agents_enabled:
        return [skipped("stock", "AGENTS_ENABLED=false: inventory-changes.v1 holds undecided changes, no ledger")]
    places = len(seen.fold)
    results = [exact("stock.never_below_zero", seen.below_zero, places, "(product, warehouse) pairs on the topic")]
    results.append(
        _holder("stock.postgres", "warehouse_inventory", seen.fold, held.postgres, held.postgres_reason, held.moving)
    )
    results.append(
        _holder("stock.worker", "the worker's stock table", seen.fold, held.worker, held.worker_reason, held.moving)
    )
    if held.totals_wrong is None:
        results.append(skipped("stock.totals", held.postgres_reason))
    else:
        totals = Problems()
        for described in held.totals_wrong:
            totals.add("inventory row is not the sum of its warehouse_inventory rows", described)
        results.append(exact("stock.totals", totals, held.inventory_rows, "inventory rows against warehouse_inventory"))
    return results


def _holder(name: str, holder: str, fold: OnHand, other: OnHand | None, reason: str, moving: str) -> CheckResult:
    if other is None:
        return skipped(name, reason)
    wrong = relations.stock_differences(fold, other, holder)
    if wrong.total and moving:
        return skipped(name, f"{wrong.total:,} differences, but {moving}: verify a quiet deployment to judge")
    return exact(name, wrong, len(set(fold) | set(other)), f"(product, warehouse) pairs of {holder}")


def dead_letters(evidence: Evidence) -> list[CheckResult]:
    """Every dead letter says where it came from and why; every bad record the agents consume is dead-lettered, and
    bad records elsewhere stay where they are (none on the ledger)."""
    seen, expected = evidence.seen, evidence.expected
    letters = seen.dead_letters
    consumed = {expected.topics[ORDERS], expected.requests_topic}
    routing = relations.dead_letter_routing(
        seen.bad_consumed, letters.sources, consumed if expected.agents_enabled else set()
    )
    routing.merge(seen.bad_on_ledger)
    kinds = ", ".join(f"{kind} {count:,}" for kind, count in sorted(letters.kinds.items())) or "none"
    on_topics = ", ".join(f"{where} {count:,}" for where, count in sorted(seen.bad_by_topic.items())) or "none"
    return [
        exact("dead_letters.headers", letters.headers_missing, letters.count, "dead letters"),
        exact(
            "dead_letters.routing",
            routing,
            sum(seen.bad_by_topic.values()),
            f"bad records (by topic/kind: {on_topics}); dead letters by kind: {kinds}",
        ),
    ]


#: Every check, in the order the results print.
CHECKS: tuple[Check, ...] = (
    mix,
    bad_records,
    duplicates,
    late_events,
    records,
    orders,
    sessions,
    payments,
    shipments,
    inventory_changes,
    references,
    ids,
    stock,
    dead_letters,
)


def truth(evidence: Evidence) -> list[CheckResult]:
    """Every (shard or agent source, minute) the truth topic tells equals a count of the topics made after it was
    read; every one counted has its truth, but for each shard's or source's minutes after its last published one
    (open)."""
    name = "truth.equals_recount"
    told = evidence.truth
    if told is None:
        return [skipped(name, evidence.truth_reason)]
    problems, open_minutes = compare_truth(told, evidence.recount)
    complete = sum(1 for _, done in told.values() if done)
    what = (
        f"(shard or source, minute) truth records ({complete} complete); {open_minutes} minute(s) still open"
        " (not yet published)"
    )
    return [exact(name, problems, len(told), what)]


def compare_truth(
    told: dict[tuple[str, int], tuple[MinuteCounts, bool]], counted: dict[tuple[str, int], MinuteCounts]
) -> tuple[Problems, int]:
    """What is wrong between the truth topic's latest records (``told``) and a later count of the topics
    (``counted``), both per (shard or agent source, minute), and how many counted minutes are still open: after
    their shard's or source's last published minute."""
    problems = Problems()
    for (who, minute), (counts, _) in sorted(told.items()):
        found = counted.get((who, minute), MinuteCounts()).comparable()
        if counts.comparable() != found:
            problems.add(
                "differ from a recount",
                f"{_who(who)} at {_minute(minute)}: told {counts.comparable()}, counted {found}",
            )
    last: dict[str, int] = {}
    for who, minute in told:
        last[who] = max(last.get(who, minute), minute)
    open_minutes = 0
    for who, minute in sorted(counted):
        if (who, minute) in told:
            continue
        if who not in last or minute > last[who]:
            open_minutes += 1
        else:
            problems.add("minute without truth", f"{_who(who)} at {_minute(minute)}")
    return problems, open_minutes


def _who(who: str) -> str:
    return f"shard {who}" if str(who).isdigit() else f"source {who}"


def _minute(minute_ms: int) -> str:
    return datetime.fromtimestamp(minute_ms / 1000, UTC).strftime("%Y-%m-%dT%H:%MZ")


#: Checks of the truth topic (exact counts per generating shard and minute).
TRUTH_CHECKS: list[Check] = [truth]


def evaluate(evidence: Evidence) -> list[CheckResult]:
    """Every result of every check."""
    return [result for check in (*CHECKS, *TRUTH_CHECKS) for result in check(evidence)]

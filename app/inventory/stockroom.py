"""The stockroom, pure: one product's stock and what each request does to it, decided against the stock it holds.

Every change that reaches the inventory-changes topic is decided here first, so the topic is a faithful ledger:
summing its deltas per (warehouse, product) gives the stock, and nothing is ever clamped.

- An order is decided with ``decide_shipment`` against the units available now. A shipped order's SALE takes
  them at once (they were available, so nothing is clamped). An order that no warehouse can serve waits in the
  product's backlog, first come first served, and reorders from the primary supplier unless a restock is on its
  way; it is cancelled if it waits longer than ``backorder_timeout_ms``.
- A background change from the generator (RESTOCK or DAMAGE): units coming in are added, a DAMAGE takes at most
  the units available (none: it is dropped and counted) and goes out with the delta that was taken.
- A scheduled change (a return or a reorder) falls due: it is applied and goes out, and the backlog is served.
  A reorder's supplier may deliver late or short (``restock_change``); a short RESTOCK still settles the whole
  ordered quantity on order, and the warehouse checks its reorder point again, as the stock planned for is missing.

The edge keeps the state, the backlog and the schedule durable and sends ``Outcome.records``; this module only
decides. Requests are deduplicated by the edge (offset watermarks, see ``ProductStock``).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from app.derivation import (
    DerivationConfig,
    Fulfilment,
    ShipmentDecision,
    Stage,
    Warehouse,
    decide_return,
    decide_shipment,
    restock_change,
    restock_change_id,
    restock_needed,
    rng_for,
)
from app.inventory.changes import DELTA_SIGN, read_change
from app.inventory.state import StockState, WarehouseStock
from app.wire.roles import INVENTORY_CHANGES, SHIPMENTS
from schemas.symbols import RESTOCK

#: Kinds of scheduled items.
CHANGE_DUE = "change"
BACKORDER_EXPIRY = "expiry"


@dataclass(frozen=True)
class Policy:
    """A product's reorder rule at one warehouse and its primary supplier's lead time and reliability."""

    reorder_point: int
    reorder_qty: int
    lead_time_days: int
    #: Share of the supplier's deliveries complete and on time (suppliers.reliability); 1.0: always.
    reliability: float


@dataclass(frozen=True)
class Backorder:
    """An order waiting for stock: ``seq`` orders the product's backlog, first come first served."""

    seq: int
    order: dict[str, Any]
    payment: dict[str, Any] | None
    since_ms: int

    @property
    def key(self) -> str:
        """Its key in the backorders store: product and place in the queue."""
        return backorder_key(int(self.order["product_id"]), self.seq)

    def to_json(self) -> list[Any]:
        """Compact JSON: ``from_json`` reads it back."""
        return [self.seq, self.order, self.payment, self.since_ms]

    @classmethod
    def from_json(cls, data: list[Any]) -> Backorder:
        """The backorder ``to_json`` made ``data`` of."""
        seq, order, payment, since_ms = data
        return cls(int(seq), dict(order), dict(payment) if payment is not None else None, int(since_ms))


def backorder_key(product_id: int, seq: int) -> str:
    """The store key of the ``seq``-th backorder of ``product_id``."""
    return f"{product_id}:{seq}"


@dataclass(frozen=True)
class Scheduled:
    """Something due later: a change to apply (``CHANGE_DUE``) or a backorder to cancel (``BACKORDER_EXPIRY``)."""

    item_id: str
    product_id: int
    due_ms: int
    kind: str
    #: The change (CHANGE_DUE) or the backorder's key (BACKORDER_EXPIRY): exactly the record that goes out.
    body: Any
    #: A reorder delivered short or late: the units ordered (None: as many as the body's delta) ...
    ordered: int | None = None
    #: ... and the days it arrives after the lead time.
    late_days: int = 0

    def to_json(self) -> list[Any]:
        """Compact JSON: ``from_json`` reads it back; ordered and late_days only for a short or late reorder."""
        delivery = [] if self.ordered is None else [self.ordered, self.late_days]
        return [self.product_id, self.due_ms, self.kind, self.body, *delivery]

    @classmethod
    def from_json(cls, item_id: str, data: list[Any]) -> Scheduled:
        """The item ``to_json`` made ``data`` of (four fields: an item delivered as ordered, or of older code)."""
        product_id, due_ms, kind, body, *delivery = data
        ordered, late_days = (int(delivery[0]), int(delivery[1])) if delivery else (None, 0)
        return cls(item_id, int(product_id), int(due_ms), str(kind), body, ordered, late_days)


@dataclass
class ProductStock:
    """A product's working stock: what the stockroom decides against, and the edge's watermarks.

    ``warehouses``: warehouse_id -> [on_hand, reserved, updated_ms (-1: as seeded)]. ``on_order``: units of
    reorders scheduled and not yet arrived, by warehouse. ``requests_offset``: the offset of the last request
    applied (requests of a product are in one partition, in order). ``orders_seen``: per orders partition, the
    offset of the last order decided (a replayed order comes back under a new request offset). ``next_seq``: the
    next backorder's place. ``done``: items and backorders finished by the last write, for the edge to delete.
    ``partition``: where the edge keeps the product.
    """

    product_id: int
    sku: str
    warehouses: dict[int, list[int]] = field(default_factory=dict)
    on_order: dict[int, int] = field(default_factory=dict)
    requests_offset: int = -1
    orders_seen: dict[int, int] = field(default_factory=dict)
    next_seq: int = 0
    done: list[str] = field(default_factory=list)
    #: The partition of the edge's stores the product lives in (-1: not known yet).
    partition: int = -1

    def available(self) -> dict[int, int]:
        """Units that can be sold, by warehouse."""
        return {warehouse_id: row[0] - row[1] for warehouse_id, row in self.warehouses.items()}

    def move(self, warehouse_id: int, delta: int, event_time: int) -> None:
        """Add ``delta`` units on hand (negative: take them; the caller decided they are available)."""
        row = self.warehouses.setdefault(warehouse_id, [0, 0, -1])
        on_hand = row[0] + delta
        if on_hand < row[1]:
            msg = f"product {self.product_id} warehouse {warehouse_id}: {delta} would leave {on_hand} on hand"
            raise ValueError(msg)
        row[0], row[2] = on_hand, max(row[2], event_time)

    def to_json(self) -> dict[str, Any]:
        """Compact JSON: ``from_json`` reads it back."""
        return {
            "p": self.product_id,
            "s": self.sku,
            "w": {str(w): row for w, row in self.warehouses.items()},
            "o": {str(w): units for w, units in self.on_order.items() if units},
            "r": self.requests_offset,
            "q": {str(p): offset for p, offset in self.orders_seen.items()},
            "n": self.next_seq,
            "d": self.done,
            "t": self.partition,
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> ProductStock:
        """The stock ``to_json`` made ``data`` of."""
        return cls(
            product_id=int(data["p"]),
            sku=str(data["s"]),
            warehouses={int(w): list(row) for w, row in data["w"].items()},
            on_order={int(w): int(units) for w, units in data["o"].items()},
            requests_offset=int(data["r"]),
            orders_seen={int(p): int(offset) for p, offset in data["q"].items()},
            next_seq=int(data["n"]),
            done=list(data["d"]),
            partition=int(data.get("t", -1)),
        )

    def to_state(self) -> StockState:
        """The stock as the views and the mirror show it."""
        warehouses = {
            w: WarehouseStock(row[0], row[1], row[2] if row[2] >= 0 else None) for w, row in self.warehouses.items()
        }
        return StockState(self.product_id, self.sku, warehouses)


@dataclass
class Outcome:
    """What a batch of requests decided: records to send, and what the edge must store and forget."""

    #: (role, key, value): shipments and inventory changes, in decision order.
    records: list[tuple[str, str, dict[str, Any]]] = field(default_factory=list)
    scheduled: list[Scheduled] = field(default_factory=list)
    #: Scheduled item ids applied or dropped.
    unscheduled: list[str] = field(default_factory=list)
    backordered: list[Backorder] = field(default_factory=list)
    #: Keys of backorders shipped or cancelled.
    served: list[str] = field(default_factory=list)
    counts: Counter[str] = field(default_factory=Counter)


@dataclass(frozen=True)
class StockReference:
    """What decisions need of the reference data, loaded once."""

    warehouses: dict[int, Warehouse]
    #: (product_id, warehouse_id) -> seeded on_hand: the opening balances.
    opening: dict[tuple[int, int], int]
    skus: dict[int, str]
    policies: dict[tuple[int, int], Policy]


class Stockroom:
    """Decides requests against a product's stock; ``backlog`` holds each product's waiting orders, in order."""

    def __init__(self, reference: StockReference, config: DerivationConfig, backorder_timeout_ms: int) -> None:
        self._reference = reference
        self._config = config
        self._timeout_ms = backorder_timeout_ms

    def sku(self, product_id: int) -> str:
        """The SKU of ``product_id`` (``#<id>`` for a product the reference data does not know)."""
        return self._reference.skus.get(product_id, f"#{product_id}")

    def order(
        self,
        stock: ProductStock,
        backlog: list[Backorder],
        order: dict[str, Any],
        payment: dict[str, Any] | None,
        out: Outcome,
    ) -> None:
        """Decide ``order`` (with ``decide_payment``'s ``payment``): ship it, backorder it, or not."""
        available = {} if backlog else stock.available()  # first come first served: no overtaking the queue
        decision = self._decide(order, payment, available, None)
        if decision.fulfilment == Fulfilment.NOT_SHIPPED:
            out.counts[f"not shipped: {decision.reason}"] += 1
            return
        if decision.fulfilment == Fulfilment.BACKORDERED:
            waiting = Backorder(stock.next_seq, order, payment, int(order["event_time"]))
            stock.next_seq += 1
            backlog.append(waiting)
            out.backordered.append(waiting)
            out.scheduled.append(
                Scheduled(f"expiry:{waiting.key}", stock.product_id, waiting.since_ms + self._timeout_ms,
                          BACKORDER_EXPIRY, waiting.key)
            )
            out.counts["backordered"] += 1
            self._reorder_for_backlog(stock, backlog, str(order["order_id"]), waiting.since_ms, out)
            return
        self._ship(stock, backlog, order, decision, out)

    def change(self, stock: ProductStock, backlog: list[Backorder], change: Mapping[str, Any], out: Outcome) -> None:
        """A background change of the generator: units in are added, a DAMAGE takes what is available."""
        checked = read_change(change)
        if DELTA_SIGN[checked.change_type] > 0:
            stock.move(checked.warehouse_id, checked.delta, checked.event_time)
            out.records.append((INVENTORY_CHANGES, str(stock.product_id), dict(change)))
            out.counts[f"{checked.change_type.lower()} applied"] += 1
            self._serve_backlog(stock, backlog, checked.event_time, out)
            return
        taken = min(-checked.delta, max(0, stock.available().get(checked.warehouse_id, 0)))
        if taken == 0:
            out.counts["damage dropped: nothing available"] += 1
            return
        if taken < -checked.delta:
            out.counts["damage reduced to what was available"] += 1
        stock.move(checked.warehouse_id, -taken, checked.event_time)
        out.records.append((INVENTORY_CHANGES, str(stock.product_id), {**change, "delta": -taken}))
        out.counts["damage applied"] += 1
        self._maybe_reorder(stock, backlog, checked.warehouse_id, checked.change_id, checked.event_time, out)

    def opening(self, stock: ProductStock, change: Mapping[str, Any], out: Outcome) -> None:
        """An opening balance (the seeded stock as a RESTOCK): applied once, when the warehouse has no row yet."""
        checked = read_change(change)
        if checked.warehouse_id in stock.warehouses:
            return
        stock.move(checked.warehouse_id, checked.delta, checked.event_time)
        out.records.append((INVENTORY_CHANGES, str(stock.product_id), dict(change)))
        out.counts["opening balances"] += 1

    def due(self, stock: ProductStock, backlog: list[Backorder], item: Scheduled, now_ms: int, out: Outcome) -> None:
        """A scheduled item fell due: apply its change, or cancel its backorder if that still waits."""
        out.unscheduled.append(item.item_id)
        stock.done.append(item.item_id)
        if item.kind == BACKORDER_EXPIRY:
            waiting = next((entry for entry in backlog if entry.key == item.body), None)
            if waiting is not None:
                backlog.remove(waiting)
                out.served.append(waiting.key)
                stock.done.append(waiting.key)
                out.counts["backorders cancelled"] += 1
            return
        change = dict(item.body)
        checked = read_change(change)
        stock.move(checked.warehouse_id, checked.delta, checked.event_time)
        short = False
        if checked.change_type == RESTOCK:
            ordered = checked.delta if item.ordered is None else item.ordered
            left = stock.on_order.get(checked.warehouse_id, 0) - ordered  # all of the order: nothing more follows
            stock.on_order[checked.warehouse_id] = max(0, left)
            short = checked.delta < ordered
            out.counts["restocks arrived"] += 1
            if short:
                out.counts["restocks arrived short"] += 1
            if item.late_days:
                out.counts["restocks arrived late"] += 1
        else:
            out.counts["returns arrived"] += 1
        out.records.append((INVENTORY_CHANGES, str(stock.product_id), change))
        at = max(checked.event_time, now_ms)
        self._serve_backlog(stock, backlog, at, out)
        if short:
            self._maybe_reorder(stock, backlog, checked.warehouse_id, checked.change_id, at, out)

    # ----- decisions

    def _decide(
        self,
        order: dict[str, Any],
        payment: dict[str, Any] | None,
        available: Mapping[int, int],
        not_before: int | None,
    ) -> ShipmentDecision:
        rng = rng_for(self._config.seed, str(order["order_id"]), Stage.SHIPMENT)
        return decide_shipment(
            order, payment, available, self._reference.warehouses, self._config, rng, not_before_ms=not_before
        )

    def _ship(
        self,
        stock: ProductStock,
        backlog: list[Backorder],
        order: dict[str, Any],
        decision: ShipmentDecision,
        out: Outcome,
    ) -> None:
        shipment: dict[str, Any] | None = decision.shipment
        sale: dict[str, Any] | None = decision.sale
        assert shipment is not None
        assert sale is not None
        warehouse_id, units, at = int(sale["warehouse_id"]), -int(sale["delta"]), int(sale["event_time"])
        stock.move(warehouse_id, -units, at)
        out.records.append((SHIPMENTS, str(order["order_id"]), shipment))
        out.records.append((INVENTORY_CHANGES, str(stock.product_id), sale))
        out.counts["shipped"] += 1
        returned = decide_return(
            order, shipment, self._config, rng_for(self._config.seed, str(order["order_id"]), Stage.RETURN)
        )
        if returned is not None:
            change_id = str(returned.change["change_id"])
            out.scheduled.append(Scheduled(change_id, stock.product_id, returned.due_ms, CHANGE_DUE, returned.change))
            out.counts["returns scheduled"] += 1
        self._maybe_reorder(stock, backlog, warehouse_id, str(sale["change_id"]), at, out)

    def _serve_backlog(self, stock: ProductStock, backlog: list[Backorder], now_ms: int, out: Outcome) -> None:
        """Ship waiting orders in order while the head of the queue can be served."""
        while backlog:
            head = backlog[0]
            decision = self._decide(head.order, head.payment, stock.available(), now_ms)
            if decision.fulfilment != Fulfilment.SHIPPED:
                return
            backlog.pop(0)
            out.served.append(head.key)
            stock.done.append(head.key)
            out.counts["backorders shipped"] += 1
            self._ship(stock, backlog, head.order, decision, out)

    def _maybe_reorder(
        self,
        stock: ProductStock,
        backlog: list[Backorder],
        warehouse_id: int,
        trigger_id: str,
        now_ms: int,
        out: Outcome,
    ) -> None:
        policy = self._reference.policies.get((stock.product_id, warehouse_id))
        if policy is None:
            return
        waiting = sum(int(entry.order["quantity"]) for entry in backlog)
        available = stock.available().get(warehouse_id, 0)
        on_order = stock.on_order.get(warehouse_id, 0)
        quantity = restock_needed(available, policy.reorder_point, policy.reorder_qty, on_order, waiting)
        if quantity > 0:
            self._place_reorder(stock, warehouse_id, policy, quantity, trigger_id, now_ms, out)

    def _reorder_for_backlog(
        self, stock: ProductStock, backlog: list[Backorder], trigger_id: str, now_ms: int, out: Outcome
    ) -> None:
        """A new backorder reorders at the warehouse best placed to serve it, unless a reorder is on its way."""
        if any(stock.on_order.values()):
            return
        candidates = [w for w in sorted(stock.warehouses) if (stock.product_id, w) in self._reference.policies]
        if not candidates:
            out.counts["backorders without a supplier"] += 1
            return
        available = stock.available()
        warehouse_id = max(candidates, key=lambda w: (available.get(w, 0), -w))
        self._maybe_reorder(stock, backlog, warehouse_id, trigger_id, now_ms, out)

    def _place_reorder(
        self,
        stock: ProductStock,
        warehouse_id: int,
        policy: Policy,
        quantity: int,
        trigger_id: str,
        now_ms: int,
        out: Outcome,
    ) -> None:
        change_id = restock_change_id(stock.product_id, warehouse_id, trigger_id)
        restock = restock_change(
            stock.product_id,
            stock.sku,
            warehouse_id,
            quantity,
            policy.lead_time_days,
            self._config.lead_time_scale,
            now_ms,
            trigger_id,
            policy.reliability,
            rng_for(self._config.seed, change_id, Stage.DELIVERY),
        )
        stock.on_order[warehouse_id] = stock.on_order.get(warehouse_id, 0) + quantity
        ordered = quantity if restock.short or restock.late_days else None
        out.scheduled.append(
            Scheduled(
                change_id, stock.product_id, restock.due_ms, CHANGE_DUE, restock.change, ordered, restock.late_days
            )
        )
        out.counts["restocks ordered"] += 1

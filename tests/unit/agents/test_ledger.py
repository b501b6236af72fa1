"""``agents.ledger.run_requests``, the loop both ledgers run a batch through: what is applied once, and what skipped."""

from __future__ import annotations

from collections import Counter
from typing import Any

from agents.ledger import Request, run_requests
from agents.requests import CHANGE, DUE, OPENING, ORDER, OrderRequest
from app.inventory.stockroom import Backorder, Outcome, ProductStock, Scheduled
from tests.unit.inventory.support import PRODUCT, _change, _payment, _room, _shipping_orders


class Books:
    """The stock, backlogs and schedule a ledger would hand the loop."""

    def __init__(self) -> None:
        self.stock = ProductStock(PRODUCT, f"SKU-{PRODUCT:06d}", {1: [50, 0, -1]})
        self.backlogs: dict[int, list[Backorder]] = {}
        self.items: dict[str, Scheduled] = {}

    def run(self, requests: list[Request], counts: Counter[str]) -> Any:
        room = _room()

        def product(product_id: int, partition: int) -> ProductStock:
            self.stock.partition = partition
            return self.stock

        return run_requests(
            room,
            requests,
            product,
            lambda product_id: self.backlogs.setdefault(product_id, []),
            self.take_item,
            room.opening,
            0,
            counts,
        )


    def take_item(self, item_id: str, product_id: int) -> Scheduled | None:
        """As the ledgers do: the item, if it is due for that product."""
        item = self.items.get(item_id)
        return self.items.pop(item_id) if item is not None and item.product_id == product_id else None


def _order_request(offset: int, order: dict[str, Any], orders_offset: int) -> Request:
    return Request(2, offset, PRODUCT, ORDER, OrderRequest(order, _payment(order), 1, orders_offset))


def test_a_redelivered_request_and_a_replayed_order_are_skipped() -> None:
    books, counts = Books(), Counter[str]()
    first, second = _shipping_orders(2, 2)
    batch = books.run([_order_request(10, first, 100), _order_request(11, second, 101)], counts)
    assert books.stock.requests_offset == 11
    assert books.stock.orders_seen == {1: 101}
    assert books.stock.partition == 2
    assert batch.first_offset == {2: 10}
    assert sum(1 for role, _, _ in batch.outcomes[2].records if role == "shipments") == 2
    again = books.run([_order_request(11, second, 101)], counts)  # the same record, redelivered
    replayed = books.run([_order_request(12, first, 100)], counts)  # the orders agent sent it again
    assert counts["requests replayed"] == 1
    assert counts["orders replayed"] == 1
    assert again.outcomes == {}
    assert replayed.outcomes[2].records == []
    assert books.stock.warehouses[1][0] == 50 - 4


def test_a_due_item_applies_once_and_each_kind_reaches_the_stockroom() -> None:
    books, counts = Books(), Counter[str]()
    restock = Scheduled("r1", PRODUCT, 5, "change", _change("RESTOCK", 7, 1, "r1"))
    books.items["r1"] = restock
    requests = [
        Request(2, 20, PRODUCT, DUE, "r1"),
        Request(2, 21, PRODUCT, DUE, "r1"),
        Request(2, 22, PRODUCT, CHANGE, _change("DAMAGE", 3, 1, "d1")),
        Request(2, 23, PRODUCT, OPENING, _change("RESTOCK", 9, 2, "opening-2")),
    ]
    batch = books.run(requests, counts)
    assert counts["due requests for nothing scheduled"] == 1
    out: Outcome = batch.outcomes[2]
    assert [value["change_id"] for _, _, value in out.records] == ["r1", "d1", "opening-2"]
    assert out.unscheduled == ["r1"]
    assert books.stock.done == ["r1"]
    assert books.stock.warehouses[1][0] == 50 + 7 - 3
    assert books.stock.warehouses[2][0] == 9

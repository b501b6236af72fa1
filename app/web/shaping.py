"""The JSON of the stock views and the parsing of their query parameters: pure, no web framework, no I/O."""

from __future__ import annotations

import heapq
import math
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from app.inventory import StockState, WarehouseStock

DEFAULT_PAGE_SIZE = 50
MAX_PAGE_SIZE = 500
#: ``GET /stats/history/?step=N``: seconds (samples) per point, by default and at most.
HISTORY_STEP = 5
MAX_HISTORY_STEP = 60
#: ``GET /low-stock/?n=N``: products listed, by default and at most.
LOW_STOCK_COUNT = 10
MAX_LOW_STOCK = 100
_WHOLE_NUMBER = re.compile(r"[0-9]{1,9}")


class BadParameter(ValueError):
    """A query or path parameter that is malformed or out of range: the message names it (400)."""


@dataclass(frozen=True)
class Page:
    """Which slice of a sorted listing to answer: 1-based ``number``, ``size`` items."""

    number: int = 1
    size: int = DEFAULT_PAGE_SIZE

    def of(self, items: Sequence[Any]) -> list[Any]:
        """This page's part of ``items``: empty past the end."""
        start = (self.number - 1) * self.size
        return list(items[start : start + self.size])

    def body(self, items: list[dict[str, Any]], total: int) -> dict[str, Any]:
        """The JSON body of a paged listing."""
        pages = math.ceil(total / self.size)
        return {"items": items, "total": total, "page": self.number, "size": self.size, "pages": pages}


def whole_number(name: str, raw: str, least: int, most: int | None = None) -> int:
    """``raw`` as an int in [least, most]; BadParameter naming ``name`` otherwise."""
    limit = f" and <= {most}" if most is not None else ""
    if not _WHOLE_NUMBER.fullmatch(raw) or int(raw) < least or (most is not None and int(raw) > most):
        msg = f"{name}: expected a whole number >= {least}{limit}, got {raw[:40]!r}"
        raise BadParameter(msg)
    return int(raw)


def parse_page(query: Mapping[str, str]) -> Page:
    """The page that ``?page=N&size=M`` asks for (defaults 1 and DEFAULT_PAGE_SIZE)."""
    number = whole_number("page", query["page"], 1) if "page" in query else 1
    size = whole_number("size", query["size"], 1, MAX_PAGE_SIZE) if "size" in query else DEFAULT_PAGE_SIZE
    return Page(number, size)


def parse_step(query: Mapping[str, str]) -> int:
    """The seconds per point that ``?step=N`` asks of the history (default HISTORY_STEP)."""
    return whole_number("step", query["step"], 1, MAX_HISTORY_STEP) if "step" in query else HISTORY_STEP


def parse_low_stock_count(query: Mapping[str, str]) -> int:
    """The number of products that ``?n=N`` asks of ``GET /low-stock/`` (default LOW_STOCK_COUNT)."""
    return whole_number("n", query["n"], 1, MAX_LOW_STOCK) if "n" in query else LOW_STOCK_COUNT


def iso_utc(epoch_ms: int | None) -> str | None:
    """Epoch milliseconds as ISO-8601 UTC with milliseconds; None stays None (a row as seeded)."""
    if epoch_ms is None:
        return None
    return datetime.fromtimestamp(epoch_ms / 1000, tz=UTC).isoformat(timespec="milliseconds")


def product_item(product_id: int, sku: str, state: StockState | None) -> dict[str, Any]:
    """One product's stock over all warehouses; ``state`` None: a known product that has never held stock."""
    stocks = sorted(state.warehouses.items()) if state is not None else []
    on_hand = sum(stock.on_hand for _, stock in stocks)
    reserved = sum(stock.reserved for _, stock in stocks)
    warehouses = [
        {
            "warehouse_id": warehouse_id,
            "on_hand": stock.on_hand,
            "reserved": stock.reserved,
            "updated_at": iso_utc(stock.updated_ms),
        }
        for warehouse_id, stock in stocks
    ]
    return {
        "product_id": product_id,
        "sku": state.sku if state is not None else sku,
        "on_hand": on_hand,
        "reserved": reserved,
        "available": on_hand - reserved,
        "warehouses": warehouses,
    }


def warehouse_item(product_id: int, sku: str, stock: WarehouseStock | None) -> dict[str, Any]:
    """One product's stock at one warehouse; ``stock`` None: kept there but never held."""
    on_hand, reserved = (stock.on_hand, stock.reserved) if stock is not None else (0, 0)
    return {
        "product_id": product_id,
        "sku": sku,
        "on_hand": on_hand,
        "reserved": reserved,
        "available": on_hand - reserved,
        "updated_at": iso_utc(stock.updated_ms) if stock is not None else None,
    }


def warehouse_items(
    warehouse_id: int, states: Mapping[int, StockState], skus: Mapping[int, str], kept: Iterable[int]
) -> list[dict[str, Any]]:
    """Per product, by product_id, the stock of one warehouse: the products ``kept`` there and those it holds."""
    held = {product_id for product_id, state in states.items() if warehouse_id in state.warehouses}
    items = []
    for product_id in sorted(held.union(kept)):
        state = states.get(product_id)
        stock = state.stock(warehouse_id) if state is not None else None
        sku = state.sku if state is not None else skus.get(product_id, "")
        items.append(warehouse_item(product_id, sku, stock))
    return items


def lowest_available(items: Iterable[Mapping[str, Any]], count: int) -> list[Mapping[str, Any]]:
    """The ``count`` items with least stock available, least first (by product id among equals)."""
    return heapq.nsmallest(count, items, key=lambda item: (item["available"], item["product_id"]))

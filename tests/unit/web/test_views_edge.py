"""The inventory views' edge with stand-ins for the Faust app, web driver, table and Postgres: routing, 503, 404,
500, and the same JSON from both stock sources."""

from __future__ import annotations

import asyncio
import logging
from collections import Counter
from dataclasses import dataclass, field
from types import SimpleNamespace
from typing import Any

import pytest
from faust.exceptions import SameNode

from app.derivation import Warehouse
from app.inventory import StockState, WarehouseStock
from app.stats import EmissionStats
from app.web.page import CONTENT_SECURITY_POLICY
from app.web.stock_sources import NOT_READY, STOPPING, PostgresStockReader, StockReader, StockSource
from app.web.views import INTERNAL_ERROR, NO_TABLE, register_inventory_views
from db.stock_reference import StockReference

REFERENCE = StockReference(
    warehouses={1: Warehouse(1, "EU", "DE"), 2: Warehouse(2, "US", "US")},
    opening={(7, 1): 5, (8, 2): 0},
    skus={7: "SKU-7", 8: "SKU-8"},
    policies={},
)
STATE = STATE_7 = StockState(7, "SKU-7", {1: WarehouseStock(5, 1, 1_000)})
STATE_8 = StockState(8, "SKU-8", {2: WarehouseStock(0, 0, None)})


class Table(dict[str, Any]):
    """A stand-in for the stock table: a dict with a name."""

    name = "stock"


class Ledger:
    """A stand-in for the Kafka ledger's reads, over a table of stored StockStates."""

    def __init__(self, stock: Table) -> None:
        self.stock = stock

    def state(self, product_id: int) -> StockState | None:
        stored = self.stock.get(str(product_id))
        return StockState.from_dict(stored) if stored else None

    def product_ids(self) -> set[int]:
        return {int(key) for key in self.stock}


@dataclass
class Response:
    body: Any
    status: int
    headers: dict[str, str] = field(default_factory=dict)


class Web:
    """What the views ask of Faust's web driver."""

    def json(self, value: Any, *, status: int = 200, headers: Any = None, **_: Any) -> Response:
        return Response(value, status, dict(headers or {}))

    def html(self, value: str, *, status: int = 200, headers: Any = None, **_: Any) -> Response:
        return Response(value, status, dict(headers or {}))


class Router:
    """Answers as the owner of every key (SameNode) unless told to forward to another worker."""

    def __init__(self) -> None:
        self.forwarded: Response | None = None
        self.asked: list[tuple[str, Any]] = []

    async def route_req(self, table_name: str, key: Any, web: Web, request: Any) -> Response:
        self.asked.append((table_name, key))
        if self.forwarded is None:
            raise SameNode()
        return self.forwarded


class App:
    """Collects the pages registered and instantiates them as Faust's web would."""

    def __init__(self) -> None:
        self.pages: dict[str, type] = {}
        self.router = Router()
        self.sensors = SimpleNamespace(
            on_web_request_start=lambda *a, **k: None, on_web_request_end=lambda *a, **k: None
        )

    def page(self, path: str) -> Any:
        def register(view: type) -> type:
            self.pages[path] = view
            return view

        return register

    def get(self, path: str, query: dict[str, str] | None = None, **match_info: str) -> Response:
        view = self.pages[path](self, Web())
        request = SimpleNamespace(method="GET", path=path, query=query or {}, match_info=match_info)
        return asyncio.run(view(request))


class Reads:
    """A stand-in for db.inventory_reads.InventoryReads holding the same stock as the table stand-in."""

    def __init__(self) -> None:
        self.states = {7: STATE_7, 8: STATE_8}

    async def product_count(self) -> int:
        return len(self.states)

    async def products(self, offset: int, limit: int) -> list[StockState]:
        return [self.states[key] for key in sorted(self.states)[offset : offset + limit]]

    async def product(self, product_id: int) -> StockState | None:
        return self.states.get(product_id)

    async def product_of(self, sku: str) -> int | None:
        return next((key for key, state in self.states.items() if state.sku == sku), None)

    async def warehouse(self, warehouse_id: int) -> Warehouse | None:
        return REFERENCE.warehouses.get(warehouse_id)

    async def warehouse_count(self, warehouse_id: int) -> int:
        return sum(1 for state in self.states.values() if warehouse_id in state.warehouses)

    async def warehouse_stock(self, warehouse_id: int, offset: int, limit: int) -> list[tuple[int, str, Any]]:
        kept = [state for _, state in sorted(self.states.items()) if warehouse_id in state.warehouses]
        return [(s.product_id, s.sku, s.warehouses[warehouse_id]) for s in kept[offset : offset + limit]]


def _postgres(ready: bool = True) -> PostgresStockReader:
    reader = PostgresStockReader("host=nowhere")
    if ready:
        reader._reads = Reads()  # type: ignore[assignment]
    return reader


def _app(
    mode: str = "kafka",
    reference: StockReference | None = REFERENCE,
    table: Table | None = None,
    source: StockSource | None = None,
) -> App:
    app = App()
    stock = Table({"7": STATE.to_dict()}) if table is None else table
    fulfilment = SimpleNamespace(ledger=Ledger(stock), reference=reference, counts=Counter())
    generation = SimpleNamespace(stats=EmissionStats())
    if source is None and mode == "kafka":
        source = StockReader(fulfilment)  # type: ignore[arg-type]
    register_inventory_views(app, source, generation)  # type: ignore[arg-type]
    return app


JSON_VIEWS = [
    ("/inventory/", {}),
    ("/inventory/{sku}/", {"sku": "SKU-7"}),
    ("/warehouses/{warehouse_id}/inventory/", {"warehouse_id": "1"}),
]


@pytest.mark.parametrize(("path", "match_info"), JSON_VIEWS)
def test_kafka_mode_without_the_agents_answers_503(path: str, match_info: dict[str, str]) -> None:
    assert _app(mode="no table").get(path, **match_info) == Response({"error": NO_TABLE}, 503)


@pytest.mark.parametrize(("path", "match_info"), JSON_VIEWS)
def test_postgres_mode_answers_503_until_its_pool_is_open(path: str, match_info: dict[str, str]) -> None:
    assert _app(source=_postgres(ready=False)).get(path, **match_info) == Response({"error": NOT_READY}, 503)


@pytest.mark.parametrize(("path", "match_info"), JSON_VIEWS)
def test_postgres_mode_answers_503_once_stopped(path: str, match_info: dict[str, str]) -> None:
    reader = _postgres(ready=False)
    asyncio.run(reader.stop())
    assert _app(source=reader).get(path, **match_info) == Response({"error": STOPPING}, 503)


@pytest.mark.parametrize(
    ("path", "query", "match_info"),
    [
        ("/inventory/", {}, {}),
        ("/inventory/", {"page": "2", "size": "1"}, {}),
        ("/inventory/{sku}/", {}, {"sku": "SKU-7"}),
        ("/inventory/{sku}/", {}, {"sku": "NOPE"}),
        ("/warehouses/{warehouse_id}/inventory/", {}, {"warehouse_id": "2"}),
        ("/warehouses/{warehouse_id}/inventory/", {}, {"warehouse_id": "3"}),
        ("/warehouses/{warehouse_id}/inventory/", {"size": "x"}, {"warehouse_id": "1"}),
    ],
)
def test_postgres_mode_answers_as_kafka_mode_does(path: str, query: dict[str, str], match_info: dict[str, str]) -> None:
    """The same stock in the table and in Postgres gives the same answers."""
    kafka = _app(table=Table({"7": STATE_7.to_dict(), "8": STATE_8.to_dict()})).get(path, query, **match_info)
    postgres = _app(source=_postgres()).get(path, query, **match_info)
    assert postgres == kafka


def test_postgres_mode_routes_nothing() -> None:
    app = _app(source=_postgres())
    assert app.get("/inventory/{sku}/", sku="SKU-8").body["sku"] == "SKU-8"
    assert app.router.asked == []


@pytest.mark.parametrize(("path", "match_info"), JSON_VIEWS)
def test_a_starting_worker_answers_503(path: str, match_info: dict[str, str]) -> None:
    assert _app(reference=None).get(path, **match_info) == Response({"error": NOT_READY}, 503)


def test_the_listing_includes_known_products_without_stock() -> None:
    body = _app().get("/inventory/").body
    assert [(item["product_id"], item["on_hand"]) for item in body["items"]] == [(7, 5), (8, 0)]
    assert (body["total"], body["pages"]) == (2, 1)


def test_the_sku_view_is_answered_here_when_this_worker_owns_the_key() -> None:
    app = _app()
    response = app.get("/inventory/{sku}/", sku="SKU-7")
    assert response.status == 200
    assert response.body["on_hand"] == 5
    assert app.router.asked == [("stock", b"7")]  # the raw key, as the source topics were partitioned by it


def test_the_sku_view_forwards_what_another_worker_answers() -> None:
    app = _app()
    app.router.forwarded = Response({"from": "the owner"}, 200)
    assert app.get("/inventory/{sku}/", sku="SKU-8") == Response({"from": "the owner"}, 200)
    assert app.router.asked == [("stock", b"8")]


def test_an_unknown_sku_is_404_without_routing() -> None:
    app = _app()
    assert app.get("/inventory/{sku}/", sku="NOPE") == Response({"error": "unknown sku 'NOPE'"}, 404)
    assert app.router.asked == []


@pytest.mark.parametrize(
    ("warehouse_id", "query", "status"),
    [("abc", {}, 400), ("1", {"size": "0"}, 400), ("3", {}, 404), ("2", {}, 200)],
)
def test_warehouse_view_statuses(warehouse_id: str, query: dict[str, str], status: int) -> None:
    response = _app().get("/warehouses/{warehouse_id}/inventory/", query, warehouse_id=warehouse_id)
    assert response.status == status


def test_a_warehouse_lists_what_it_keeps() -> None:
    body = _app().get("/warehouses/{warehouse_id}/inventory/", warehouse_id="2").body
    assert body["warehouse"] == {"warehouse_id": 2, "region": "US", "country": "US"}
    assert [(item["sku"], item["on_hand"]) for item in body["items"]] == [("SKU-8", 0)]


def test_an_unexpected_error_is_a_500_without_internals(caplog: pytest.LogCaptureFixture) -> None:
    broken = Table({"7": {"product_id": "secret-internals"}})
    with caplog.at_level(logging.ERROR, logger="app.web.views"):
        response = _app(table=broken).get("/inventory/")
    assert response == Response({"error": INTERNAL_ERROR}, 500)
    assert "secret-internals" in caplog.text  # the traceback is the worker's log's, not the client's


def test_the_page_carries_its_content_security_policy() -> None:
    response = _app().get("/")
    assert response.status == 200
    assert response.headers == {"Content-Security-Policy": CONTENT_SECURITY_POLICY}
    assert 'data-product-id="8"' in response.body


def test_the_page_without_a_table_says_why_there_is_no_inventory() -> None:
    response = _app(mode="no table").get("/")
    assert response.status == 200
    assert NO_TABLE in response.body


def test_the_page_in_postgres_mode_shows_the_inventory() -> None:
    response = _app(source=_postgres()).get("/")
    assert response.status == 200
    assert 'data-product-id="8"' in response.body
    assert response.body == _app(table=Table({"7": STATE_7.to_dict(), "8": STATE_8.to_dict()})).get("/").body

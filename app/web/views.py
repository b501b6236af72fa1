"""The Faust views of the stock and the page: JSON by product, by SKU and by warehouse, the lowest stock, the
history of the rates, and the self-refreshing HTML page; ``register_inventory_views`` adds them to the app."""

from __future__ import annotations

import logging
import time
from typing import TYPE_CHECKING, Any

import faust
from faust.exceptions import SameNode
from faust.web import Request, Response, View

from app.history import DERIVED_COUNTERS, History, sample_of
from app.metrics import agent_meters
from app.settings import Settings
from app.stats import EmissionStats
from app.web.page import CONTENT_SECURITY_POLICY, render_page
from app.web.shaping import BadParameter, Page, parse_low_stock_count, parse_page, parse_step, whole_number
from app.web.stock_sources import LowestStock, StockSource

if TYPE_CHECKING:  # the generator is handed in by app.main; the views read only its stats
    from agents.generation import GenerationAgent

log = logging.getLogger(__name__)

#: What the inventory views answer (503) in kafka mode on a worker without the agents, which hold the table.
NO_TABLE = "inventory views need the fulfilment agents in kafka mode: this worker runs with AGENTS_ENABLED=false"
#: What a request that failed unexpectedly is told; the details go to the worker's log only.
INTERNAL_ERROR = "internal error: see the worker's log"


class GuardedView(View):
    """Answers an unexpected error with a 500 JSON body; the traceback goes to the log, never to the client."""

    async def dispatch(self, request: Any) -> Any:
        """Faust's dispatch (which turns WebError into JSON), guarded."""
        try:
            return await super().dispatch(request)
        except Exception:
            log.exception("%s %s failed", request.method, request.path)
            return self.error(500, INTERNAL_ERROR)


class StockView(GuardedView):
    """A JSON view of the stock: 503 while it cannot be read (starting, stopping, no table on this worker)."""

    stock: StockSource | None = None

    def unavailable(self) -> Response | None:
        """The 503 answer when the stock cannot be read now, else None."""
        if self.stock is None:
            return self.error(503, NO_TABLE)
        reason = self.stock.unavailable()
        return self.error(503, reason) if reason is not None else None

    def reader(self) -> StockSource:
        """The stock source, once ``unavailable`` said None."""
        assert self.stock is not None
        return self.stock


class InventoryView(StockView):
    """``GET /inventory/?page=N&size=M``: every product's stock, by product_id."""

    async def get(self, request: Request) -> Response:
        """One page of products."""
        try:
            page = parse_page(request.query)
        except BadParameter as error:
            return self.error(400, str(error))
        return self.unavailable() or self.json(await self.reader().listing(page))


class SkuView(StockView):
    """``GET /inventory/{sku}/``: one product's stock; in kafka mode answered by the worker that holds it.

    ``app.table_route`` cannot serve here: it routes by a path parameter taken as the table key itself, and the
    table key is the product_id, not the SKU. Worse, it hashes the key as the table serializes it (JSON,
    ``"12"`` in quotes), while a row lives in the partition of the event that wrote it, keyed by the raw bytes
    ``12``: for most keys it would pick the wrong worker (117 of products 1-150 over 4 partitions). So the view
    calls ``app.router.route_req`` itself, as ``table_route`` does, with the raw key (bytes pass Faust's key
    serializer untouched): the stock changelog has as many partitions as the source topics and is assigned with
    them, so that partition's owner holds the row. ``SameNode`` means this worker does. In postgres mode there
    is nothing to route: every worker reads the same rows.
    """

    async def get(self, request: Request, sku: str) -> Response:
        """The product's item, or 404 for an unknown SKU."""
        unavailable = self.unavailable()
        if unavailable is not None:
            return unavailable
        stock = self.reader()
        product_id = await stock.product_of(sku)
        if product_id is None:
            return self.error(404, f"unknown sku {sku[:80]!r}")
        route = stock.route(product_id)
        if route is not None:
            try:
                return await self.app.router.route_req(route[0], route[1], self.web, request)
            except SameNode:
                pass
        return self.json(await stock.item(product_id))


class WarehouseView(StockView):
    """``GET /warehouses/{warehouse_id}/inventory/?page=N&size=M``: one warehouse's stock per product."""

    async def get(self, request: Request, warehouse_id: str) -> Response:
        """One page of the warehouse's products; 404 for an unknown warehouse, 400 for a malformed id."""
        try:
            number = whole_number("warehouse id", warehouse_id, 0)
            page = parse_page(request.query)
        except BadParameter as error:
            return self.error(400, str(error))
        unavailable = self.unavailable()
        if unavailable is not None:
            return unavailable
        body = await self.reader().warehouse(number, page)
        if body is None:
            return self.error(404, f"unknown warehouse {number}")
        return self.json(body)


class LowStockView(StockView):
    """``GET /low-stock/?n=N``: the N products (10 by default, at most 100) with least stock available."""

    lowest: LowestStock | None = None

    async def get(self, request: Request) -> Response:
        """The lowest products, least first."""
        try:
            count = parse_low_stock_count(request.query)
        except BadParameter as error:
            return self.error(400, str(error))
        unavailable = self.unavailable()
        if unavailable is not None:
            return unavailable
        assert self.lowest is not None
        return self.json(await self.lowest.lowest(count))


class HistoryView(GuardedView):
    """``GET /stats/history/?step=N``: this worker's rates, target and backlog over the last minutes."""

    history: History | None = None
    derived_topics: tuple[str, ...] = ()

    async def get(self, request: Request) -> Response:
        """One point per ``step`` seconds (5 by default, at most 60)."""
        try:
            step = parse_step(request.query)
        except BadParameter as error:
            return self.error(400, str(error))
        assert self.history is not None
        return self.json(self.history.report(step, self.derived_topics))


class PageView(GuardedView):
    """``GET /``: the inventory's first page, the rates per topic and the dead letters, refreshing itself."""

    stock: StockSource | None = None
    generation: GenerationAgent | None = None

    async def get(self, request: Request) -> Response:
        """The page, rendered with what is known now."""
        assert self.generation is not None
        report = self.generation.stats.report(time.monotonic())
        inventory, notice = None, NO_TABLE
        if self.stock is not None:
            notice = self.stock.unavailable() or ""
            if not notice:
                inventory = await self.stock.listing(Page())
        page = render_page(inventory, notice, report, self.generation.stats.agents["dead letters"])
        return self.html(page, headers={"Content-Security-Policy": CONTENT_SECURITY_POLICY})


def _bound(base: type[View], **attributes: object) -> type[View]:
    """A subclass of ``base`` with ``attributes``: Faust makes the view itself, from the class alone."""
    return type(base.__name__, (base,), attributes)


#: How often the page's history takes a sample.
HISTORY_INTERVAL_SECONDS = 1.0


def record_history(app: faust.App, stats: EmissionStats) -> tuple[History, tuple[str, ...]]:
    """A history of ``stats`` that a Faust timer samples once a second, and the names of the derived topics."""
    settings: Settings | None = getattr(app, "datagen_settings", None)
    names = settings.topics() if settings is not None else {}
    derived = {role: names.get(role, role) for role in DERIVED_COUNTERS}
    history = History()
    if not hasattr(app, "timer"):  # the unit tests' stand-in for the app serves pages only
        return history, tuple(derived.values())
    meters = agent_meters(app)  # dead letters by reason

    async def sample_history() -> None:
        history.add(sample_of(stats, derived, time.time(), time.monotonic(), meters.dead_letters))

    app.timer(HISTORY_INTERVAL_SECONDS, name="page-history")(sample_history)
    return history, tuple(derived.values())


def register_inventory_views(app: faust.App, stock: StockSource | None, generation: GenerationAgent) -> None:
    """Add the inventory views and the page to ``app``, reading ``stock`` (None: no stock here, they answer 503),
    and the timer that samples the page's history of ``generation.stats``."""
    app.page("/inventory/")(_bound(InventoryView, stock=stock))
    app.page("/inventory/{sku}/")(_bound(SkuView, stock=stock))
    app.page("/warehouses/{warehouse_id}/inventory/")(_bound(WarehouseView, stock=stock))
    lowest = LowestStock(stock) if stock is not None else None
    app.page("/low-stock/")(_bound(LowStockView, stock=stock, lowest=lowest))
    history, derived_topics = record_history(app, generation.stats)
    app.page("/stats/history/")(_bound(HistoryView, history=history, derived_topics=derived_topics))
    app.page("/")(_bound(PageView, stock=stock, generation=generation))

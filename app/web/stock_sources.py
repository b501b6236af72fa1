"""Where the views read the stock: the Kafka table (CANON_INVENTORY=kafka) or the Postgres rows
(CANON_INVENTORY=postgres), through one ``StockSource`` interface, with the same JSON in both modes; and the
products with least stock, read through it.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any, Protocol, cast

from app.inventory import StockState
from app.retry import until_done
from app.settings import Settings
from app.web.shaping import (
    MAX_LOW_STOCK,
    MAX_PAGE_SIZE,
    Page,
    lowest_available,
    product_item,
    warehouse_item,
    warehouse_items,
)
from db.inventory_reads import InventoryReads
from db.stock_reference import StockReference

if TYPE_CHECKING:  # the agents are handed in by app.main; the web needs only their types
    from agents.fulfilment import FulfilmentAgents
    from agents.kafka_ledger import KafkaLedger

#: ``GET /low-stock/``: every product is read at most this often.
LOW_STOCK_SECONDS = 5.0
NOT_READY = "inventory not ready: the worker is still loading the reference data"
STOPPING = "inventory not available: the worker is stopping"


class StockSource(Protocol):
    """The stock as the views read it, in the same JSON shapes whichever store is canonical."""

    async def start(self) -> None:
        """Get ready to answer (the worker calls it once the reference data is in Postgres)."""

    async def stop(self) -> None:
        """Release what ``start`` took (the worker is stopping)."""

    def unavailable(self) -> str | None:
        """Why the stock cannot be read now (a 503), or None."""

    async def listing(self, page: Page) -> dict[str, Any]:
        """One page of ``GET /inventory/``."""

    async def product_of(self, sku: str) -> int | None:
        """The product_id of ``sku``; None for an unknown SKU."""

    async def item(self, product_id: int) -> dict[str, Any]:
        """The JSON item of one product."""

    async def warehouse(self, warehouse_id: int, page: Page) -> dict[str, Any] | None:
        """One page of ``GET /warehouses/{id}/inventory/``; None for an unknown warehouse."""

    def route(self, product_id: int) -> tuple[str, bytes] | None:
        """(table name, raw key) by which Faust's router finds the worker holding the product; None: any worker
        answers."""


class StockReader:
    """The Kafka table (CANON_INVENTORY=kafka): the fulfilment agents' stock table and reference data."""

    def __init__(self, fulfilment: FulfilmentAgents) -> None:
        self._fulfilment = fulfilment
        self._ledger = cast("KafkaLedger", fulfilment.ledger)
        self._by_sku: dict[str, int] | None = None

    async def start(self) -> None:
        """Nothing to open: Faust recovers the table before the web server starts."""

    async def stop(self) -> None:
        """Nothing to close."""

    def unavailable(self) -> str | None:
        """NOT_READY until the agents have the reference data."""
        return NOT_READY if self.reference() is None else None

    @property
    def table_name(self) -> str:
        """The Faust name of the stock table."""
        return str(self._ledger.stock.name)

    def reference(self) -> StockReference | None:
        """The reference data; None until the worker has loaded it."""
        return self._fulfilment.reference

    async def product_of(self, sku: str) -> int | None:
        """The product_id of ``sku``; None for an unknown SKU."""
        if self._by_sku is None:
            reference = self.reference()
            if reference is None:
                return None
            self._by_sku = {known: product_id for product_id, known in reference.skus.items()}
        return self._by_sku.get(sku)

    def product_ids(self) -> list[int]:
        """Every product known to the reference data or held in the table here, sorted."""
        reference = self.reference()
        known = set(reference.skus) if reference is not None else set()
        return sorted(known.union(self._ledger.product_ids()))

    def state(self, product_id: int) -> StockState | None:
        """The product's stock as this worker's table holds it; None when it holds none."""
        return self._ledger.state(product_id)

    def states(self) -> dict[int, StockState]:
        """Every product's stock that this worker's table holds, by product_id."""
        found = (self._ledger.state(product_id) for product_id in self._ledger.product_ids())
        return {state.product_id: state for state in found if state is not None}

    async def item(self, product_id: int) -> dict[str, Any]:
        """The JSON item of one product."""
        reference = self.reference()
        sku = reference.skus.get(product_id, "") if reference is not None else ""
        return product_item(product_id, sku, self.state(product_id))

    async def listing(self, page: Page) -> dict[str, Any]:
        """One page of ``GET /inventory/``: keys are sorted first, so only the page's values are decoded.

        Reads this worker's table: complete when one worker owns every partition, as in this project's runs. With
        more workers each would list only the products it owns (gathering the others' pages is not built).
        """
        product_ids = self.product_ids()
        return page.body([await self.item(product_id) for product_id in page.of(product_ids)], len(product_ids))

    async def warehouse(self, warehouse_id: int, page: Page) -> dict[str, Any] | None:
        """Decodes every row of this worker's table (a warehouse's products are spread over all partitions), so
        it is complete on a single worker, like ``listing``."""
        reference = self.reference()
        assert reference is not None
        warehouse = reference.warehouses.get(warehouse_id)
        if warehouse is None:
            return None
        kept = [product_id for product_id, kept_in in reference.opening if kept_in == warehouse_id]
        items = warehouse_items(warehouse_id, self.states(), reference.skus, kept)
        return {"warehouse": warehouse._asdict(), **page.body(page.of(items), len(items))}

    def route(self, product_id: int) -> tuple[str, bytes] | None:
        """The table and the raw key of the product (see ``SkuView``)."""
        return self.table_name, self.route_key(product_id)

    @staticmethod
    def route_key(product_id: int) -> bytes:
        """The key Faust's router must hash to find the worker holding ``product_id`` (see ``SkuView``)."""
        return str(product_id).encode()


class PostgresStockReader:
    """The Postgres rows (CANON_INVENTORY=postgres): ``inventory`` and ``warehouse_inventory``, the stock itself.

    Every worker can answer for every product: nothing is routed. The pool is opened by ``start``, once the
    reference schema exists, and closed by ``stop``.
    """

    def __init__(self, dsn: str) -> None:
        self._dsn = dsn
        self._reads: InventoryReads | None = None
        self._stopped = False

    async def start(self) -> None:
        """Open the pool, retrying while Postgres does not answer."""
        self._reads = await until_done(lambda: InventoryReads.open(self._dsn), "opening the inventory views' pool")

    async def stop(self) -> None:
        """Close the pool; the views answer 503 from now on."""
        self._stopped = True
        reads, self._reads = self._reads, None
        if reads is not None:
            await reads.close()

    def unavailable(self) -> str | None:
        """STOPPING once stopped, NOT_READY until the pool is open."""
        if self._stopped:
            return STOPPING
        return NOT_READY if self._reads is None else None

    def _db(self) -> InventoryReads:
        assert self._reads is not None, "read before start()"
        return self._reads

    async def listing(self, page: Page) -> dict[str, Any]:
        """One page of products with an ``inventory`` row, by product_id."""
        total = await self._db().product_count()
        states = await self._db().products((page.number - 1) * page.size, page.size)
        return page.body([product_item(state.product_id, state.sku, state) for state in states], total)

    async def product_of(self, sku: str) -> int | None:
        """The product_id of ``sku``; None for an unknown SKU."""
        return await self._db().product_of(sku)

    async def item(self, product_id: int) -> dict[str, Any]:
        """The JSON item of one product: every warehouse row of it, zeros included."""
        state = await self._db().product(product_id)
        return product_item(product_id, state.sku if state is not None else "", state)

    async def warehouse(self, warehouse_id: int, page: Page) -> dict[str, Any] | None:
        """One page of the warehouse's ``warehouse_inventory`` rows, by product_id."""
        warehouse = await self._db().warehouse(warehouse_id)
        if warehouse is None:
            return None
        total = await self._db().warehouse_count(warehouse_id)
        rows = await self._db().warehouse_stock(warehouse_id, (page.number - 1) * page.size, page.size)
        items = [warehouse_item(product_id, sku, stock) for product_id, sku, stock in rows]
        return {"warehouse": warehouse._asdict(), **page.body(items, total)}

    def route(self, product_id: int) -> tuple[str, bytes] | None:
        """None: Postgres answers the same on every worker."""
        return None


class LowestStock:
    """The products with least stock available, from a read of every product's stock at most once per ``seconds``.

    A read goes through the stock source's pages (``MAX_PAGE_SIZE`` products each), keeping only the lowest
    ``MAX_LOW_STOCK`` as it goes, so its memory does not grow with the catalogue; its time does.
    """

    def __init__(
        self, stock: StockSource, seconds: float = LOW_STOCK_SECONDS, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self._stock = stock
        self._seconds = seconds
        self._clock = clock
        self._read_at: float | None = None
        self._lowest: list[Mapping[str, Any]] = []
        self._products = 0

    async def lowest(self, count: int) -> dict[str, Any]:
        """The body of ``GET /low-stock/``: the ``count`` lowest ``items`` and the number of ``products`` read."""
        now = self._clock()
        if self._read_at is None or now - self._read_at >= self._seconds:
            await self._read()
            self._read_at = now
        return {"items": self._lowest[:count], "products": self._products}

    async def _read(self) -> None:
        first = await self._stock.listing(Page(1, MAX_PAGE_SIZE))
        lowest = lowest_available(first["items"], MAX_LOW_STOCK)
        for number in range(2, first["pages"] + 1):
            page = await self._stock.listing(Page(number, MAX_PAGE_SIZE))
            lowest = lowest_available([*lowest, *page["items"]], MAX_LOW_STOCK)
        self._lowest, self._products = lowest, int(first["total"])


def inventory_source(settings: Settings, fulfilment: FulfilmentAgents | None) -> StockSource | None:
    """Where this worker's views read the stock: Postgres in postgres mode, the agents' table in kafka mode (None
    when the agents, and so the table, do not run here)."""
    if settings.canon_inventory == "postgres":
        return PostgresStockReader(settings.pg_dsn.get_secret_value())
    return StockReader(fulfilment) if fulfilment is not None else None

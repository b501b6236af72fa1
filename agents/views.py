"""Web views of the stock: JSON by product, by SKU and by warehouse, and a self-refreshing page.

They read the canonical stock of the mode: the Kafka table (CANON_INVENTORY=kafka) or the Postgres rows
(CANON_INVENTORY=postgres), through one ``StockSource`` interface, with the same JSON in both modes.
"""

from __future__ import annotations

import base64
import hashlib
import heapq
import html
import logging
import math
import re
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Protocol, cast

import faust
from faust.exceptions import SameNode
from faust.web import Request, Response, View

from agents.fulfilment import FulfilmentAgents
from agents.generation import GenerationAgent
from agents.kafka_ledger import KafkaLedger
from app.history import DERIVED_COUNTERS, WINDOW_SECONDS, History, sample_of
from app.inventory import StockState, WarehouseStock
from app.metrics import agent_meters
from app.retry import until_done
from app.settings import Settings
from app.stats import EmissionStats
from db.inventory_reads import InventoryReads
from db.stock_reference import StockReference

log = logging.getLogger(__name__)

DEFAULT_PAGE_SIZE = 50
MAX_PAGE_SIZE = 500
#: ``GET /stats/history/?step=N``: seconds (samples) per point, by default and at most.
HISTORY_STEP = 5
MAX_HISTORY_STEP = 60
#: ``GET /low-stock/?n=N``: products listed, by default and at most; every product is read at most this often.
LOW_STOCK_COUNT = 10
MAX_LOW_STOCK = 100
LOW_STOCK_SECONDS = 5.0
#: What the inventory views answer (503) in kafka mode on a worker without the agents, which hold the table.
NO_TABLE = "inventory views need the fulfilment agents in kafka mode: this worker runs with AGENTS_ENABLED=false"
NOT_READY = "inventory not ready: the worker is still loading the reference data"
STOPPING = "inventory not available: the worker is stopping"
#: What a request that failed unexpectedly is told; the details go to the worker's log only.
INTERNAL_ERROR = "internal error: see the worker's log"
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


# ----- the HTML page: rendered here once, then refreshed by its own script from the JSON views

REFRESH_MS = 2000
#: The history's points on the page: one per this many seconds.
PAGE_STEP_SECONDS = 5
#: How many of the products with least available stock the page lists and marks.
PAGE_LOW_STOCK = 10
_STYLE = """
body { font: 14px/1.4 system-ui, sans-serif; margin: 1.5rem; color: #222; }
h1 { font-size: 1.3rem; } h2 { font-size: 1.1rem; margin-top: 1.5rem; }
table { border-collapse: collapse; } th, td { padding: .2rem .7rem; border-bottom: 1px solid #ddd; }
th { text-align: left; background: #f3f3f3; } td.n { text-align: right; font-variant-numeric: tabular-nums; }
#notice { color: #a00; } #notice:empty { display: none; } .muted { color: #777; }
svg.chart { display: block; width: 100%; max-width: 960px; height: auto; border: 1px solid #e4e4e4; }
svg.chart text { font: 11px system-ui, sans-serif; fill: #555; }
ul.legend { list-style: none; padding: 0; margin: .4rem 0; max-width: 960px; }
ul.legend li { display: inline-block; margin: 0 1.2rem .2rem 0; white-space: nowrap; }
ul.legend svg { vertical-align: middle; margin-right: .3rem; }
ul.legend .n { font-variant-numeric: tabular-nums; color: #555; }
tr.low td { background: #fff1cc; } tr.out td { background: #fbd5d5; }
td.mark { font-weight: 600; color: #9a3b00; } tr.out td.mark { color: #a00; }
"""
#: The page's script: drawn with the DOM and inline SVG only. Its text must not hold a URL (see the unit tests):
#: the SVG namespace is read from the page's own chart element.
_SCRIPT_BODY = """
const SVG_NS = document.getElementById("rate-chart").namespaceURI;
const COLOURS = ["#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#17becf"];
let lowest = new Map();
function setText(id, text) { document.getElementById(id).textContent = text; }
function row(cells) {
  const tr = document.createElement("tr");
  for (const [text, numeric] of cells) {
    const td = document.createElement("td");
    td.textContent = String(text);
    if (numeric) td.className = "n";
    tr.appendChild(td);
  }
  return tr;
}
function replaceRows(id, rows) {
  const body = document.createElement("tbody");
  body.id = id;
  rows.forEach((tr) => body.appendChild(tr));
  document.getElementById(id).replaceWith(body);
}
function showInventory(page) {
  replaceRows("inventory-rows", page.items.map((item) => {
    const where = item.warehouses.map((w) => w.warehouse_id + ": " + w.on_hand).join(", ");
    const tr = row([[item.product_id, true], [item.sku, false], [item.on_hand, true], [item.reserved, true],
                    [item.available, true], [where, false]]);
    tr.dataset.productId = String(item.product_id);
    return tr;
  }));
  setText("inventory-shown", String(page.items.length));
  setText("inventory-total", String(page.total));
}
function showStats(stats) {
  const topics = Object.entries(stats.topics || {});
  replaceRows("rate-rows", topics.map(([topic, t]) => row([[topic, false], [t.rate_10s.toFixed(1), true],
                                                               [t.emitted, true]])));
  setText("rate-total", Number(stats.rate_10s || 0).toFixed(1));
  setText("dead-letters", String((stats.agents || {})["dead letters"] || 0));
  setText("backlog", String((stats.ledger || {}).backlog || 0));
  setText("shards", (stats.shards || []).join(", ") || "none");
  if (stats.group) {
    setText("group-rate", Number(stats.group.rate_10s || 0).toFixed(1));
    setText("group-target", Number(stats.group.target_eps || 0).toFixed(1));
    setText("group-workers", String(stats.group.workers.length));
  }
}
function svg(parent, name, attributes) {
  const node = document.createElementNS(SVG_NS, name);
  for (const [key, value] of Object.entries(attributes)) node.setAttribute(key, String(value));
  parent.appendChild(node);
  return node;
}
function roundUp(value) {
  if (!(value > 0)) return 1;
  const power = Math.pow(10, Math.floor(Math.log10(value)));
  return [1, 2, 2.5, 5, 10].map((m) => m * power).find((top) => top >= value);
}
function label(value) { return value >= 1000 ? (value / 1000) + "k" : String(Math.round(value * 100) / 100); }
function drawChart(id, times, windowMs, lines) {
  const chart = document.getElementById(id);
  const box = chart.viewBox.baseVal;
  const left = 56, right = 14, top = 10, bottom = 24;
  const width = box.width - left - right, height = box.height - top - bottom;
  const end = times.length ? times[times.length - 1] : 0;
  const highest = roundUp(lines.reduce((most, line) => line.values.reduce((m, v) => Math.max(m, v), most), 0));
  const x = (t) => (left + width * (1 - (end - t) / windowMs)).toFixed(1);
  const y = (v) => (top + height * (1 - v / highest)).toFixed(1);
  chart.replaceChildren();
  for (let i = 0; i <= 4; i++) {
    const value = highest * i / 4;
    svg(chart, "line", {x1: left, x2: left + width, y1: y(value), y2: y(value), stroke: i ? "#eeeeee" : "#999999"});
    svg(chart, "text", {x: left - 6, y: Number(y(value)) + 4, "text-anchor": "end"}).textContent = label(value);
  }
  const minutes = windowMs / 60000;
  for (let m = 0; m <= minutes; m += 2) {
    const at = left + width * (1 - m / minutes);
    svg(chart, "line", {x1: at, x2: at, y1: top, y2: top + height, stroke: "#f2f2f2"});
    const text = svg(chart, "text", {x: at, y: top + height + 16, "text-anchor": m ? "middle" : "end"});
    text.textContent = m ? "-" + m + " min" : "now";
  }
  for (const line of lines) {
    const drawn = line.values.map((v, i) => x(times[i]) + "," + y(v)).join(" ");
    svg(chart, "polyline", {points: drawn, fill: "none", stroke: line.colour, "stroke-width": line.width || 2,
                            "stroke-dasharray": line.dashed ? "7 4" : "none", "stroke-linejoin": "round",
                            "data-series": line.name});
  }
}
function drawLegend(id, lines, unit) {
  const legend = document.getElementById(id);
  legend.replaceChildren(...lines.map((line) => {
    const item = document.createElement("li");
    item.dataset.series = line.name;
    const swatch = document.createElementNS(SVG_NS, "svg");
    swatch.setAttribute("width", "22");
    swatch.setAttribute("height", "10");
    svg(swatch, "line", {x1: 0, x2: 22, y1: 5, y2: 5, stroke: line.colour, "stroke-width": 3,
                         "stroke-dasharray": line.dashed ? "5 3" : "none"});
    const now = document.createElement("span");
    now.className = "n";
    now.textContent = " " + (line.values.length ? label(line.values[line.values.length - 1]) : "-") + unit;
    item.append(swatch, line.name, now);
    return item;
  }));
}
function showHistory(history) {
  const lines = history.series.map((s, i) => ({name: s.name, values: history.rates[s.name],
                                               colour: COLOURS[i % COLOURS.length]}));
  lines.push({name: "generated, all topics", values: history.generated_eps, colour: "#888888", width: 3});
  lines.push({name: "target (generator)", values: history.target_eps, colour: "#000000", dashed: true});
  const windowMs = history.window_s * 1000;
  drawChart("rate-chart", history.times, windowMs, lines);
  drawLegend("rate-legend", lines, "/s");
  const backlog = [{name: "orders waiting for stock", values: history.backlog, colour: "#d62728"}];
  drawChart("backlog-chart", history.times, windowMs, backlog);
  drawLegend("backlog-legend", backlog, "");
  const missing = history.not_counted;
  setText("not-counted", missing.length ? "Not counted by the agents here, so not drawn: " + missing.join(", ") : "");
  const reasons = Object.entries(history.dead_letters.by_reason).sort((a, b) => b[1] - a[1]);
  if (!reasons.length) reasons.push(["all reasons (not counted by reason)", history.dead_letters.total]);
  replaceRows("dead-letter-rows", reasons.map(([reason, count]) => row([[reason, false], [count, true]])));
}
function showLowest(body) {
  lowest = new Map(body.items.map((item) => [item.product_id, item.available]));
  replaceRows("low-stock-rows", body.items.map((item) => {
    const out = item.available <= 0;
    const tr = row([[out ? "out of stock" : "low", false], [item.product_id, true], [item.sku, false],
                    [item.available, true], [item.on_hand, true], [item.reserved, true]]);
    tr.className = out ? "low out" : "low";
    tr.firstChild.className = "mark";
    tr.dataset.productId = String(item.product_id);
    return tr;
  }));
  setText("low-stock-of", String(body.products));
}
function markLowest() {
  for (const tr of document.querySelectorAll("#inventory-rows tr")) {
    const available = lowest.get(Number(tr.dataset.productId));
    tr.classList.toggle("low", available !== undefined);
    tr.classList.toggle("out", available !== undefined && available <= 0);
  }
}
async function getJson(path) {
  const response = await fetch(path, {cache: "no-store"});
  const body = await response.json();
  if (!response.ok) throw new Error(body.error || String(response.status));
  return body;
}
async function refresh() {
  const problems = [];
  const sources = [[INVENTORY_PATH, showInventory], ["/stats/", showStats], [HISTORY_PATH, showHistory],
                   [LOW_STOCK_PATH, showLowest]];
  for (const [path, show] of sources) {
    try { show(await getJson(path)); } catch (e) { problems.push(path + ": " + e.message); }
  }
  markLowest();
  setText("notice", problems.join("; "));
  setText("updated", new Date().toISOString());
  setTimeout(refresh, REFRESH_MS);
}
refresh();
"""
_SCRIPT = f"""
"use strict";
const REFRESH_MS = {REFRESH_MS};
const INVENTORY_PATH = "/inventory/?size={DEFAULT_PAGE_SIZE}";
const HISTORY_PATH = "/stats/history/?step={PAGE_STEP_SECONDS}";
const LOW_STOCK_PATH = "/low-stock/?n={PAGE_LOW_STOCK}";{_SCRIPT_BODY}"""


def _digest(source: str) -> str:
    return "'sha256-" + base64.b64encode(hashlib.sha256(source.encode()).digest()).decode() + "'"


#: Nothing but this page's own inline style and script, and requests to this worker.
CONTENT_SECURITY_POLICY = (
    f"default-src 'none'; style-src {_digest(_STYLE)}; script-src {_digest(_SCRIPT)}; connect-src 'self'"
)


def _cells(values: Iterable[tuple[object, bool]]) -> str:
    """Table cells of escaped values, the numeric ones (True) aligned right."""
    return "".join(
        ('<td class="n">' if numeric else "<td>") + html.escape(str(value)) + "</td>" for value, numeric in values
    )


def inventory_rows(items: Iterable[Mapping[str, Any]]) -> str:
    """The inventory table's rows, as the page's script draws them too."""
    rows = []
    for item in items:
        where = ", ".join(f"{w['warehouse_id']}: {w['on_hand']}" for w in item["warehouses"])
        numbers = [(item[name], True) for name in ("on_hand", "reserved", "available")]
        cells = _cells([(item["product_id"], True), (item["sku"], False), *numbers, (where, False)])
        rows.append(f'<tr data-product-id="{html.escape(str(item["product_id"]))}">{cells}</tr>')
    return "\n".join(rows)


def rate_rows(report: Mapping[str, Any]) -> str:
    """Per topic, the events per second over the last 10 s and the events emitted."""
    topics: Mapping[str, Mapping[str, Any]] = report.get("topics") or {}
    return "\n".join(
        f"<tr>{_cells([(topic, False), (format(meter['rate_10s'], '.1f'), True), (meter['emitted'], True)])}</tr>"
        for topic, meter in topics.items()
    )


def shard_list(report: Mapping[str, Any]) -> str:
    """The generation shards this worker emits, as the page shows them."""
    return ", ".join(str(shard) for shard in report.get("shards") or []) or "none"


def render_page(inventory: Mapping[str, Any] | None, notice: str, report: Mapping[str, Any], dead_letters: int) -> str:
    """The HTML page: ``inventory`` is the first page of ``GET /inventory/`` (None with a ``notice`` instead)."""
    items = inventory["items"] if inventory is not None else []
    total = inventory["total"] if inventory is not None else 0
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>retail-datagen: inventory</title>
<style>{_STYLE}</style></head>
<body>
<h1>retail-datagen: inventory</h1>
<p class="muted">Refreshes every {REFRESH_MS // 1000} s; last update <span id="updated">at load</span>.</p>
<p id="notice">{html.escape(notice)}</p>
<h2>Event rates, last {WINDOW_SECONDS // 60} minutes</h2>
<p class="muted">Events per second on each topic, one point per {PAGE_STEP_SECONDS} s: what the generator emitted
(its target dashed) and what the agents wrote to the derived topics.</p>
<svg id="rate-chart" class="chart" viewBox="0 0 960 300" role="img"
aria-label="events per second by topic over the last minutes"></svg>
<ul id="rate-legend" class="legend"></ul>
<p id="not-counted" class="muted"></p>
<table id="rates"><thead><tr><th>topic</th><th>events/s (10 s)</th><th>emitted</th></tr></thead>
<tbody id="rate-rows">
{rate_rows(report)}
</tbody></table>
<p>All topics: <span id="rate-total">{float(report.get("rate_10s") or 0):.1f}</span> events/s.
Dead letters: <strong id="dead-letters">{dead_letters}</strong>.
Orders waiting for stock: <strong id="backlog">{int((report.get("ledger") or {}).get("backlog") or 0)}</strong>.</p>
<p>Generation shards emitted here: <span id="shards">{html.escape(shard_list(report))}</span>.
All workers of the group: <span id="group-rate">-</span> events/s of a target of
<span id="group-target">{float(report.get("group_target_eps") or 0):.1f}</span>, from
<span id="group-workers">-</span> worker(s).</p>
<h2>Backlog and dead letters</h2>
<svg id="backlog-chart" class="chart" viewBox="0 0 960 130" role="img"
aria-label="orders waiting for stock over the last minutes"></svg>
<ul id="backlog-legend" class="legend"></ul>
<table id="dead-letter-reasons"><thead><tr><th>dead letters by reason</th><th>count</th></tr></thead>
<tbody id="dead-letter-rows"></tbody></table>
<h2>Lowest stock</h2>
<p class="muted">The {PAGE_LOW_STOCK} products with least stock available over all warehouses, of
<span id="low-stock-of">-</span>; marked in the inventory below when it shows them.</p>
<table id="low-stock"><thead><tr><th></th><th>product</th><th>sku</th><th>available</th><th>on hand</th>
<th>reserved</th></tr></thead>
<tbody id="low-stock-rows"></tbody></table>
<h2>Inventory</h2>
<p class="muted"><span id="inventory-shown">{len(items)}</span> of
<span id="inventory-total">{int(total)}</span> products, by product id.</p>
<table id="inventory"><thead><tr><th>product</th><th>sku</th><th>on hand</th><th>reserved</th><th>available</th>
<th>on hand by warehouse</th></tr></thead>
<tbody id="inventory-rows">
{inventory_rows(items)}
</tbody></table>
<script>{_SCRIPT}</script>
</body></html>
"""


# ----- where the views read the stock: the Kafka table or Postgres


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
        self._ledger = cast(KafkaLedger, fulfilment.ledger)
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


# ----- the edge: Faust views


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
            count = whole_number("n", request.query["n"], 1, MAX_LOW_STOCK) if "n" in request.query else LOW_STOCK_COUNT
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

"""The HTML page of ``GET /``: rendered once from the files in ``static/``, then refreshed by its own script.

``page.html`` is a ``string.Template``; ``page.css`` and ``page.js`` go inline into it, so the Content Security
Policy can allow exactly them by digest. ``page.js`` reads four constants that ``SCRIPT`` declares before it:
``REFRESH_MS``, ``INVENTORY_PATH``, ``HISTORY_PATH`` and ``LOW_STOCK_PATH``. Its text must not hold a URL (see
the unit tests): the SVG namespace is read from the page's own chart element.
"""

from __future__ import annotations

import base64
import hashlib
import html
from collections.abc import Iterable, Mapping
from importlib.resources import files
from string import Template
from typing import Any

from app.history import WINDOW_SECONDS
from app.web.shaping import DEFAULT_PAGE_SIZE

REFRESH_MS = 2000
#: The history's points on the page: one per this many seconds.
PAGE_STEP_SECONDS = 5
#: How many of the products with least available stock the page lists and marks.
PAGE_LOW_STOCK = 10


def _static(name: str) -> str:
    """The text of ``static/<name>``, shipped with the package."""
    return (files("app.web") / "static" / name).read_text(encoding="utf-8")


STYLE = "\n" + _static("page.css")
#: The page's script: drawn with the DOM and inline SVG only.
SCRIPT = f"""
"use strict";
const REFRESH_MS = {REFRESH_MS};
const INVENTORY_PATH = "/inventory/?size={DEFAULT_PAGE_SIZE}";
const HISTORY_PATH = "/stats/history/?step={PAGE_STEP_SECONDS}";
const LOW_STOCK_PATH = "/low-stock/?n={PAGE_LOW_STOCK}";
{_static("page.js")}"""
_PAGE = Template(_static("page.html"))


def _digest(source: str) -> str:
    return "'sha256-" + base64.b64encode(hashlib.sha256(source.encode()).digest()).decode() + "'"


#: Nothing but this page's own inline style and script, and requests to this worker.
CONTENT_SECURITY_POLICY = (
    f"default-src 'none'; style-src {_digest(STYLE)}; script-src {_digest(SCRIPT)}; connect-src 'self'"
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
    return _PAGE.substitute(
        style=STYLE,
        refresh_seconds=REFRESH_MS // 1000,
        notice=html.escape(notice),
        window_minutes=WINDOW_SECONDS // 60,
        step_seconds=PAGE_STEP_SECONDS,
        rate_rows=rate_rows(report),
        rate_total=f"{float(report.get('rate_10s') or 0):.1f}",
        dead_letters=dead_letters,
        backlog=int((report.get("ledger") or {}).get("backlog") or 0),
        shards=html.escape(shard_list(report)),
        group_target=f"{float(report.get('group_target_eps') or 0):.1f}",
        low_stock=PAGE_LOW_STOCK,
        inventory_shown=len(items),
        inventory_total=int(total),
        inventory_rows=inventory_rows(items),
        script=SCRIPT,
    )

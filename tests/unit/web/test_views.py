"""The pure parts of the inventory views: paging, row shaping, the HTML page."""

from __future__ import annotations

import base64
import hashlib
import re
import subprocess
import sys
from pathlib import Path

import pytest

from app.inventory import StockState, WarehouseStock
from app.web.page import CONTENT_SECURITY_POLICY, render_page
from app.web.shaping import (
    MAX_PAGE_SIZE,
    BadParameter,
    Page,
    iso_utc,
    parse_page,
    product_item,
    warehouse_items,
    whole_number,
)

ROOT = Path(__file__).resolve().parents[3]

STATE = StockState(
    product_id=7,
    sku="SKU-7",
    warehouses={3: WarehouseStock(4, 1, 86_400_000), 1: WarehouseStock(10, 2, None)},
)


def test_default_page() -> None:
    assert parse_page({}) == Page(1, 50)


def test_page_and_size_from_the_query() -> None:
    assert parse_page({"page": "3", "size": str(MAX_PAGE_SIZE)}) == Page(3, MAX_PAGE_SIZE)


@pytest.mark.parametrize(
    ("query", "named"),
    [
        ({"page": "0"}, "page"),
        ({"page": "-1"}, "page"),
        ({"page": "abc"}, "page"),
        ({"page": "1.5"}, "page"),
        ({"page": " 1"}, "page"),
        ({"page": ""}, "page"),
        ({"page": "\u0661"}, "page"),  # an Arabic-Indic one: int() takes it, the view does not
        ({"page": "9" * 10}, "page"),
        ({"size": "0"}, "size"),
        ({"size": str(MAX_PAGE_SIZE + 1)}, "size"),
        ({"size": "+5"}, "size"),
    ],
)
def test_malformed_or_out_of_range_parameters_are_refused_by_name(query: dict[str, str], named: str) -> None:
    with pytest.raises(BadParameter, match=f"^{named}: expected a whole number"):
        parse_page(query)


def test_whole_number_quotes_a_long_value_shortened() -> None:
    with pytest.raises(BadParameter) as refused:
        whole_number("warehouse id", "x" * 1000, 0)
    assert len(str(refused.value)) < 120


def test_a_page_slices_the_listing_and_counts_pages() -> None:
    page = Page(2, 3)
    assert page.of(list(range(8))) == [3, 4, 5]
    assert page.body([], 8) == {"items": [], "total": 8, "page": 2, "size": 3, "pages": 3}


def test_a_page_past_the_end_is_empty() -> None:
    assert Page(4, 3).of(list(range(8))) == []
    assert Page(1, 50).body([], 0)["pages"] == 0


def test_iso_utc() -> None:
    assert iso_utc(86_400_123) == "1970-01-02T00:00:00.123+00:00"
    assert iso_utc(None) is None


def test_product_item_sums_the_warehouses_in_order() -> None:
    assert product_item(7, "ignored", STATE) == {
        "product_id": 7,
        "sku": "SKU-7",
        "on_hand": 14,
        "reserved": 3,
        "available": 11,
        "warehouses": [
            {"warehouse_id": 1, "on_hand": 10, "reserved": 2, "updated_at": None},
            {"warehouse_id": 3, "on_hand": 4, "reserved": 1, "updated_at": "1970-01-02T00:00:00.000+00:00"},
        ],
    }


def test_a_known_product_without_stock_is_all_zero() -> None:
    assert product_item(9, "SKU-9", None) == {
        "product_id": 9,
        "sku": "SKU-9",
        "on_hand": 0,
        "reserved": 0,
        "available": 0,
        "warehouses": [],
    }


def test_warehouse_items_cover_what_is_kept_there_and_what_it_holds() -> None:
    other = StockState(product_id=2, sku="SKU-2", warehouses={1: WarehouseStock(5, 0, 1)})
    items = warehouse_items(3, {7: STATE, 2: other}, {5: "SKU-5", 7: "SKU-7"}, kept=[5])
    assert items == [
        {"product_id": 5, "sku": "SKU-5", "on_hand": 0, "reserved": 0, "available": 0, "updated_at": None},
        {
            "product_id": 7,
            "sku": "SKU-7",
            "on_hand": 4,
            "reserved": 1,
            "available": 3,
            "updated_at": "1970-01-02T00:00:00.000+00:00",
        },
    ]


REPORT = {
    "rate_10s": 12.34,
    "shards": [0, 5, 11],
    "group_target_eps": 250.0,
    "agents": {"dead letters": 4},
    "topics": {"orders.x": {"emitted": 100, "rate_10s": 9.87, "rate_60s": 1.0}},
}


def _page(sku: str = "SKU-7", notice: str = "") -> str:
    item = product_item(7, sku, StockState(7, sku, STATE.warehouses))
    return render_page(Page().body([item], 1), notice, REPORT, dead_letters=4)


def test_the_page_shows_inventory_rates_and_dead_letters() -> None:
    page = _page()
    assert '<tr data-product-id="7"><td class="n">7</td><td>SKU-7</td><td class="n">14</td>' in page
    assert "<td>1: 10, 3: 4</td>" in page
    assert '<td>orders.x</td><td class="n">9.9</td><td class="n">100</td>' in page
    assert '<span id="rate-total">12.3</span>' in page
    assert '<strong id="dead-letters">4</strong>' in page
    assert '<span id="shards">0, 5, 11</span>' in page
    assert '<span id="group-target">250.0</span>' in page


def test_the_page_escapes_what_it_renders() -> None:
    page = _page(sku="<script>alert(1)</script>", notice="a <b> & c")
    assert "<script>alert(1)" not in page
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page
    assert '<p id="notice">a &lt;b&gt; &amp; c</p>' in page


def test_the_page_without_inventory_shows_the_notice_and_an_empty_table() -> None:
    page = render_page(None, "inventory views need CANON_INVENTORY=kafka", REPORT, dead_letters=0)
    assert "<tr data-product-id" not in page
    assert "inventory views need CANON_INVENTORY=kafka" in page


def test_the_page_loads_nothing_from_elsewhere() -> None:
    page = _page()
    assert not re.search(r"\b(src|href)=|https?:|//[a-z]", page, re.IGNORECASE)
    assert page.count("<script>") == 1


def test_the_content_security_policy_allows_exactly_the_inline_style_and_script() -> None:
    page = _page()
    for tag in ("style", "script"):
        body = re.search(f"<{tag}>(.*?)</{tag}>", page, re.DOTALL)
        assert body is not None
        digest = base64.b64encode(hashlib.sha256(body.group(1).encode()).digest()).decode()
        assert f"{tag}-src 'sha256-{digest}'" in CONTENT_SECURITY_POLICY
    assert CONTENT_SECURITY_POLICY.startswith("default-src 'none';")


def test_the_shaping_and_the_page_import_no_io_library_and_no_agent() -> None:
    probe = "import sys, app.web.shaping, app.web.page; print(' '.join(sorted(sys.modules)))"
    run = subprocess.run([sys.executable, "-c", probe], check=True, capture_output=True, text=True, cwd=ROOT)
    loaded = {name.split(".")[0] for name in run.stdout.split()}
    assert not loaded & {"faust", "confluent_kafka", "aiopg", "psycopg2", "aiohttp", "mode", "aiokafka", "agents", "db"}

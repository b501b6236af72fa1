"""Stock: per warehouse and product from expected demand and the primary supplier's lead time; per product the sum.

A product's daily demand is its popularity share of the shop's daily units; a warehouse takes its throughput's
share of that. The reorder point covers the lead time plus safety days, the reorder quantity a month, in cases.
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass

from app.reference.geography import WarehouseSite
from app.reference.rows import InventoryRow, ProductRow, ProductSupplierRow, WarehouseInventoryRow, WarehouseRow

#: The shop sells this many units a day per product in its catalogue.
DAILY_UNITS_PER_PRODUCT = 3.0
SAFETY_DAYS = 7
COVER_DAYS = 30
CASE_PACK = 6
#: Share of warehouse stock lines that are out of stock.
STOCKOUT_RATE = 0.04
#: Reserved stock: up to this many days of demand awaiting shipment.
RESERVED_DAYS = 2
#: Capacity is the stock at its peak (reorder point + quantity) over this utilisation, in thousands of units.
PEAK_UTILISATION = (4, 5)


@dataclass(frozen=True)
class Stock:
    """The warehouses, the per-warehouse stock and the per-product totals, which agree."""

    warehouses: list[WarehouseRow]
    warehouse_inventory: list[WarehouseInventoryRow]
    inventory: list[InventoryRow]


def _ceil_to(value: int, step: int) -> int:
    return -(-value // step) * step


def _stock_line(
    warehouse_id: int, product_id: int, daily: float, lead_days: int, rng: random.Random
) -> WarehouseInventoryRow:
    reorder_point = math.ceil(daily * (lead_days + SAFETY_DAYS))
    reorder_qty = _ceil_to(max(1, math.ceil(daily * COVER_DAYS)), CASE_PACK)
    on_hand = 0 if rng.random() < STOCKOUT_RATE else rng.randint(reorder_point // 3, reorder_point + reorder_qty)
    reserved = rng.randint(0, min(on_hand, math.ceil(daily * RESERVED_DAYS)))
    return WarehouseInventoryRow(warehouse_id, product_id, on_hand, reserved, reorder_point, reorder_qty)


def _warehouse(warehouse_id: int, site: WarehouseSite, peak_units: int) -> WarehouseRow:
    numerator, denominator = PEAK_UTILISATION
    capacity = max(1000, _ceil_to(-(-peak_units * denominator // numerator), 1000))
    code = f"FC-{site.region.upper()}"
    return WarehouseRow(warehouse_id, code, f"{site.city} Fulfillment Center", site.region, site.city, site.country,
                        capacity)


def generate_stock(
    products: list[ProductRow], links: list[ProductSupplierRow], sites: tuple[WarehouseSite, ...], rng: random.Random
) -> Stock:
    """Every product stocked in every warehouse (possibly at zero), and each product's totals."""
    lead_days = {link.product_id: link.lead_time_days for link in links if link.is_primary}
    total_throughput = math.fsum(site.throughput for site in sites)
    shop_daily = DAILY_UNITS_PER_PRODUCT * len(products)
    peaks = [0] * len(sites)
    lines: list[WarehouseInventoryRow] = []
    totals: list[InventoryRow] = []
    for product in products:
        product_lines = []
        for index, site in enumerate(sites):
            daily = product.popularity * shop_daily * (site.throughput / total_throughput)
            line = _stock_line(index + 1, product.product_id, daily, lead_days[product.product_id], rng)
            peaks[index] += line.reorder_point + line.reorder_qty
            product_lines.append(line)
        lines.extend(product_lines)
        totals.append(
            InventoryRow(
                product.product_id,
                product.sku,
                sum(line.on_hand for line in product_lines),
                sum(line.reserved for line in product_lines),
                sum(line.reorder_point for line in product_lines),
                sum(line.reorder_qty for line in product_lines),
            )
        )
    warehouses = [_warehouse(index + 1, site, peaks[index]) for index, site in enumerate(sites)]
    return Stock(warehouses, lines, totals)

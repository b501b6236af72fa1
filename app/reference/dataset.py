"""The whole reference data set: eight tables from sizes, a seeded random.Random and a reference date."""

from __future__ import annotations

import random
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime

from app.reference.geography import WAREHOUSE_SITES
from app.reference.inventory import Stock, generate_stock
from app.reference.products import generate_products
from app.reference.rows import (
    CustomerSegmentRow,
    InventoryRow,
    ProductRow,
    ProductSupplierRow,
    SupplierRow,
    UserRow,
    WarehouseInventoryRow,
    WarehouseRow,
)
from app.reference.segments import SEGMENTS
from app.reference.sizes import Sizes
from app.reference.suppliers import Supplier, generate_product_suppliers, generate_suppliers
from app.reference.users import generate_users

#: Bump when the same seed and sizes would give different rows: the database records it with each seed.
GENERATOR_VERSION = 1
#: "Today" for the seed: signup dates and tenures count back from it, and seeded rows are stamped with it.
#: Fixed, not the wall clock, so that a seed gives the same rows whenever it runs.
REFERENCE_DATE = date(2025, 1, 1)


@dataclass(frozen=True)
class Table:
    """One table's name, its columns in order, and its rows (tuples in that column order), maybe lazy."""

    name: str
    columns: tuple[str, ...]
    rows: Iterable[tuple[object, ...]]


@dataclass(frozen=True)
class ReferenceData:
    """The rows of the eight tables, all in memory."""

    as_of: datetime
    customer_segments: list[CustomerSegmentRow]
    users: list[UserRow]
    warehouses: list[WarehouseRow]
    suppliers: list[SupplierRow]
    products: list[ProductRow]
    product_suppliers: list[ProductSupplierRow]
    inventory: list[InventoryRow]
    warehouse_inventory: list[WarehouseInventoryRow]

    def tables(self) -> list[Table]:
        """Every table, parents before children: the order of ``reference_tables``."""
        return [
            Table("customer_segments", CustomerSegmentRow._fields, self.customer_segments),
            Table("users", UserRow._fields, self.users),
            Table("warehouses", WarehouseRow._fields, self.warehouses),
            Table("suppliers", SupplierRow._fields, self.suppliers),
            Table("products", ProductRow._fields, self.products),
            Table("product_suppliers", ProductSupplierRow._fields, self.product_suppliers),
            Table("inventory", InventoryRow._fields, self.inventory),
            Table("warehouse_inventory", WarehouseInventoryRow._fields, self.warehouse_inventory),
        ]


@dataclass(frozen=True)
class _Streams:
    """One generator per table, seeded from the caller's in a fixed order: changing how one table is made
    leaves the others as they were, and the tables can be made in any order."""

    users: random.Random
    products: random.Random
    suppliers: random.Random
    links: random.Random
    stock: random.Random

    @classmethod
    def split(cls, rng: random.Random) -> _Streams:
        return cls(*(random.Random(rng.getrandbits(64)) for _ in range(5)))


@dataclass(frozen=True)
class _Catalogue:
    products: list[ProductRow]
    suppliers: list[Supplier]
    links: list[ProductSupplierRow]
    stock: Stock

    @classmethod
    def make(cls, sizes: Sizes, streams: _Streams) -> _Catalogue:
        products = generate_products(sizes.products, streams.products)
        suppliers = generate_suppliers(sizes.suppliers, streams.suppliers)
        links = generate_product_suppliers(products, suppliers, streams.links)
        stock = generate_stock(products, links, WAREHOUSE_SITES[: sizes.warehouses], streams.stock)
        return cls(products, suppliers, links, stock)


def reference_instant(reference_date: date) -> datetime:
    """Midnight UTC of the reference date: the created_at and updated_at of seeded rows."""
    return datetime.combine(reference_date, datetime.min.time(), tzinfo=UTC)


def reference_tables(sizes: Sizes, rng: random.Random, reference_date: date = REFERENCE_DATE) -> Iterator[Table]:
    """The eight tables, parents before children, each made as the iteration reaches it; users' rows lazily.

    For loading while generating: the same rows as ``generate_reference_data`` with the same arguments.
    """
    streams = _Streams.split(rng)
    yield Table("customer_segments", CustomerSegmentRow._fields, SEGMENTS)
    yield Table("users", UserRow._fields, generate_users(sizes.users, reference_date, streams.users))
    catalogue = _Catalogue.make(sizes, streams)
    yield Table("warehouses", WarehouseRow._fields, catalogue.stock.warehouses)
    yield Table("suppliers", SupplierRow._fields, [supplier.row for supplier in catalogue.suppliers])
    yield Table("products", ProductRow._fields, catalogue.products)
    yield Table("product_suppliers", ProductSupplierRow._fields, catalogue.links)
    yield Table("inventory", InventoryRow._fields, catalogue.stock.inventory)
    yield Table("warehouse_inventory", WarehouseInventoryRow._fields, catalogue.stock.warehouse_inventory)


def generate_reference_data(sizes: Sizes, rng: random.Random, reference_date: date = REFERENCE_DATE) -> ReferenceData:
    """The data set for ``sizes``: the same rows for the same sizes, state of ``rng`` and reference date."""
    streams = _Streams.split(rng)
    users = list(generate_users(sizes.users, reference_date, streams.users))
    catalogue = _Catalogue.make(sizes, streams)
    return ReferenceData(
        as_of=reference_instant(reference_date),
        customer_segments=list(SEGMENTS),
        users=users,
        warehouses=catalogue.stock.warehouses,
        suppliers=[supplier.row for supplier in catalogue.suppliers],
        products=catalogue.products,
        product_suppliers=catalogue.links,
        inventory=catalogue.stock.inventory,
        warehouse_inventory=catalogue.stock.warehouse_inventory,
    )

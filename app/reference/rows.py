"""One typed row per table: field names are the column names, in the order the seed writes them."""

from __future__ import annotations

from datetime import date
from typing import NamedTuple


class CustomerSegmentRow(NamedTuple):
    """A customer segment and its rule; a bound that is None does not apply."""

    segment_id: int
    code: str
    name: str
    description: str
    priority: int
    min_tenure_days: int | None
    max_tenure_days: int | None
    min_activity_bp: int | None
    max_activity_bp: int | None


class UserRow(NamedTuple):
    """A customer."""

    user_id: int
    email: str
    first_name: str
    last_name: str
    country: str
    region: str
    signup_date: date
    segment_id: int
    popularity: float


class WarehouseRow(NamedTuple):
    """A fulfilment centre, one per region."""

    warehouse_id: int
    code: str
    name: str
    region: str
    city: str
    country: str
    capacity_units: int


class SupplierRow(NamedTuple):
    """A vendor the products are bought from."""

    supplier_id: int
    name: str
    country: str
    specialty: str
    reliability: float


class ProductRow(NamedTuple):
    """A catalogue item; money in cents."""

    product_id: int
    sku: str
    name: str
    category: str
    brand: str
    price_cents: int
    #: The seeded price, kept when price_cents moves.
    list_price_cents: int
    cost_cents: int
    weight_grams: int
    popularity: float


class ProductSupplierRow(NamedTuple):
    """One supplier of one product, at its cost and lead time."""

    product_id: int
    supplier_id: int
    unit_cost_cents: int
    lead_time_days: int
    is_primary: bool


class InventoryRow(NamedTuple):
    """A product's stock over all warehouses: each quantity is the sum of its warehouse rows."""

    product_id: int
    sku: str
    on_hand: int
    reserved: int
    reorder_point: int
    reorder_qty: int


class WarehouseInventoryRow(NamedTuple):
    """A product's stock in one warehouse."""

    warehouse_id: int
    product_id: int
    on_hand: int
    reserved: int
    reorder_point: int
    reorder_qty: int

"""A product's stock: units on hand and reserved per warehouse, and the change ids already folded in."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from app.inventory.exceptions import InventoryError
from app.wire.fields import InvalidValue, integer, text

#: Change ids a state remembers by default, newest last. A change is only ever redelivered from the uncommitted
#: tail of its partition: after a crash the worker re-reads what it folded since its last offset commit (Faust
#: commits every 2.8 s by default), and a product's changes stay in order in one partition (key: product_id).
#: So a redelivered change is among the latest changes of its own product. At TARGET_EPS=500 the topic carries
#: ~275 changes/s (SALEs and background changes); the busiest of 1,000 products (~6% of demand) ~16/s, ~45 per
#: commit interval: 256 leaves a margin of 5, for ~10 KB of JSON per product. A catalogue of a few dozen
#: products at that rate needs a larger ``remember`` (``apply``'s argument) or more frequent commits.
REMEMBERED_CHANGES = 256


@dataclass(frozen=True, slots=True)
class WarehouseStock:
    """One warehouse's units of a product: 0 <= reserved <= on_hand."""

    on_hand: int = 0
    #: Units of on_hand promised to orders not yet shipped (as seeded; the fold only lowers it with on_hand).
    reserved: int = 0
    #: The latest event_time (epoch ms) of a change folded in here; None while the row is as seeded.
    updated_ms: int | None = None

    def __post_init__(self) -> None:
        if not 0 <= self.reserved <= self.on_hand:
            msg = f"warehouse stock on_hand={self.on_hand} reserved={self.reserved}: expected 0 <= reserved <= on_hand"
            raise InventoryError(msg)

    @property
    def available(self) -> int:
        """Units that can still be sold: on hand and not reserved."""
        return self.on_hand - self.reserved


@dataclass(frozen=True)
class StockState:
    """A product's stock in every warehouse it is kept in; the value of the inventory table under its SKU.

    Change it only through ``app.inventory.apply``; ``warehouses`` is read-only by convention.
    """

    product_id: int
    sku: str
    #: Stock by warehouse_id; a warehouse not in it holds none of the product.
    warehouses: Mapping[int, WarehouseStock] = field(default_factory=dict)
    #: The ids of the latest changes folded in (REMEMBERED_CHANGES unless ``apply`` was told otherwise), oldest first.
    applied: tuple[str, ...] = ()
    #: Units SALE and DAMAGE changes asked to take but were not on hand, over all changes folded in.
    clamped_units: int = 0

    def __post_init__(self) -> None:
        if self.product_id < 1 or not self.sku or self.clamped_units < 0:
            msg = f"stock state product_id={self.product_id} sku={self.sku!r} clamped_units={self.clamped_units}"
            raise InventoryError(msg + ": expected product_id >= 1, a sku, clamped_units >= 0")

    @property
    def on_hand(self) -> int:
        """Units on hand in all warehouses: inventory.on_hand."""
        return sum(stock.on_hand for stock in self.warehouses.values())

    @property
    def reserved(self) -> int:
        """Units reserved in all warehouses: inventory.reserved."""
        return sum(stock.reserved for stock in self.warehouses.values())

    def stock(self, warehouse_id: int) -> WarehouseStock:
        """The product's stock in ``warehouse_id``: none when it is not kept there."""
        return self.warehouses.get(warehouse_id, _NONE)

    def available(self) -> dict[int, int]:
        """Units that can be sold, by warehouse_id: the ``stock`` argument of ``decide_shipment``."""
        return {warehouse_id: stock.available for warehouse_id, stock in self.warehouses.items()}

    def has_applied(self, change_id: str) -> bool:
        """Whether the change ``change_id`` is among the remembered changes already folded in."""
        return change_id in self.applied

    def to_dict(self) -> dict[str, object]:
        """The state as JSON-able data (warehouses as a list by warehouse_id): ``from_dict`` reads it back."""
        return {
            "product_id": self.product_id,
            "sku": self.sku,
            "warehouses": [
                {
                    "warehouse_id": warehouse_id,
                    "on_hand": stock.on_hand,
                    "reserved": stock.reserved,
                    "updated_ms": stock.updated_ms,
                }
                for warehouse_id, stock in sorted(self.warehouses.items())
            ],
            "applied": list(self.applied),
            "clamped_units": self.clamped_units,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, object]) -> StockState:
        """The state ``to_dict`` made ``data`` of; InventoryError when it is not one."""
        try:
            return cls(
                product_id=integer(data, "product_id", least=1),
                sku=text(data, "sku"),
                warehouses=dict(_warehouse_row(row) for row in _rows(data)),
                applied=_ids(data),
                clamped_units=integer(data, "clamped_units", least=0),
            )
        except InvalidValue as invalid:
            msg = f"stored stock state {str(data)[:200]}: {invalid}"
            raise InventoryError(msg) from invalid


_NONE = WarehouseStock()


def _rows(data: Mapping[str, object]) -> list[Mapping[str, object]]:
    rows = data.get("warehouses")
    if not isinstance(rows, list) or not all(isinstance(row, Mapping) for row in rows):
        raise InvalidValue("warehouses: expected a list of objects")
    return rows


def _ids(data: Mapping[str, object]) -> tuple[str, ...]:
    ids = data.get("applied")
    if not isinstance(ids, list) or not all(isinstance(change_id, str) for change_id in ids):
        raise InvalidValue("applied: expected a list of change ids")
    return tuple(ids)


def _warehouse_row(row: Mapping[str, object]) -> tuple[int, WarehouseStock]:
    updated = row.get("updated_ms")
    stock = WarehouseStock(
        on_hand=integer(row, "on_hand", least=0),
        reserved=integer(row, "reserved", least=0),
        updated_ms=None if updated is None else integer(row, "updated_ms"),
    )
    return integer(row, "warehouse_id", least=1), stock

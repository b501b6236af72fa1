"""Event-sourced inventory, pure: a product's stock state and the idempotent fold of inventory changes into it."""

from app.inventory.changes import DELTA_SIGN, Change, read_change, validate_change
from app.inventory.exceptions import InventoryError
from app.inventory.fold import apply, fold
from app.inventory.state import REMEMBERED_CHANGES, StockState, WarehouseStock

__all__ = [
    "DELTA_SIGN",
    "REMEMBERED_CHANGES",
    "Change",
    "InventoryError",
    "StockState",
    "WarehouseStock",
    "apply",
    "fold",
    "read_change",
    "validate_change",
]

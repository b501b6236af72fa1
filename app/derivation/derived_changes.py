"""Inventory changes the derivations emit: built field by field as inventory_change.avsc, some due later."""

from __future__ import annotations

from typing import NamedTuple


class ScheduledChange(NamedTuple):
    """An inventory change that happens at ``due_ms`` (its event_time): the edge sends and folds it then."""

    due_ms: int
    change: dict[str, object]


def inventory_change(
    change_id: str,
    product_id: int,
    sku: str,
    warehouse_id: int,
    change_type: str,
    delta: int,
    source_id: str | None,
    event_time: int,
) -> dict[str, object]:
    """The InventoryChange value of these fields."""
    return {
        "change_id": change_id,
        "product_id": product_id,
        "sku": sku,
        "warehouse_id": warehouse_id,
        "change_type": change_type,
        "delta": delta,
        "source_id": source_id,
        "event_time": event_time,
    }

"""Inventory changes: the four change types, the sign of each one's delta, and semantic validation."""

from __future__ import annotations

from collections.abc import Mapping
from typing import NamedTuple

from app.wire.fields import InvalidValue, choice, integer, optional_text, reason_invalid, text
from schemas.symbols import CHANGE_TYPES, DAMAGE, RESTOCK, RETURN, SALE

#: +1 for the types that add units on hand, -1 for those that take them (SALE: a served order's units leaving).
DELTA_SIGN = {RESTOCK: 1, SALE: -1, DAMAGE: -1, RETURN: 1}


class Change(NamedTuple):
    """An inventory change read from its Avro value dict, checked field by field."""

    change_id: str
    product_id: int
    sku: str
    warehouse_id: int
    change_type: str
    delta: int
    source_id: str | None
    event_time: int


def read_change(value: Mapping[str, object]) -> Change:
    """The change of ``value``; InvalidValue says what makes it no valid change."""
    change = Change(
        change_id=text(value, "change_id"),
        product_id=integer(value, "product_id", least=1),
        sku=text(value, "sku"),
        warehouse_id=integer(value, "warehouse_id", least=1),
        change_type=choice(value, "change_type", CHANGE_TYPES),
        delta=integer(value, "delta"),
        source_id=optional_text(value, "source_id"),
        event_time=integer(value, "event_time", least=0),
    )
    sign = DELTA_SIGN[change.change_type]
    if change.delta * sign <= 0:
        expected = "> 0" if sign > 0 else "< 0"
        msg = f"delta={change.delta} of a {change.change_type} change: expected {expected}"
        raise InvalidValue(msg)
    return change


def validate_change(value: Mapping[str, object]) -> str | None:
    """Why ``value`` is no valid inventory change (to dead-letter it), or None when it may be applied."""
    return reason_invalid(read_change, value)

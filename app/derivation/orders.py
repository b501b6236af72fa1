"""Orders and interactions read from their Avro value dicts, and why one is semantically invalid."""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import NamedTuple

from app.wire.fields import InvalidValue, choice, integer, optional_text, reason_invalid, text
from schemas.symbols import INTERACTION_TYPES

_CURRENCY = re.compile(r"^[A-Z]{3}$")


class Order(NamedTuple):
    """An order read from its value dict, checked field by field; money in cents, time in epoch ms."""

    order_id: str
    user_id: int
    product_id: int
    sku: str
    quantity: int
    unit_price: int
    amount: int
    currency: str
    event_time: int


def read_order(value: Mapping[str, object]) -> Order:
    """The order of ``value``; InvalidValue says what makes it no valid order."""
    order = Order(
        order_id=text(value, "order_id"),
        user_id=integer(value, "user_id", least=1),
        product_id=integer(value, "product_id", least=1),
        sku=text(value, "sku"),
        quantity=integer(value, "quantity", least=1),
        unit_price=integer(value, "unit_price", least=1),
        amount=integer(value, "amount", least=1),
        currency=text(value, "currency"),
        event_time=integer(value, "event_time", least=0),
    )
    if order.amount != order.quantity * order.unit_price:
        msg = f"amount={order.amount}: expected quantity x unit_price = {order.quantity * order.unit_price}"
        raise InvalidValue(msg)
    if not _CURRENCY.match(order.currency):
        msg = f"currency={order.currency!r}: expected an ISO 4217 code"
        raise InvalidValue(msg)
    return order


def validate_order(value: Mapping[str, object]) -> str | None:
    """Why ``value`` is no valid order (to dead-letter it), or None when payments and shipments may follow."""
    return reason_invalid(read_order, value)


def validate_interaction(value: Mapping[str, object]) -> str | None:
    """Why ``value`` is no valid customer interaction (to dead-letter it), or None when it is one."""
    return reason_invalid(_read_interaction, value)


def _read_interaction(value: Mapping[str, object]) -> None:
    text(value, "interaction_id")
    text(value, "session_id")
    integer(value, "user_id", least=1)
    choice(value, "interaction_type", INTERACTION_TYPES)
    if value.get("product_id") is not None:
        integer(value, "product_id", least=1)
    optional_text(value, "search_term")
    integer(value, "event_time", least=0)

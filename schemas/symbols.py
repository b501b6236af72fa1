"""The symbols of the Avro enums, read from the .avsc files of ``schemas`` when this module is imported.

The schemas define the symbols; the code names the ones it writes or tests for. Each named symbol is checked
against every version of its schema (the evolved one too), so a schema that lost one fails at import, naming the
schema, the enum and the symbol, instead of producing records the registry refuses. Carriers and currencies are
plain strings in the schemas, not enums: their values live with the code that chooses them.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

from app.exceptions import DatagenError
from app.wire.roles import CUSTOMER_INTERACTIONS, INVENTORY_CHANGES, PAYMENTS
from schemas import EVOLVED_SCHEMAS, load_schema


class SchemaSymbolError(DatagenError):
    """A schema lacks an enum, or a symbol of it, that the code names."""


def enum_symbols(role: str, enum: str, version: int = 1) -> tuple[str, ...]:
    """The symbols of enum ``enum`` in the value schema of ``role`` (``version`` 2: its evolved schema), in order."""
    schema = json.loads(load_schema(role, version))
    for found in _enums(schema):
        if found.get("name") == enum:
            return tuple(str(symbol) for symbol in found["symbols"])
    msg = f"the {role} schema (version {version}) has no enum {enum}"
    raise SchemaSymbolError(msg)


def _enums(node: Any) -> Iterator[dict[str, Any]]:
    """Every enum type defined anywhere in a parsed schema."""
    if isinstance(node, dict):
        if node.get("type") == "enum":
            yield node
        for item in node.values():
            yield from _enums(item)
    elif isinstance(node, list):
        for item in node:
            yield from _enums(item)


def _named(role: str, enum: str, *names: str) -> tuple[str, ...]:
    """``names``, once each is a symbol of ``enum`` in every version of the schema of ``role``."""
    versions = (1, 2) if role in EVOLVED_SCHEMAS else (1,)
    for version in versions:
        symbols = enum_symbols(role, enum, version)
        missing = [name for name in names if name not in symbols]
        if missing:
            msg = (
                f"the {role} schema (version {version}) lost {', '.join(missing)} from enum {enum} "
                f"(it has {', '.join(symbols)}): the code writes them"
            )
            raise SchemaSymbolError(msg)
    return names


#: ChangeType of inventory_change.avsc, in the schema's order.
CHANGE_TYPES = enum_symbols(INVENTORY_CHANGES, "ChangeType")
RESTOCK, SALE, DAMAGE, RETURN = _named(INVENTORY_CHANGES, "ChangeType", "RESTOCK", "SALE", "DAMAGE", "RETURN")

#: PaymentMethod of payment.avsc, in the schema's order.
PAYMENT_METHODS = enum_symbols(PAYMENTS, "PaymentMethod")
CARD, APPLE_PAY, PAYPAL = _named(PAYMENTS, "PaymentMethod", "CARD", "APPLE_PAY", "PAYPAL")

#: PaymentStatus of payment.avsc, in the schema's order.
PAYMENT_STATUSES = enum_symbols(PAYMENTS, "PaymentStatus")
AUTHORIZED, CAPTURED, DECLINED = _named(PAYMENTS, "PaymentStatus", "AUTHORIZED", "CAPTURED", "DECLINED")

#: InteractionType of customer_interaction.avsc, in the schema's order.
INTERACTION_TYPES = enum_symbols(CUSTOMER_INTERACTIONS, "InteractionType")
PAGE_VIEW, SEARCH, CART_ADD = _named(CUSTOMER_INTERACTIONS, "InteractionType", "PAGE_VIEW", "SEARCH", "CART_ADD")

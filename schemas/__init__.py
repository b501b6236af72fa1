"""The Avro value schemas of the five event topics and the truth topic: the one source of the wire format."""

from importlib.resources import files

from app.wire.roles import CUSTOMER_INTERACTIONS, INVENTORY_CHANGES, ORDERS, PAYMENTS, SHIPMENTS, TRUTH

#: Schema file stem by event topic role (the keys of Settings.topics()).
EVENT_SCHEMAS = {
    ORDERS: "order",
    PAYMENTS: "payment",
    SHIPMENTS: "shipment",
    INVENTORY_CHANGES: "inventory_change",
    CUSTOMER_INTERACTIONS: "customer_interaction",
}
#: Every value schema by topic role: the events' and the truth topic's (agents/truth.py).
SCHEMA_FILES = {**EVENT_SCHEMAS, TRUTH: "truth"}
#: Version 2 of the roles whose schema evolves mid-run (SCHEMA_EVOLVE_AFTER): new optional fields with defaults.
EVOLVED_SCHEMAS = {ORDERS: "order.v2", CUSTOMER_INTERACTIONS: "customer_interaction.v2"}


def load_schema(role: str, version: int = 1) -> str:
    """The .avsc text for a topic role (``version`` 2: its evolved schema), read from the installed package."""
    stem = EVOLVED_SCHEMAS[role] if version == 2 else SCHEMA_FILES[role]
    return files(__name__).joinpath(f"{stem}.avsc").read_text(encoding="utf-8")

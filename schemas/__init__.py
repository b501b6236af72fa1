"""The Avro value schemas of the five event topics and the truth topic: the one source of the wire format."""

from importlib.resources import files

#: Schema file stem by event topic role (the keys of Settings.topics()).
EVENT_SCHEMAS = {
    "orders": "order",
    "payments": "payment",
    "shipments": "shipment",
    "inventory_changes": "inventory_change",
    "customer_interactions": "customer_interaction",
}
#: Every value schema by topic role: the events' and the truth topic's (agents/truth.py).
SCHEMA_FILES = {**EVENT_SCHEMAS, "truth": "truth"}


def load_schema(role: str) -> str:
    """The .avsc text for a topic role, read from the installed package."""
    return files(__name__).joinpath(f"{SCHEMA_FILES[role]}.avsc").read_text(encoding="utf-8")

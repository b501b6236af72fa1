"""The Avro value schemas of the five topics: the single source of truth for the wire format."""

from importlib.resources import files

#: Schema file stem by topic role (the keys of Settings.topics()).
SCHEMA_FILES = {
    "orders": "order",
    "payments": "payment",
    "shipments": "shipment",
    "inventory_changes": "inventory_change",
    "customer_interactions": "customer_interaction",
}


def load_schema(role: str) -> str:
    """The .avsc text for a topic role, read from the installed package."""
    return files(__name__).joinpath(f"{SCHEMA_FILES[role]}.avsc").read_text(encoding="utf-8")

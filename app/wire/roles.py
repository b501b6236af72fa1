"""The topic roles: the keys of ``Settings.topics()``, of the value schemas (``schemas``) and of the codec; and the
agents' internal stock requests topic (``REQUESTS``, ``requests_topic``), which is no setting."""

from __future__ import annotations

ORDERS = "orders"
PAYMENTS = "payments"
SHIPMENTS = "shipments"
INVENTORY_CHANGES = "inventory_changes"
CUSTOMER_INTERACTIONS = "customer_interactions"
DEAD_LETTER = "dead_letter"
TRUTH = "truth"

#: Every role, in the order of ``Settings.topics()``.
ROLES = (ORDERS, PAYMENTS, SHIPMENTS, INVENTORY_CHANGES, CUSTOMER_INTERACTIONS, DEAD_LETTER, TRUTH)
#: The roles whose events the generator makes (the event kinds), in the order of its mix weights.
GENERATED = (ORDERS, CUSTOMER_INTERACTIONS, INVENTORY_CHANGES)
#: The roles the agents derive records of: payments, shipments, and the inventory changes they decide.
DERIVED = (PAYMENTS, SHIPMENTS, INVENTORY_CHANGES)

#: The role of the stock requests topic, ``requests_topic(app_id)``: where the orders agent forwards the orders and,
#: with the agents on, the generator sends its background inventory changes; the stock agent reads it alone.
#: Not a key of ``Settings.topics()`` (the name follows APP_ID), so not in ``ROLES``.
REQUESTS = "requests"


def requests_topic(app_id: str) -> str:
    """The name of the app's stock requests topic, ``<APP_ID>-stock-requests``."""
    return f"{app_id}-stock-requests"

"""The stock requests topic: everything the stock agent decides, keyed by product, in one partition per product.

Its name is ``app.wire.roles.requests_topic(app_id)``. Four kinds, named by the ``x-datagen-request`` header
(``app.wire.headers.REQUEST_KIND_HEADER``):

- ``order``: an order with its payment, forwarded by the orders agent (JSON), with the orders.v1 partition and
  offset it came from, so a replay of the orders agent is recognised.
- ``change``: a background inventory change of the generator (Confluent-framed Avro, as on inventory-changes.v1).
  A record without the header is read as one, so anything else written here is dead-lettered.
- ``opening``: the seeded stock of a (product, warehouse) as a RESTOCK (JSON), sent once when the ledger is new.
- ``due``: a scheduled item that fell due (its id, UTF-8), sent by the schedule timer.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from app.wire.headers import REQUEST_KIND_HEADER, Headers

ORDER, CHANGE, OPENING, DUE = "order", "change", "opening", "due"
KINDS = (ORDER, CHANGE, OPENING, DUE)



def headers_of(kind: str) -> Headers:
    """The headers of a request of ``kind``."""
    return [(REQUEST_KIND_HEADER, kind.encode())]


def kind_of(headers: Any) -> str:
    """The kind a record's headers name (Faust gives a list of pairs or a mapping); CHANGE when none."""
    pairs = headers.items() if isinstance(headers, Mapping) else (headers or ())
    for name, value in pairs:
        if name == REQUEST_KIND_HEADER and value is not None:
            kind = value.decode() if isinstance(value, bytes) else str(value)
            return kind if kind in KINDS else CHANGE
    return CHANGE


def order_request(order: Mapping[str, Any], payment: Mapping[str, Any] | None, partition: int, offset: int) -> bytes:
    """The value of an ``order`` request."""
    return json.dumps({"order": order, "payment": payment, "partition": partition, "offset": offset}).encode()


@dataclass(frozen=True)
class OrderRequest:
    """An order to decide, and where in orders.v1 it came from."""

    order: dict[str, Any]
    payment: dict[str, Any] | None
    partition: int
    offset: int


def read_order_request(raw: bytes) -> OrderRequest:
    """The ``order`` request of ``raw``; ValueError (or KeyError) when it is not one."""
    data = json.loads(raw)
    return OrderRequest(dict(data["order"]), data["payment"], int(data["partition"]), int(data["offset"]))

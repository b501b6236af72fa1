"""The compiled Avro writers write fastavro's bytes, and hand back every value they do not handle."""

from __future__ import annotations

import json
import random
from io import BytesIO
from typing import Any

import pytest
from fastavro import parse_schema, schemaless_writer

from app.avro_writer import UNHANDLED, UnsupportedSchema, avro_long, compile_writer
from app.derivation import DerivationConfig
from schemas import EVENT_SCHEMAS, load_schema
from tests.unit.derivation.support import derive, make_order
from tests.unit.generation.support import make_generator

HEADER = b"\x00\x00\x00\x01\x2a"
LONGS = (0, 1, -1, 63, -64, 64, -65, 8191, 8192, 16383, 16384, -16384, 2**31, -(2**31), 2**62, 2**63 - 1, -(2**63))


def schema(role: str) -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads(load_schema(role))
    return loaded


def fastavro_bytes(role: str, value: dict[str, Any]) -> bytes:
    out = BytesIO()
    out.write(HEADER)
    schemaless_writer(out, parse_schema(schema(role)), value, strict=False, strict_allow_default=False)
    return out.getvalue()


def test_generated_and_derived_records_are_written_as_fastavro_writes_them() -> None:
    writers = {role: compile_writer(schema(role)) for role in EVENT_SCHEMAS}
    records = [(event.kind, event.value) for event in make_generator(p_bad_record=0.05).next_batch(20_000, 1)]
    rng, config = random.Random(9), DerivationConfig(seed=9)
    for _ in range(2_000):
        payment, decision = derive(make_order(rng), config)
        records += [("payments", payment)] if payment else []
        records += [("shipments", decision.shipment)] if decision.shipment else []
        records += [("inventory_changes", decision.sale)] if decision.sale else []
    assert {role for role, _ in records} == set(EVENT_SCHEMAS)
    for role, value in records:
        assert writers[role](value, HEADER) == fastavro_bytes(role, value), (role, value)


@pytest.mark.parametrize("number", LONGS)
def test_every_long_field_at_the_edges_of_the_varint_table_and_of_the_range(number: int) -> None:
    value = make_order(random.Random(1))
    value.update(user_id=number, quantity=number, amount=number, event_time=number)
    assert compile_writer(schema("orders"))(value, HEADER) == fastavro_bytes("orders", value)
    assert avro_long(number) == fastavro_bytes("orders", value)[-len(avro_long(number)) :]


@pytest.mark.parametrize(
    "text",
    ["", "a", "Crème brûlée, 250 g", "日本語の本", "x" * 63, "x" * 64, "é" * 8191, "😀" * 100],
)
def test_strings_and_nullable_strings_in_utf_8(text: str) -> None:
    value = make_order(random.Random(2))
    value.update(sku=text, currency=text, session_id=text)
    assert compile_writer(schema("orders"))(value, HEADER) == fastavro_bytes("orders", value)


def test_every_enum_symbol_and_both_branches_of_a_nullable_long() -> None:
    write = compile_writer(schema("customer_interactions"))
    base = dict(make_generator().sessions.stray_page_view(5, 10)[1])
    for symbol in ("PAGE_VIEW", "SEARCH", "CART_ADD"):
        for product_id in (None, 0, 17, -5, 2**40):
            value = {**base, "interaction_type": symbol, "product_id": product_id, "search_term": None}
            assert write(value, HEADER) == fastavro_bytes("customer_interactions", value)


@pytest.mark.parametrize(
    ("field", "bad"),
    [
        ("quantity", "3"),  # a string for an int
        ("quantity", 2.5),  # a float for an int
        ("quantity", 2**63),  # beyond a long
        ("sku", b"SKU-1"),  # bytes for a string
        ("sku", None),  # None outside a union
        ("session_id", 5),  # neither branch of ["null", "string"]
        ("sku", "x" * 20_000),  # longer than the length table
    ],
)
def test_a_value_the_writer_does_not_handle_is_handed_back(field: str, bad: object) -> None:
    value = {**make_order(random.Random(3)), field: bad}
    with pytest.raises(UNHANDLED):
        compile_writer(schema("orders"))(value, HEADER)


def test_a_missing_field_an_unknown_symbol_and_a_bool_in_a_union_are_handed_back() -> None:
    order = make_order(random.Random(4))
    del order["amount"]
    with pytest.raises(UNHANDLED):
        compile_writer(schema("orders"))(order, HEADER)
    interaction = {**make_generator().sessions.stray_page_view(5, 10)[1], "interaction_type": "CHECKOUT"}
    with pytest.raises(UNHANDLED):
        compile_writer(schema("customer_interactions"))(interaction, HEADER)
    interaction = {**interaction, "interaction_type": "SEARCH", "product_id": True}
    with pytest.raises(UNHANDLED):
        compile_writer(schema("customer_interactions"))(interaction, HEADER)


def test_a_schema_with_a_type_it_does_not_write_is_refused_when_compiled() -> None:
    record = {"type": "record", "name": "Reading", "fields": [{"name": "celsius", "type": "double"}]}
    with pytest.raises(UnsupportedSchema, match="field 'celsius': type 'double'"):
        compile_writer(record)
    with pytest.raises(UnsupportedSchema, match="expected a record schema"):
        compile_writer({"type": "enum", "name": "E", "symbols": ["A"]})

"""The derivation tests' own material: the synthetic orders of ``support.py`` are valid orders."""

from __future__ import annotations

from tests.unit.derivation.support import assert_avro, make_orders


def test_made_orders_are_valid_avro_orders() -> None:
    for order in make_orders(50):
        assert_avro(order, "order.avsc")

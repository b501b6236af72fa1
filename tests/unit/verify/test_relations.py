"""How derived events must relate to their orders and to the reference data: conforming data and each defect."""

from __future__ import annotations

from app.verify import relations
from app.verify.observe import ChangeFacts, OrderFacts, PaymentFacts, ShipmentFacts

ORDERS = {
    "o1": OrderFacts(user_id=1, product_id=7, quantity=2, amount=500, currency="USD"),
    "o2": OrderFacts(user_id=2, product_id=8, quantity=1, amount=250, currency="USD"),
    "o3": OrderFacts(user_id=3, product_id=9, quantity=3, amount=750, currency="USD"),
}
PAYMENTS = {
    "p1": PaymentFacts("o1", "CAPTURED", "CARD", 500, "USD"),
    "p2": PaymentFacts("o2", "DECLINED", "PAYPAL", 250, "USD"),
    "p3": PaymentFacts("o3", "AUTHORIZED", "APPLE_PAY", 750, "USD"),
}
SHIPMENTS = {"s1": ShipmentFacts("o1", warehouse_id=1, eta_ms=1_000), "s3": ShipmentFacts("o3", 2, 5_000)}
SALES = {"c1": ChangeFacts("o1", 7, 1, -2), "c3": ChangeFacts("o3", 9, 2, -3)}


def reasons(problems: relations.Problems) -> set[str]:
    return set(problems.counts)


def test_conforming_payments_shipments_and_sales_have_no_problem() -> None:
    assert relations.payments_for_orders(ORDERS, PAYMENTS).total == 0
    assert relations.shipments_for_accepted(ORDERS, PAYMENTS, SHIPMENTS, SALES).total == 0
    assert relations.sales_for_shipments(ORDERS, SHIPMENTS, SALES).total == 0
    assert relations.accepted_orders(PAYMENTS) == {"o1", "o3"}


def test_a_payment_of_an_order_not_on_the_topic() -> None:
    payments = {**PAYMENTS, "p9": PaymentFacts("o9", "CAPTURED", "CARD", 100, "USD")}
    found = relations.payments_for_orders(ORDERS, payments)
    assert found.counts == {"payment of an order not on the orders topic": 1}
    assert found.examples["payment of an order not on the orders topic"] == ["o9"]


def test_a_payment_of_another_amount_and_a_second_payment_of_an_order() -> None:
    payments = {**PAYMENTS, "p1": PaymentFacts("o1", "CAPTURED", "CARD", 501, "USD")}
    assert reasons(relations.payments_for_orders(ORDERS, payments)) == {
        "payment of another amount or currency than its order's"
    }
    twice = {**PAYMENTS, "p1b": PaymentFacts("o1", "CAPTURED", "CARD", 500, "USD")}
    assert reasons(relations.payments_for_orders(ORDERS, twice)) == {"order with two payments"}


def test_a_shipment_of_a_declined_order_or_of_one_without_payment() -> None:
    declined = {**SHIPMENTS, "s2": ShipmentFacts("o2", 1, 0)}
    sales = {**SALES, "c2": ChangeFacts("o2", 8, 1, -1)}
    assert reasons(relations.shipments_for_accepted(ORDERS, PAYMENTS, declined, sales)) == {
        "shipment of an order whose payment was DECLINED"
    }
    unpaid = {k: v for k, v in PAYMENTS.items() if k != "p3"}
    assert reasons(relations.shipments_for_accepted(ORDERS, unpaid, SHIPMENTS, SALES)) == {
        "shipment of an order without a payment"
    }
    stray = {**SHIPMENTS, "s9": ShipmentFacts("o9", 1, 0)}
    assert "shipment of an order not on the orders topic" in reasons(
        relations.shipments_for_accepted(ORDERS, PAYMENTS, stray, SALES)
    )


def test_a_shipment_without_its_sale_and_an_order_shipped_twice() -> None:
    assert reasons(relations.shipments_for_accepted(ORDERS, PAYMENTS, SHIPMENTS, {"c1": SALES["c1"]})) == {
        "shipment without its SALE"
    }
    twice = {**SHIPMENTS, "s1b": ShipmentFacts("o1", 1, 1_000)}
    assert reasons(relations.shipments_for_accepted(ORDERS, PAYMENTS, twice, SALES)) == {"order shipped twice"}


def test_sales_only_of_shipped_orders_from_their_warehouse_of_their_quantity() -> None:
    unshipped = {**SALES, "c2": ChangeFacts("o2", 8, 1, -1)}
    assert reasons(relations.sales_for_shipments(ORDERS, SHIPMENTS, unshipped)) == {"SALE of an order not shipped"}
    elsewhere = {**SALES, "c1": ChangeFacts("o1", 7, 3, -2)}
    assert reasons(relations.sales_for_shipments(ORDERS, SHIPMENTS, elsewhere)) == {
        "SALE from another warehouse than the shipment's"
    }
    more = {**SALES, "c1": ChangeFacts("o1", 7, 1, -5)}
    assert reasons(relations.sales_for_shipments(ORDERS, SHIPMENTS, more)) == {
        "SALE of another product or quantity than the order's"
    }
    twice = {**SALES, "c1b": ChangeFacts("o1", 7, 1, -2)}
    assert reasons(relations.sales_for_shipments(ORDERS, SHIPMENTS, twice)) == {"order sold twice"}


def test_returns_come_back_from_shipped_orders_to_their_warehouse() -> None:
    returns = {"r1": ChangeFacts("o1", 7, 1, 1), "r3": ChangeFacts("o3", 9, 2, 3)}
    assert relations.returns_for_orders(ORDERS, SHIPMENTS, returns).total == 0
    assert reasons(relations.returns_for_orders(ORDERS, SHIPMENTS, {"r2": ChangeFacts("o2", 8, 1, 1)})) == {
        "RETURN of an order not shipped"
    }
    assert reasons(relations.returns_for_orders(ORDERS, SHIPMENTS, {"r1": ChangeFacts("o1", 7, 2, 1)})) == {
        "RETURN to another warehouse than the shipment's"
    }
    assert reasons(relations.returns_for_orders(ORDERS, SHIPMENTS, {"r1": ChangeFacts("o1", 7, 1, 3)})) == {
        "RETURN of another product or more units than ordered"
    }
    assert reasons(relations.returns_for_orders(ORDERS, SHIPMENTS, {"r1": ChangeFacts("o1", 8, 1, 1)})) == {
        "RETURN of another product or more units than ordered"
    }
    shipped_unknown = {**SHIPMENTS, "s9": ShipmentFacts("o9", 1, 1_000)}
    assert reasons(relations.returns_for_orders(ORDERS, shipped_unknown, {"r9": ChangeFacts("o9", 7, 1, 1)})) == {
        "RETURN of an order not on the orders topic"
    }


def test_only_orders_whose_return_is_due_count_for_the_return_share() -> None:
    returns = {"r1": ChangeFacts("o1", 7, 1, 1)}
    assert relations.returns_due(SHIPMENTS, returns, window_ms=1_000, until_ms=2_000) == (1, 1)  # o3 not due yet
    assert relations.returns_due(SHIPMENTS, returns, window_ms=1_000, until_ms=6_000) == (1, 2)
    assert relations.returns_due(SHIPMENTS, returns, window_ms=1_000, until_ms=1_999) == (0, 0)


def test_orders_from_a_session_follow_its_cart_add() -> None:
    carts = {("s1", 1, 7)}
    assert relations.orders_from_carts([("o1", "s1", 1, 7)], carts).total == 0
    assert relations.orders_from_carts([("o1", "s1", 1, 8), ("o2", "s2", 1, 7)], carts).total == 2


def test_references_no_row_holds() -> None:
    assert relations.missing({1, 2}, {1, 2, 3}, "user_id").total == 0
    found = relations.missing({1, 4, 5}, {1, 2, 3}, "user_id")
    assert found.counts == {"user_id no row holds": 2}
    assert found.examples["user_id no row holds"] == ["4", "5"]
    known = {7: "ELC-000007", 8: "BKS-000008"}
    assert relations.product_problems({7}, {(8, "BKS-000008")}, known).total == 0
    assert reasons(relations.product_problems(set(), {(9, "ELC-000009")}, known)) == {"product_id no row holds"}
    assert reasons(relations.product_problems(set(), {(7, "BKS-000008")}, known)) == {"sku is not its product's"}


def test_stock_differences_count_missing_rows_as_zero() -> None:
    fold = {(1, 1): 5, (1, 2): 0}
    assert relations.stock_differences(fold, {(1, 1): 5}, "warehouse_inventory").total == 0
    found = relations.stock_differences(fold, {(1, 1): 6, (2, 1): 1}, "warehouse_inventory")
    assert found.total == 2
    assert found.examples["warehouse_inventory differs from the topic"][0] == "product 1 warehouse 1: 6 != 5"


def test_bad_records_the_agents_consume_are_dead_lettered_and_none_other() -> None:
    bad = {("orders.v1", 0, 5), ("requests", 1, 9)}
    consumed = {"orders.v1", "requests"}
    assert relations.dead_letter_routing(bad, set(bad), consumed).total == 0
    assert reasons(relations.dead_letter_routing(bad, {("orders.v1", 0, 5)}, consumed)) == {
        "bad record not dead-lettered"
    }
    stray = {*bad, ("customer-interactions.v1", 0, 1)}
    assert reasons(relations.dead_letter_routing(bad, stray, consumed)) == {
        "dead letter from a topic the agents do not consume"
    }

"""How events must relate to each other and to the reference data, as problems found in plain dicts and sets."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping

from app.verify.observe import ChangeFacts, OrderFacts, PaymentFacts, ShipmentFacts
from app.verify.results import Problems
from schemas.symbols import DECLINED

#: (product_id, warehouse_id) -> units on hand.
OnHand = Mapping[tuple[int, int], int]


def accepted_orders(payments: Mapping[str, PaymentFacts]) -> set[str]:
    """The orders whose payment was accepted (not DECLINED): those that may ship."""
    return {payment.order_id for payment in payments.values() if payment.status != DECLINED}


def payments_for_orders(orders: Mapping[str, OrderFacts], payments: Mapping[str, PaymentFacts]) -> Problems:
    """Every payment is of an order on the orders topic, for its amount and currency, and one per order."""
    problems = Problems()
    for payment_id, payment in payments.items():
        order = orders.get(payment.order_id)
        if order is None:
            problems.add("payment of an order not on the orders topic", payment.order_id)
        elif (payment.amount, payment.currency) != (order.amount, order.currency):
            problems.add("payment of another amount or currency than its order's", payment_id)
    _more_than_once(problems, (payment.order_id for payment in payments.values()), "order with two payments")
    return problems


def shipments_for_accepted(
    orders: Mapping[str, OrderFacts],
    payments: Mapping[str, PaymentFacts],
    shipments: Mapping[str, ShipmentFacts],
    sales: Mapping[str, ChangeFacts],
) -> Problems:
    """Every shipment is of an order on the orders topic with an accepted payment, one per order, with its SALE."""
    problems = Problems()
    accepted = accepted_orders(payments)
    declined = {payment.order_id for payment in payments.values()} - accepted
    sold = {sale.source_id for sale in sales.values()}
    for shipment in shipments.values():
        if shipment.order_id not in orders:
            problems.add("shipment of an order not on the orders topic", shipment.order_id)
        elif shipment.order_id in declined:
            problems.add("shipment of an order whose payment was DECLINED", shipment.order_id)
        elif shipment.order_id not in accepted:
            problems.add("shipment of an order without a payment", shipment.order_id)
        if shipment.order_id not in sold:
            problems.add("shipment without its SALE", shipment.order_id)
    _more_than_once(problems, (shipment.order_id for shipment in shipments.values()), "order shipped twice")
    return problems


def sales_for_shipments(
    orders: Mapping[str, OrderFacts], shipments: Mapping[str, ShipmentFacts], sales: Mapping[str, ChangeFacts]
) -> Problems:
    """Every SALE is of a shipped order (its source_id), from the shipment's warehouse, of the order's product and
    quantity; one per order."""
    problems = Problems()
    shipped = {shipment.order_id: shipment for shipment in shipments.values()}
    for change_id, sale in sales.items():
        shipment = shipped.get(sale.source_id)
        order = orders.get(sale.source_id)
        if shipment is None:
            problems.add("SALE of an order not shipped", sale.source_id)
        elif sale.warehouse_id != shipment.warehouse_id:
            problems.add("SALE from another warehouse than the shipment's", change_id)
        elif order is not None and (sale.product_id, -sale.delta) != (order.product_id, order.quantity):
            problems.add("SALE of another product or quantity than the order's", change_id)
    _more_than_once(problems, (sale.source_id for sale in sales.values()), "order sold twice")
    return problems


def returns_for_orders(
    orders: Mapping[str, OrderFacts], shipments: Mapping[str, ShipmentFacts], returns: Mapping[str, ChangeFacts]
) -> Problems:
    """The agents' RETURNs come back from shipped orders on the orders topic to the shipment's warehouse, with 1 to
    the ordered units of the order's product."""
    problems = Problems()
    shipped = {shipment.order_id: shipment for shipment in shipments.values()}
    for change_id, change in returns.items():
        shipment = shipped.get(change.source_id)
        if shipment is None:
            problems.add("RETURN of an order not shipped", change.source_id)
        elif change.warehouse_id != shipment.warehouse_id:
            problems.add("RETURN to another warehouse than the shipment's", change_id)
        order = orders.get(change.source_id)
        if order is None:
            problems.add("RETURN of an order not on the orders topic", change.source_id)
        elif change.product_id != order.product_id or not 1 <= change.delta <= order.quantity:
            problems.add("RETURN of another product or more units than ordered", change_id)
    return problems


def returns_due(
    shipments: Mapping[str, ShipmentFacts], returns: Mapping[str, ChangeFacts], window_ms: int, until_ms: int
) -> tuple[int, int]:
    """(returned, shipped): of the orders shipped with an ETA at least ``window_ms`` before ``until_ms`` (so any
    return of theirs is due by then), how many came back."""
    due = {shipment.order_id for shipment in shipments.values() if shipment.eta_ms + window_ms <= until_ms}
    returned = {change.source_id for change in returns.values()} & due
    return len(returned), len(due)


def orders_from_carts(
    session_orders: Iterable[tuple[str, str, int, int]], carts: set[tuple[str, int, int]]
) -> Problems:
    """Every order placed from a session follows a cart add of that session, user and product."""
    problems = Problems()
    for order_id, session_id, user_id, product_id in session_orders:
        if (session_id, user_id, product_id) not in carts:
            problems.add("order from a session without its cart add", order_id)
    return problems


def margins(orders: Mapping[str, OrderFacts], costs: Mapping[int, int]) -> tuple[Problems, Counter[str], int]:
    """Orders priced below their product's unit cost (a defect: prices never go below cost), the margin in cents
    by currency, (unit_price - cost) x quantity summed, and how many orders had a known cost."""
    problems: Problems = Problems()
    margin: Counter[str] = Counter()
    costed = 0
    for order_id, order in orders.items():
        cost = costs.get(order.product_id)
        if cost is None:
            continue  # an unknown product: references.product_id says so
        costed += 1
        if order.unit_price < cost:
            problems.add("an order priced below its product's cost", f"{order_id} at {order.unit_price} < {cost}")
        margin[order.currency] += (order.unit_price - cost) * order.quantity
    return problems, margin, costed


def missing(referenced: Iterable[int], existing: set[int] | frozenset[int], what: str) -> Problems:
    """Each referenced id that no row holds."""
    problems = Problems()
    for value in sorted(set(referenced) - set(existing)):
        problems.add(f"{what} no row holds", value)
    return problems


def product_problems(products: Iterable[int], skus: Iterable[tuple[int, str]], known: Mapping[int, str]) -> Problems:
    """Each product_id no row holds, and each SKU that is not its product's."""
    problems = missing({*products, *(product_id for product_id, _ in skus)}, set(known), "product_id")
    for product_id, sku in sorted(skus):
        if product_id in known and known[product_id] != sku:
            problems.add("sku is not its product's", f"{product_id}: {sku} (products.sku {known[product_id]})")
    return problems


def stock_differences(fold: OnHand, other: OnHand, holder: str) -> Problems:
    """Each (product, warehouse) where ``other`` differs from the fold of the topic (a missing row counts as 0)."""
    problems = Problems()
    for place in sorted(set(fold) | set(other)):
        ledger, held = fold.get(place, 0), other.get(place, 0)
        if ledger != held:
            product_id, warehouse_id = place
            problems.add(
                f"{holder} differs from the topic", f"product {product_id} warehouse {warehouse_id}: {held} != {ledger}"
            )
    return problems


def dead_letter_routing(
    bad_consumed: set[tuple[str, int, int]], sources: set[tuple[str, int, int]], consumed: set[str]
) -> Problems:
    """Each bad record on a topic the agents consume is dead-lettered; no dead letter comes from another topic."""
    problems = Problems()
    for topic, partition, offset in sorted(bad_consumed - sources):
        problems.add("bad record not dead-lettered", f"{topic}/{partition}@{offset}")
    for topic, partition, offset in sorted(sources):
        if topic not in consumed:
            problems.add("dead letter from a topic the agents do not consume", f"{topic}/{partition}@{offset}")
    return problems


def _more_than_once(problems: Problems, order_ids: Iterable[str], reason: str) -> None:
    for order_id, count in Counter(order_ids).items():
        if count > 1:
            problems.add(reason, order_id)

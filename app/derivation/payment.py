"""The payment of an order: whether it has one, how it was paid, and whether it was declined."""

from __future__ import annotations

from bisect import bisect
from collections.abc import Mapping

from app.derivation.config import DerivationConfig
from app.derivation.ids import Uniform, payment_id
from app.derivation.orders import read_order
from app.generation.generator import cuts
from schemas.symbols import AUTHORIZED, CAPTURED, DECLINED

#: Payments are single attempts: a declined order is not retried (a retry would be attempt 2).
ATTEMPT = 1


def decide_payment(
    order: Mapping[str, object], config: DerivationConfig, rng: Uniform
) -> dict[str, object] | None:
    """The Payment value of ``order`` (p_payment of orders, DECLINED at decline_share of them), or None.

    ``rng``: ``rng_for(config.seed, order_id, Stage.PAYMENT)``. Five draws whatever the outcome, so deciding again
    gives the same payment. Raises InvalidValue for an order ``validate_order`` rejects.
    """
    checked = read_order(order)
    has_payment, decline, method, capture, delay = (rng.random() for _ in range(5))
    if has_payment >= config.p_payment:
        return None
    low, high = config.payment_delay_ms
    return {
        "payment_id": payment_id(checked.order_id, ATTEMPT),
        "order_id": checked.order_id,
        "attempt": ATTEMPT,
        "method": _method(method, config),
        "status": DECLINED if decline < config.decline_share else _accepted(capture, config),
        "amount": checked.amount,
        "currency": checked.currency,
        "event_time": checked.event_time + low + int(delay * (high - low + 1)),
    }


def is_accepted(payment: Mapping[str, object] | None) -> bool:
    """Whether ``payment`` exists and was not declined: the condition for a shipment."""
    return payment is not None and payment.get("status") in (AUTHORIZED, CAPTURED)


def _method(draw: float, config: DerivationConfig) -> str:
    methods = config.method_shares
    return methods[bisect(cuts(tuple(share for _, share in methods)), draw)][0]


def _accepted(draw: float, config: DerivationConfig) -> str:
    return CAPTURED if draw < config.p_capture_at_checkout else AUTHORIZED

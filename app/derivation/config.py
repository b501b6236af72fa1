"""The derivation knobs: the settings the agents' decisions read, and realistic defaults for the rest.

Payments, shipments and declines over ALL orders (declines are part of the payment share, not on top of it):

- an order gets a payment with probability p_payment;
- a payment is DECLINED with probability ``decline_share`` = min(realistic_decline_share, 1 - p_shipment / p_payment),
  the largest share up to the realistic one that still lets p_shipment of all orders ship, since only orders with
  a payment that was not declined can ship: p_payment * (1 - d) >= p_shipment;
- an order with an accepted payment is meant to ship with probability ``p_ship_if_accepted`` =
  p_shipment / (p_payment * (1 - d)), so P(shipment) = p_payment * (1 - d) * p_ship_if_accepted = p_shipment.
  The other accepted orders are cancelled before dispatch (no event: the topics have no cancellation).

With the defaults (0.85, 0.75, 0.06): d = 0.06, p_ship_if_accepted = 0.75 / 0.799 = 0.9387.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Protocol

from app.derivation.exceptions import DerivationError
from schemas.symbols import APPLE_PAY, CARD, PAYPAL

DAY_MS = 86_400_000
HOUR_MS = 3_600_000
#: A day of lead time, transit or return window lasts a minute: restocks are seen within a run, not days later.
DEFAULT_LEAD_TIME_SCALE = 1 / 1440


class DerivationSettings(Protocol):
    """The part of the app's Settings the derivations read (structural, so this package imports no settings)."""

    @property
    def p_order_has_payment(self) -> float: ...
    @property
    def p_order_has_shipment(self) -> float: ...
    @property
    def p_update_inventory(self) -> float: ...
    @property
    def random_seed(self) -> int | None: ...


@dataclass(frozen=True)
class Carrier:
    """A parcel carrier: its share of the parcels it may carry, its transit days, where it picks up."""

    name: str
    share: float
    #: Fewest and most days from hand-over to delivery within the warehouse's country.
    transit_days: tuple[int, int]
    #: Countries of the warehouses it picks up from; empty: every country.
    countries: frozenset[str] = frozenset()

    def serves(self, country: str) -> bool:
        """Whether the carrier picks up from a warehouse in ``country``."""
        return not self.countries or country in self.countries


CARRIERS = (
    Carrier("UPS", 0.35, (1, 5)),
    Carrier("FedEx", 0.25, (1, 4)),
    Carrier("DHL", 0.25, (2, 6)),
    Carrier("USPS", 0.15, (2, 5), frozenset({"US"})),
)


@dataclass(frozen=True)
class DerivationConfig:
    """Everything the derivations decide with; shares are probabilities, times in milliseconds or days."""

    # From the settings.
    p_payment: float = 0.85
    p_shipment: float = 0.75
    #: Share of shipped orders returned later, each once, to the warehouse that shipped it (P_UPDATE_INVENTORY).
    p_return: float = 0.02
    #: Seeds every order's decisions together with its order_id (RANDOM_SEED; 0 when unset, see from_settings).
    seed: int = 0
    #: Every business duration (supplier lead time, handling, transit, return window) in days times this, so
    #: the timeline stays causal: a return after its delivery, a restock after its reorder.
    lead_time_scale: float = DEFAULT_LEAD_TIME_SCALE

    # Payments.
    #: Card-not-present decline rates run at 5-10%; lowered when p_shipment needs it (see decline_share).
    realistic_decline_share: float = 0.06
    method_shares: tuple[tuple[str, float], ...] = ((CARD, 0.65), (PAYPAL, 0.20), (APPLE_PAY, 0.15))
    #: Accepted payments captured at checkout; the others are AUTHORIZED and captured at dispatch.
    p_capture_at_checkout: float = 0.4
    #: Milliseconds from placing the order to the payment's outcome.
    payment_delay_ms: tuple[int, int] = (800, 6_000)

    # Shipments and returns.
    carriers: tuple[Carrier, ...] = CARRIERS
    #: Hours from serving an order (its units picked) to handing the parcel to the carrier, before scaling.
    handling_hours: tuple[float, float] = (2.0, 24.0)
    #: Days after the ETA a return arrives back at its warehouse, before scaling.
    return_days: tuple[int, int] = (3, 28)

    def __post_init__(self) -> None:
        for name in ("p_payment", "p_shipment", "realistic_decline_share", "p_capture_at_checkout", "p_return"):
            _check(name, getattr(self, name), 0.0 <= getattr(self, name) <= 1.0, "a probability between 0 and 1")
        _check("p_shipment", self.p_shipment, self.p_shipment <= self.p_payment, "at most p_payment")
        scale = self.lead_time_scale
        _check("lead_time_scale", scale, math.isfinite(scale) and scale > 0, "a number > 0")
        _check_shares("method_shares", tuple(share for _, share in self.method_shares))
        _check_shares("carriers", tuple(carrier.share for carrier in self.carriers))
        for name in ("payment_delay_ms", "handling_hours", "return_days"):
            low, high = getattr(self, name)
            _check(name, (low, high), 0 <= low <= high, "a range 0 <= low <= high")
        for carrier in self.carriers:
            low, high = carrier.transit_days
            _check(f"{carrier.name} transit_days", (low, high), 0 <= low <= high, "a range 0 <= low <= high")

    @classmethod
    def from_settings(
        cls, settings: DerivationSettings, lead_time_scale: float = DEFAULT_LEAD_TIME_SCALE
    ) -> DerivationConfig:
        """The config of the app's settings; change the other knobs with ``dataclasses.replace``.

        RANDOM_SEED unset gives seed 0, not a random one: every worker must decide an order alike (a redelivered
        order may land on another worker), and the order ids of an unseeded run are random already.
        """
        return cls(
            p_payment=settings.p_order_has_payment,
            p_shipment=settings.p_order_has_shipment,
            p_return=settings.p_update_inventory,
            seed=0 if settings.random_seed is None else settings.random_seed,
            lead_time_scale=lead_time_scale,
        )

    @property
    def decline_share(self) -> float:
        """Share of payments DECLINED: the realistic share, lowered so that p_shipment of all orders can ship."""
        if self.p_payment == 0:
            return self.realistic_decline_share
        return max(0.0, min(self.realistic_decline_share, 1.0 - self.p_shipment / self.p_payment))

    @property
    def p_ship_if_accepted(self) -> float:
        """Probability that an order whose payment was accepted ships: p_shipment / (p_payment * (1 - d))."""
        accepted = self.p_payment * (1.0 - self.decline_share)
        return min(1.0, self.p_shipment / accepted) if accepted > 0 else 0.0

    def scaled_ms(self, days: float) -> int:
        """``days`` of business time in milliseconds, scaled by lead_time_scale."""
        return scaled_ms(days, self.lead_time_scale)


def scaled_ms(days: float, scale: float) -> int:
    """``days`` x 86,400,000 x ``scale``, rounded: with scale 1/1440 a day lasts a minute."""
    return round(days * DAY_MS * scale)


def _check(name: str, value: object, accepted: bool, accepts: str) -> None:
    if not accepted:
        msg = f"derivation knob {name}={value!r}: expected {accepts}"
        raise DerivationError(msg)


def _check_shares(name: str, shares: tuple[float, ...]) -> None:
    accepted = bool(shares) and all(math.isfinite(s) and s >= 0 for s in shares) and math.fsum(shares) > 0
    _check(name, shares, accepted, "shares >= 0, not all 0")

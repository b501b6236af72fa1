"""The generation knobs: the settings the generator reads, and its own defaults for the rest."""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any, Protocol

from app.generation.exceptions import GenerationError

_PROBABILITIES = (
    "p_late_event",
    "p_bad_record",
    "p_duplicate",
    "p_update_price",
    "p_shipped",
    "p_returned",
    "p_order_follows_cart",
    "p_recent_user",
    "p_recent_product",
    "p_search_after_landing",
    "p_view_after_search",
    "p_cart_after_view",
    "p_search_after_view",
    "p_search_after_cart",
)


class GenerationSettings(Protocol):
    """The part of the app's Settings the generator reads (structural, so this package imports no settings)."""

    @property
    def target_eps(self) -> float: ...
    @property
    def weight_orders(self) -> float: ...
    @property
    def weight_interactions(self) -> float: ...
    @property
    def weight_inventory_chg(self) -> float: ...
    @property
    def p_late_event(self) -> float: ...
    @property
    def p_bad_record(self) -> float: ...
    @property
    def p_duplicate(self) -> float: ...
    @property
    def p_update_price(self) -> float: ...
    @property
    def p_order_has_shipment(self) -> float: ...
    @property
    def p_update_inventory(self) -> float: ...


@dataclass(frozen=True)
class GenerationConfig:
    """Everything that shapes the generated stream; times in milliseconds, money in cents."""

    # From the settings: the mix and the rates of faults and background changes.
    weight_orders: float = 0.6
    weight_interactions: float = 0.3
    weight_inventory_chg: float = 0.1
    #: Events per second of the stream clock: TARGET_EPS. Sessions and pending cart adds age on this clock,
    #: which advances 1000 / stream_eps ms per event, so a seeded run's contents do not depend on the wall clock.
    stream_eps: float = 10.0
    p_late_event: float = 0.05
    p_bad_record: float = 0.001
    #: Per generated record: it is sent a second time, byte for byte (with the duplicate header).
    p_duplicate: float = 0.0
    #: Per good order: the ordered product's price moves by price_move, up or down alike, never below its cost.
    p_update_price: float = 0.001
    #: Share of orders that ship (P_ORDER_HAS_SHIPMENT), and of shipped orders the stock agent takes back
    #: (P_UPDATE_INVENTORY): the generator draws neither, it sizes restocks by them (see balanced_restock).
    p_shipped: float = 0.75
    p_returned: float = 0.02

    # Sessions: a funnel PAGE_VIEW (landing) -> SEARCH -> PAGE_VIEW (product) -> CART_ADD, with drop-off.
    #: A session with no step for this long (stream time) is closed; its cart adds can no longer become orders.
    session_timeout_ms: int = 30 * 60_000
    #: Mean of the exponential pause between two steps of a session.
    think_time_ms: float = 20_000.0
    #: Open sessions at most: beyond it the longest-waiting session steps on before its pause is over.
    max_open_sessions: int = 10_000
    p_search_after_landing: float = 0.7
    p_view_after_search: float = 0.8
    p_cart_after_view: float = 0.35
    p_search_after_view: float = 0.3
    p_search_after_cart: float = 0.25
    #: Share of orders placed from a pending CART_ADD (same user, product and session), when one is pending.
    p_order_follows_cart: float = 0.5
    #: Cart adds waiting to be followed up, at most (the oldest are forgotten first).
    max_pending: int = 10_000

    # Repeat customers and trending products.
    recent_users: int = 1_000
    recent_products: int = 100
    p_recent_user: float = 0.3
    p_recent_product: float = 0.2

    # Late events: delay = lognormal with this median and sigma, clipped to [min, max].
    late_median_ms: float = 20_000.0
    late_sigma: float = 1.0
    late_min_ms: int = 1_000
    late_max_ms: int = 600_000

    # Orders and background inventory changes.
    #: Relative weights of ordering 1, 2, 3, ... units.
    quantity_weights: tuple[float, ...] = (0.62, 0.2, 0.1, 0.05, 0.03)
    #: Smallest and largest relative price move.
    price_move: tuple[float, float] = (0.01, 0.15)
    #: Relative weights of RESTOCK and DAMAGE among background changes (normalised by their sum: 5/7 and 2/7).
    #: Returns are no background change: the stock agent takes back shipped orders (P_UPDATE_INVENTORY).
    change_weights: tuple[float, float] = (0.5, 0.2)
    #: Units per RESTOCK; None sizes restocks so they replace, on average, the units shipped (less those
    #: returned) and damaged.
    restock_units: tuple[int, int] | None = None
    damage_units: tuple[int, int] = (1, 3)

    def __post_init__(self) -> None:
        for name in _PROBABILITIES:
            _check(name, getattr(self, name), lambda value: 0.0 <= value <= 1.0, "a probability between 0 and 1")
        _check_weights("weights of the mix", self.mix)
        _check_weights("quantity_weights", self.quantity_weights)
        _check_weights("change_weights", self.change_weights)
        _check("change_weights", self.change_weights, lambda weights: len(weights) == 2, "two: RESTOCK and DAMAGE")
        for name in ("stream_eps", "session_timeout_ms", "think_time_ms", "max_open_sessions", "max_pending"):
            _check(name, getattr(self, name), lambda value: math.isfinite(value) and value > 0, "a number > 0")
        _check("late_min_ms", self.late_min_ms, lambda value: value >= 0, "a delay >= 0")
        for name in ("recent_users", "recent_products"):
            _check(name, getattr(self, name), lambda value: value >= 0, "a size >= 0")
        _check(
            "p_cart_after_view + p_search_after_view",
            self.p_cart_after_view + self.p_search_after_view,
            lambda value: value <= 1.0,
            "at most 1: they share the steps after a product page view",
        )
        _check("late_sigma", self.late_sigma, lambda value: value >= 0, "a number >= 0")
        _check(
            "late_median_ms",
            self.late_median_ms,
            lambda value: self.late_min_ms <= value <= self.late_max_ms,
            "a delay between late_min_ms and late_max_ms",
        )
        _check("price_move", self.price_move, lambda move: 0.0 < move[0] <= move[1] < 1.0, "0 < low <= high < 1")
        for name in ("restock_units", "damage_units"):
            value = getattr(self, name)
            if value is not None:
                _check(name, value, lambda units: 1 <= units[0] <= units[1], "a range 1 <= low <= high")

    @classmethod
    def from_settings(cls, settings: GenerationSettings) -> GenerationConfig:
        """The config of the app's settings; change the other knobs with ``dataclasses.replace``."""
        return cls(
            weight_orders=settings.weight_orders,
            weight_interactions=settings.weight_interactions,
            weight_inventory_chg=settings.weight_inventory_chg,
            p_late_event=settings.p_late_event,
            p_bad_record=settings.p_bad_record,
            p_duplicate=settings.p_duplicate,
            p_update_price=settings.p_update_price,
            p_shipped=settings.p_order_has_shipment,
            p_returned=settings.p_update_inventory,
            stream_eps=settings.target_eps,
        )

    def for_shards(self, shards: int) -> GenerationConfig:
        """The config of one of ``shards`` shards: each makes 1/shards of the events on a clock that keeps time.

        The stream clock of a shard advances shards x 1000 / stream_eps ms per event, so think times and session
        timeouts last as long as in one stream; the open sessions and pending follow-ups are shared out alike.
        Recency (recent users and products) is a shard's own.
        """
        if shards == 1:
            return self
        return replace(
            self,
            stream_eps=self.stream_eps / shards,
            max_open_sessions=max(1, math.ceil(self.max_open_sessions / shards)),
            max_pending=max(1, math.ceil(self.max_pending / shards)),
        )

    @property
    def mix(self) -> tuple[float, float, float]:
        """The weights of orders, interactions and inventory changes, in the order of app.wire.roles.GENERATED."""
        return (self.weight_orders, self.weight_interactions, self.weight_inventory_chg)

    @property
    def late_mu(self) -> float:
        """The mu of the late delay's lognormal: the log of its median."""
        return math.log(self.late_median_ms)


@dataclass(frozen=True)
class StreamPlace:
    """Where one generator's events sit in a deployment's stream: shard ``shard`` of ``shards``, from its event
    ``first_event`` on (its events are positions first_event x shards + shard, then every ``shards``-th)."""

    shard: int = 0
    shards: int = 1
    first_event: int = 0

    def __post_init__(self) -> None:
        if not 0 <= self.shard < self.shards:
            msg = f"shard {self.shard} of {self.shards}: expected 0 <= shard < shards"
            raise GenerationError(msg)
        if self.first_event < 0:
            msg = f"first event {self.first_event}: expected >= 0"
            raise GenerationError(msg)

    @property
    def records_prices(self) -> bool:
        """Shard 0 keeps the price moves for Postgres: every shard makes them, one writes them."""
        return self.shard == 0


def _check(name: str, value: Any, accepted: Callable[[Any], bool], accepts: str) -> None:
    if not accepted(value):
        msg = f"generation knob {name}={value!r}: expected {accepts}"
        raise GenerationError(msg)


def _check_weights(name: str, weights: tuple[float, ...]) -> None:
    accepted = bool(weights) and all(math.isfinite(w) and w >= 0 for w in weights) and math.fsum(weights) > 0
    if not accepted:
        msg = f"{name} {weights!r}: expected numbers >= 0, not all 0"
        raise GenerationError(msg)

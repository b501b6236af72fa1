"""The generator: batches of orders, session steps and background inventory changes in the configured mix."""

from __future__ import annotations

import math
import random
from bisect import bisect

from app.generation.catalog_snapshot import Catalog
from app.generation.config import GenerationConfig, StreamPlace
from app.generation.events import Event, EventIds, PriceChange
from app.generation.exceptions import GenerationError
from app.generation.faults import BAD_KINDS
from app.generation.prices import PriceWalk
from app.generation.sampler import Sampler
from app.generation.sessions import SessionPool
from app.wire.roles import CUSTOMER_INTERACTIONS, INVENTORY_CHANGES, ORDERS
from schemas.symbols import DAMAGE, RESTOCK

_NEGATIVE_QUANTITY = "negative_quantity"
#: A deployment of one shard: the whole stream.
ONE_STREAM = StreamPlace()


class EventGenerator:
    """Makes events from a catalogue, a config and one seeded Random; the caller supplies the clock.

    Each event draws, in this order, whether it is late, whether it is bad (and how), then its kind from
    the mix, then its contents. Sessions and pending cart adds age on the stream clock, which advances
    1000 / stream_eps ms per event; ``now_ms`` only stamps the events. So a seed gives the same contents,
    ids included, however the events are split into batches and whenever the batches are made.

    A generator is one shard's stream (``place``) of a deployment's: its events sit at positions
    first_event x shards + shard, then every ``shards``-th, of the whole stream, and prices move at positions of
    that whole stream (``PriceWalk``, drawn from ``price_rng``, which every shard must seed alike). ``ids``
    default to a random start; a shard resuming passes the sequence numbers it reserved.
    """

    def __init__(
        self,
        catalog: Catalog,
        config: GenerationConfig,
        rng: random.Random,
        *,
        place: StreamPlace = ONE_STREAM,
        ids: EventIds | None = None,
        price_rng: random.Random | None = None,
    ) -> None:
        self.config = config
        self.place = place
        self.sampler = Sampler(
            catalog, rng, config.recent_users, config.recent_products, config.p_recent_user, config.p_recent_product
        )
        self._id = ids or EventIds(rng.getrandbits)
        self.prices = PriceWalk(
            price_rng or random.Random(rng.getrandbits(64)),
            self.sampler.popularity,
            self.sampler.prices,
            self.sampler.costs,
            self.sampler.product_ids,
            config.price_move,
            price_move_rate(config),
            recording=place.records_prices,
        )
        self.sessions = SessionPool(config, self.sampler, rng, self._id)
        self._carts = self.sessions.carts
        self._prices = self.sampler.prices  # the sampler's list: set_price shows here at once
        self._product_ids = self.sampler.product_ids
        self._skus = self.sampler.skus
        self._random = rng.random
        self._lognormal = rng.lognormvariate
        self._warehouse_ids = catalog.warehouse_ids
        self._currency = catalog.currency
        self._kind_cuts = cuts(config.mix)
        self._quantity_cuts = cuts(config.quantity_weights)
        self._change_cuts = cuts(config.change_weights)
        self._restock_units = config.restock_units or balanced_restock(config)
        self._late_mu = config.late_mu
        self._clock_step = 1000.0 / config.stream_eps
        self._clock_ms = place.first_event * self._clock_step
        #: The position of the last event made, in the whole stream (before the first: one step before it).
        self._position = place.first_event * place.shards + place.shard - place.shards
        self.prices.advance(self._position + place.shards - 1)  # every move before this shard's first event

    def next_batch(self, count: int, now_ms: int) -> list[Event]:
        """Exactly ``count`` events emitted at ``now_ms`` (epoch milliseconds), in the mix of the weights."""
        if count < 0:
            msg = f"next_batch({count}): expected a count >= 0"
            raise GenerationError(msg)
        rnd = self._random
        order_cut, interaction_cut = self._kind_cuts[0], self._kind_cuts[1]
        p_late, p_bad, p_duplicate = self.config.p_late_event, self.config.p_bad_record, self.config.p_duplicate
        late_delay, order, interaction, change = self._late_delay, self._order, self._interaction, self._change
        clock, clock_step = self._clock_ms, self._clock_step
        position, step, walk = self._position, self.place.shards, self.prices
        next_move = walk.next_at
        events: list[Event] = []
        append = events.append
        for _ in range(count):
            clock += clock_step
            position += step
            late = late_delay() if rnd() < p_late else 0
            bad = BAD_KINDS[int(rnd() * len(BAD_KINDS))] if rnd() < p_bad else None
            draw = rnd()
            if draw < order_cut:
                append(order(clock, now_ms, late, bad))
            elif draw < interaction_cut:
                append(interaction(clock, now_ms, late, bad))
            else:
                append(change(now_ms, late, bad))
            if p_duplicate and rnd() < p_duplicate:  # drawn only when asked for: other streams stay as they were
                events[-1] = events[-1]._replace(duplicate=True)
            if position + step > next_move:  # moves before this shard's next event: it charges them
                walk.advance(position + step - 1)
                next_move = walk.next_at
        self._clock_ms = clock
        self._position = position
        return events

    @property
    def clock_ms(self) -> float:
        """The stream clock: events generated so far x 1000 / stream_eps, in milliseconds."""
        return self._clock_ms

    def drain_price_changes(self) -> list[PriceChange]:
        """The price changes made since the last call, oldest first; later orders already charge them.

        Only a generator whose place records prices keeps them (one shard writes them for the deployment).
        """
        return self.prices.drain()

    def set_price(self, product_id: int, price_cents: int) -> None:
        """Charge ``price_cents`` for ``product_id`` from the next order on (a price changed elsewhere)."""
        self.sampler.set_price(product_id, price_cents)

    def _order(self, clock_ms: float, now_ms: int, late: int, bad: str | None) -> Event:
        sampler = self.sampler
        cart = None
        if bad is None and self._carts and self._random() < self.config.p_order_follows_cart:
            cart = self.sessions.take_cart(clock_ms)
        if cart is None:
            user_id, product, session_id = sampler.draw_user(), sampler.draw_product(), None
        else:
            user_id, product, session_id = cart.user_id, cart.product, cart.session_id
            sampler.recent_users.touch(user_id)
            sampler.recent_products.touch(product)
        quantity = 1 + bisect(self._quantity_cuts, self._random())
        if bad == _NEGATIVE_QUANTITY:
            quantity = -quantity
        price = self._prices[product]
        order_id = self._id()
        value: dict[str, object] = {
            "order_id": order_id,
            "user_id": user_id,
            "product_id": self._product_ids[product],
            "sku": self._skus[product],
            "quantity": quantity,
            "unit_price": price,
            "amount": quantity * price,
            "currency": self._currency,
            "session_id": session_id,
            "event_time": now_ms - late,
        }
        return Event(ORDERS, order_id, value, now_ms, late, bad)

    def _interaction(self, clock_ms: float, now_ms: int, late: int, bad: str | None) -> Event:
        if bad is None:
            session_id, value = self.sessions.step(clock_ms, now_ms - late)
        else:
            user_id = self.sampler.draw_user()
            if bad == _NEGATIVE_QUANTITY:
                user_id = min(-user_id, -1)
            session_id, value = self.sessions.stray_page_view(now_ms - late, user_id)
        return Event(CUSTOMER_INTERACTIONS, session_id, value, now_ms, late, bad)

    def _change(self, now_ms: int, late: int, bad: str | None) -> Event:
        product = self.sampler.popular_product()
        change_type, delta = self._background_change()
        if bad == _NEGATIVE_QUANTITY:
            delta = -delta
        product_id = self.sampler.product_ids[product]
        value: dict[str, object] = {
            "change_id": self._id(),
            "product_id": product_id,
            "sku": self.sampler.skus[product],
            "warehouse_id": self._warehouse_ids[int(self._random() * len(self._warehouse_ids))],
            "change_type": change_type,
            "delta": delta,
            "source_id": None,
            "event_time": now_ms - late,
        }
        return Event(INVENTORY_CHANGES, str(product_id), value, now_ms, late, bad)

    def _background_change(self) -> tuple[str, int]:
        """A RESTOCK or DAMAGE by the change weights, and its signed delta."""
        rnd = self._random
        restock = bisect(self._change_cuts, rnd()) == 0
        low, high = self._restock_units if restock else self.config.damage_units
        units = low + int(rnd() * (high - low + 1))
        return (RESTOCK, units) if restock else (DAMAGE, -units)

    def _late_delay(self) -> int:
        """Milliseconds late: lognormal around the median, clipped to [late_min_ms, late_max_ms]."""
        config = self.config
        delay = self._lognormal(self._late_mu, config.late_sigma)
        return int(min(max(delay, config.late_min_ms), config.late_max_ms))


def price_move_rate(config: GenerationConfig) -> float:
    """Price moves per event of the whole stream: P_UPDATE_PRICE per good order, as good orders' share of events."""
    order_share = config.weight_orders / math.fsum(config.mix)
    return config.p_update_price * order_share * (1.0 - config.p_bad_record)


def cuts(weights: tuple[float, ...]) -> list[float]:
    """Thresholds for ``bisect(cuts, random())`` to pick index i with probability weights[i] / sum.

    The cut of the last positive weight and all after it are 1.0 exactly, so rounding never picks
    an index whose weight is 0.
    """
    total = math.fsum(weights)
    thresholds = [math.fsum(weights[: index + 1]) / total for index in range(len(weights))]
    last_positive = max(index for index, weight in enumerate(weights) if weight > 0)
    return [1.0 if index >= last_positive else cut for index, cut in enumerate(thresholds)]


def balanced_restock(config: GenerationConfig) -> tuple[int, int]:
    """Units per RESTOCK, uniform from about half to 1.5 times ``balanced_restock_mean``: the top is chosen so that
    the range's midpoint is that mean to within a quarter unit, or restocks would drift from what is taken."""
    mean = balanced_restock_mean(config)
    low = max(1, round(mean / 2.0))
    return low, round(2.0 * mean) - low


def balanced_restock_mean(config: GenerationConfig) -> float:
    """The mean RESTOCK that replaces, on average, the units the stock agent ships (less those it takes back) and
    the units damaged; at least 1.

    Per good event: p_shipped of the orders ship their quantity, p_returned of those come back (1 to quantity units
    each, so half of the quantity and half a unit on average), and the DAMAGE share of changes takes the mean of
    damage_units; the RESTOCK share of changes brings the mean back. A bad record (P_BAD_RECORD, dead-lettered) is
    drawn before the kind, so it spoils the same share of orders and of changes and drops out of the ratio.
    """
    order_share, _, change_share = (weight / math.fsum(config.mix) for weight in config.mix)
    restock_share, damage_share = (w / math.fsum(config.change_weights) for w in config.change_weights)
    restocks = change_share * restock_share
    if restocks == 0:
        return 1.0
    quantity = mean_quantity(config)
    shipped = order_share * config.p_shipped * quantity
    returned = order_share * config.p_shipped * config.p_returned * (quantity + 1.0) / 2.0
    damaged = change_share * damage_share * (config.damage_units[0] + config.damage_units[1]) / 2.0
    return max(1.0, (shipped - returned + damaged) / restocks)


def mean_quantity(config: GenerationConfig) -> float:
    """The mean units of an order, by the quantity weights."""
    total = math.fsum(config.quantity_weights)
    return sum((units + 1) * weight for units, weight in enumerate(config.quantity_weights)) / total

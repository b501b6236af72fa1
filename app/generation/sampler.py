"""Fast skewed draws of users and products, with recently active ones drawn again, and current prices."""

from __future__ import annotations

import math
import random
from collections import OrderedDict
from collections.abc import Sequence

from app.generation.catalog_snapshot import Catalog
from app.generation.exceptions import GenerationError


class AliasTable:
    """Index i with probability weights[i] / sum(weights), in constant time from one uniform draw.

    Vose's alias method: column ``int(draw * n)`` keeps its own index when the rest of the scaled draw is below
    the column's threshold, and gives its alias otherwise. A bisection over the cumulative weights of 100,000
    users took 17 comparisons over scattered floats, a tenth of the cost of an event. A column of weight 0 has
    threshold 0 and an alias of positive weight, so it is never drawn.
    """

    __slots__ = ("aliases", "size", "thresholds")

    def __init__(self, weights: Sequence[float]) -> None:
        total, size = math.fsum(weights), len(weights)
        if not size or not total > 0.0 or not all(weight >= 0.0 for weight in weights):
            raise GenerationError("alias table: expected weights >= 0, not all 0")
        scaled = [weight * size / total for weight in weights]
        heaviest = max(range(size), key=weights.__getitem__)
        #: Read-only to callers, like ``size``.
        self.thresholds = [1.0 if weight > 0.0 else 0.0 for weight in weights]
        self.aliases = [index if weight > 0.0 else heaviest for index, weight in enumerate(weights)]
        self.size = size
        small = [index for index, share in enumerate(scaled) if share < 1.0]
        large = [index for index, share in enumerate(scaled) if share >= 1.0]
        while small and large:
            light, heavy = small.pop(), large[-1]
            self.thresholds[light], self.aliases[light] = scaled[light], heavy
            scaled[heavy] -= 1.0 - scaled[light]
            if scaled[heavy] < 1.0:
                small.append(large.pop())
        # Columns left in either list are full but for rounding: they keep the defaults set above.

    def pick(self, draw: float) -> int:
        """The index for ``draw``, uniform in [0, 1)."""
        scaled = draw * self.size
        column = int(scaled)
        return column if scaled - column < self.thresholds[column] else self.aliases[column]


class RecentSet:
    """The ``capacity`` most recently touched items, least recent evicted first; ``pick`` is O(1) and uniform."""

    __slots__ = ("_capacity", "items", "slots")

    def __init__(self, capacity: int) -> None:
        if capacity < 0:
            msg = f"recent-set capacity {capacity}: expected a size >= 0"
            raise GenerationError(msg)
        self._capacity = capacity
        #: item -> its index in ``items``; the dict's order is the recency order, oldest first.
        self.slots: OrderedDict[int, int] = OrderedDict()
        #: The items in no particular order, for uniform picks (read-only to callers).
        self.items: list[int] = []

    def __len__(self) -> int:
        return len(self.items)

    def __contains__(self, item: int) -> bool:
        return item in self.slots

    def recency(self) -> list[int]:
        """The items, least recently touched first."""
        return list(self.slots)

    def touch(self, item: int) -> None:
        """Mark ``item`` as just active, evicting the least recent item when full."""
        if item in self.slots:
            self.slots.move_to_end(item)
        else:
            self.add(item)

    def add(self, item: int) -> None:
        """Add ``item``, not in the set yet, as the most recent, evicting the least recent item when full."""
        if not self._capacity:
            return
        if len(self.slots) >= self._capacity:
            self._evict_oldest()
        self.slots[item] = len(self.items)
        self.items.append(item)

    def pick(self, draw: float) -> int:
        """The item at ``draw`` (0 <= draw < 1) of the set: uniform when ``draw`` is; the set must not be empty."""
        items = self.items
        return items[int(draw * len(items))]

    def _evict_oldest(self) -> None:
        oldest, slot = self.slots.popitem(last=False)
        last = self.items.pop()
        if last != oldest:
            self.items[slot] = last
            self.slots[last] = slot  # reassigning a key keeps its place in the recency order


class Sampler:
    """Draws users and products: popularity-weighted, or with a set share from the recently active ones.

    Products are handled by their index in ``catalog.products``; ``product_ids``, ``skus``, ``prices``,
    ``costs`` and ``terms`` are parallel to it. ``prices`` holds the current prices, which ``set_price`` changes.
    """

    def __init__(
        self,
        catalog: Catalog,
        rng: random.Random,
        recent_users: int,
        recent_products: int,
        p_recent_user: float,
        p_recent_product: float,
    ) -> None:
        self._random = rng.random
        self.user_ids = catalog.user_ids
        self._users = AliasTable(catalog.user_weights)
        self.product_ids = tuple(product.product_id for product in catalog.products)
        self.skus = tuple(product.sku for product in catalog.products)
        self.prices = [product.price_cents for product in catalog.products]
        self.costs = tuple(product.cost_cents for product in catalog.products)
        self.terms = catalog.search_terms()
        #: Products by popularity alone (read-only to callers).
        self.popularity = AliasTable([product.popularity for product in catalog.products])
        self._products = self.popularity
        self._index = {product_id: index for index, product_id in enumerate(self.product_ids)}
        self.recent_users = RecentSet(recent_users)
        self.recent_products = RecentSet(recent_products)
        self._p_recent_user = p_recent_user
        self._p_recent_product = p_recent_product

    def draw_user(self) -> int:
        """A user id, now counted as recently active."""
        rnd = self._random
        recent = self.recent_users.items
        if recent and rnd() < self._p_recent_user:
            user_id = recent[int(rnd() * len(recent))]
            self.recent_users.slots.move_to_end(user_id)
        else:
            user_id = self.user_ids[self._users.pick(rnd())]
            slots = self.recent_users.slots
            if user_id in slots:
                slots.move_to_end(user_id)
            else:
                self.recent_users.add(user_id)
        return user_id

    def draw_product(self) -> int:
        """A product index, now counted as recently active (trending)."""
        rnd = self._random
        recent = self.recent_products.items
        if recent and rnd() < self._p_recent_product:
            index = recent[int(rnd() * len(recent))]
            self.recent_products.slots.move_to_end(index)
        else:
            index = self._products.pick(rnd())
            slots = self.recent_products.slots
            if index in slots:
                slots.move_to_end(index)
            else:
                self.recent_products.add(index)
        return index

    def popular_product(self) -> int:
        """A product index by popularity alone, leaving the recent products as they are."""
        return self._products.pick(self._random())

    def index_of(self, product_id: int) -> int:
        """The index of the product ``product_id``."""
        try:
            return self._index[product_id]
        except KeyError:
            msg = f"product {product_id} is not in the catalog"
            raise GenerationError(msg) from None

    def set_price(self, product_id: int, price_cents: int) -> None:
        """Make ``price_cents`` the price every later order of ``product_id`` is charged."""
        if price_cents <= 0:
            msg = f"price {price_cents} cents for product {product_id}: expected > 0"
            raise GenerationError(msg)
        self.prices[self.index_of(product_id)] = price_cents

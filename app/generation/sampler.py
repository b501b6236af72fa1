"""Fast skewed draws of users and products, with recently active ones drawn again, and current prices."""

from __future__ import annotations

import random
from bisect import bisect
from collections import OrderedDict
from itertools import accumulate

from app.generation.catalog import Catalog
from app.generation.exceptions import GenerationError


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
        self._user_cumulative = list(accumulate(catalog.user_weights))
        self._user_total = self._user_cumulative[-1]
        self.product_ids = tuple(product.product_id for product in catalog.products)
        self.skus = tuple(product.sku for product in catalog.products)
        self.prices = [product.price_cents for product in catalog.products]
        self.costs = tuple(product.cost_cents for product in catalog.products)
        self.terms = catalog.search_terms()
        self._product_cumulative = list(accumulate(product.popularity for product in catalog.products))
        self._product_total = self._product_cumulative[-1]
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
            user_id = self.user_ids[bisect(self._user_cumulative, rnd() * self._user_total)]
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
            index = bisect(self._product_cumulative, rnd() * self._product_total)
            slots = self.recent_products.slots
            if index in slots:
                slots.move_to_end(index)
            else:
                self.recent_products.add(index)
        return index

    def popular_product(self) -> int:
        """A product index by popularity alone, leaving the recent products as they are."""
        return bisect(self._product_cumulative, self._random() * self._product_total)

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

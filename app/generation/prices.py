"""The price walk: products' prices move at fixed points of the deployment's stream, the same for every shard.

A move happens at a position of the whole stream (all shards' events interleaved: shard s's k-th event is
position k x shards + s), drawn from one Random that every shard seeds alike. So two shards, in one worker or
in two, charge the same price for a product at the same position, and a shard that starts late, or again after
a restart, walks from the list prices to the price of its position before its first event.
"""

from __future__ import annotations

import math
import random
from collections.abc import Sequence

from app.generation.events import PriceChange
from app.generation.sampler import AliasTable


class PriceWalk:
    """Moves ``prices`` in place as the stream passes the positions of the moves.

    Moves are a Bernoulli process over positions with ``per_event`` probability each: the gaps between them are
    geometric. Each moves one product, drawn by popularity, by a relative amount in ``price_move`` up or down
    alike, never below its cost (a move that rounds to nothing, or hits the cost, goes up by a cent).
    """

    __slots__ = (
        "_costs",
        "_log_stay",
        "_move",
        "_product_ids",
        "_products",
        "_random",
        "changes",
        "next_at",
        "prices",
        "recording",
    )

    def __init__(
        self,
        rng: random.Random,
        products: AliasTable,
        prices: list[int],
        costs: Sequence[int],
        product_ids: Sequence[int],
        price_move: tuple[float, float],
        per_event: float,
        *,
        recording: bool = True,
    ) -> None:
        """``recording``: keep each move in ``changes`` for the edge to write (the shard that owns that work)."""
        self._random = rng.random
        self._products = products
        self.prices = prices
        self._costs = costs
        self._product_ids = product_ids
        self._move = price_move
        self._log_stay = math.log1p(-per_event) if 0.0 < per_event < 1.0 else None
        self.recording = recording
        self.changes: list[PriceChange] = []
        #: The position of the next move; math.inf when prices never move.
        self.next_at: float = math.inf if per_event <= 0.0 else self._gap() - 1

    def advance(self, position: int) -> None:
        """Make every move at or before ``position``: the event at a move's position is the last at the old price."""
        while self.next_at <= position:
            self._step()
            self.next_at += self._gap()

    def _gap(self) -> int:
        if self._log_stay is None:
            return 1
        return 1 + int(math.log(1.0 - self._random()) / self._log_stay)

    def _step(self) -> None:
        rnd = self._random
        product = self._products.pick(rnd())
        low, high = self._move
        move = low + (high - low) * rnd()
        if rnd() < 0.5:
            move = -move
        prices = self.prices
        old = prices[product]
        new = max(self._costs[product], round(old * (1.0 + move)))
        if new == old:
            new = old + 1
        prices[product] = new
        if self.recording:
            self.changes.append(PriceChange(self._product_ids[product], old, new))

    def drain(self) -> list[PriceChange]:
        """The moves recorded since the last call, oldest first."""
        changes, self.changes = self.changes, []
        return changes

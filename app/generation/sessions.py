"""Browsing sessions: each interaction is the next step of an open session or the first of a new one.

A session has one user and walks a funnel, one step per interaction event:
PAGE_VIEW of a landing page -> SEARCH for a term of a catalogue product -> PAGE_VIEW of that product ->
CART_ADD of it, dropping off after each step, or searching again after a product page or a cart add.
Between two steps the session pauses for an exponential think time. An interaction steps on the session
whose pause ended first, once it has (or at once when max_open_sessions are open), and starts a new
session otherwise, so the number of open sessions follows the rate. A session idle longer than the
timeout is closed, and its cart adds are no longer pending for orders.

All these times are on the stream clock (see GenerationConfig.stream_eps), not the wall clock, so the
sessions of a seeded run do not depend on when its batches happen to be generated.
"""

from __future__ import annotations

import random
from collections import deque
from heapq import heappop, heappush
from math import log
from typing import NamedTuple

from app.generation.config import GenerationConfig
from app.generation.events import EventIds
from app.generation.sampler import Sampler
from schemas.symbols import CART_ADD, PAGE_VIEW, SEARCH

# Funnel stages: the step a session takes next.
LANDING, SEARCHING, PRODUCT_VIEW, CARTING = range(4)

#: An open session in the queue: (due, sequence, session_id, user_id, stage, product index, last step), times
#: in stream milliseconds.
#: Atomic values only, so the garbage collector stops tracking it; sequence breaks ties in order of scheduling.
_Due = tuple[float, int, str, int, int, int, float]


class CartAdd(NamedTuple):
    """A CART_ADD an order may follow: same session, user and product."""

    session_id: str
    user_id: int
    product: int
    #: Stream milliseconds.
    at_ms: float


class SessionPool:
    """The open sessions, by the time their next step is due, and the cart adds orders may follow."""

    def __init__(self, config: GenerationConfig, sampler: Sampler, rng: random.Random, ids: EventIds) -> None:
        self._config = config
        self._sampler = sampler
        self._random = rng.random
        self._id = ids
        self._due: list[_Due] = []
        self._sequence = 0
        self.carts: deque[CartAdd] = deque(maxlen=config.max_pending)

    @property
    def open_sessions(self) -> int:
        """Sessions open now, timed-out ones included until they are next looked at."""
        return len(self._due)

    def step(self, clock_ms: float, event_ms: int) -> tuple[str, dict[str, object]]:
        """The session id and value of the interaction at stream time ``clock_ms``: a due step, or a new session."""
        due = self._due
        timeout, most = self._config.session_timeout_ms, self._config.max_open_sessions
        while due and (due[0][0] <= clock_ms or len(due) >= most):
            _, _, session_id, user_id, stage, product, last_ms = heappop(due)
            if clock_ms - last_ms <= timeout:
                return self._advance(session_id, user_id, stage, product, clock_ms, event_ms)
        return self._advance(self._id(), self._sampler.draw_user(), LANDING, -1, clock_ms, event_ms)

    def stray_page_view(self, event_ms: int, user_id: int) -> tuple[str, dict[str, object]]:
        """A landing PAGE_VIEW of a session that never goes on: for a bad record, kept out of every state."""
        session_id = self._id()
        return session_id, {
            "interaction_id": self._id(),
            "session_id": session_id,
            "user_id": user_id,
            "product_id": None,
            "interaction_type": PAGE_VIEW,
            "search_term": None,
            "event_time": event_ms,
        }

    def take_cart(self, clock_ms: float) -> CartAdd | None:
        """The oldest cart add of a session not timed out at stream time ``clock_ms``, removed; or None."""
        carts = self.carts
        timeout = self._config.session_timeout_ms
        while carts:
            cart = carts.popleft()
            if clock_ms - cart.at_ms <= timeout:
                return cart
        return None

    def _advance(
        self, session_id: str, user_id: int, stage: int, product: int, clock_ms: float, event_ms: int
    ) -> tuple[str, dict[str, object]]:
        """Take the session's step ``stage`` at stream time ``clock_ms``; queue its next step, if it has one."""
        config = self._config
        draw = self._random()
        term = None
        if stage == LANDING:
            kind, following = PAGE_VIEW, SEARCHING if draw < config.p_search_after_landing else -1
        elif stage == SEARCHING:
            product = self._sampler.draw_product()
            terms = self._sampler.terms[product]
            term = terms[int(self._random() * len(terms))]
            kind, following = SEARCH, PRODUCT_VIEW if draw < config.p_view_after_search else -1
        elif stage == PRODUCT_VIEW:
            kind, following = PAGE_VIEW, _after_product_view(draw, config)
        else:
            kind, following = CART_ADD, SEARCHING if draw < config.p_search_after_cart else -1
            self.carts.append(CartAdd(session_id, user_id, product, clock_ms))
        if following >= 0:
            self._sequence += 1
            due = clock_ms - config.think_time_ms * log(1.0 - self._random())
            heappush(self._due, (due, self._sequence, session_id, user_id, following, product, clock_ms))
        return session_id, {
            "interaction_id": self._id(),
            "session_id": session_id,
            "user_id": user_id,
            "product_id": self._sampler.product_ids[product] if stage >= PRODUCT_VIEW else None,
            "interaction_type": kind,
            "search_term": term,
            "event_time": event_ms,
        }


def _after_product_view(draw: float, config: GenerationConfig) -> int:
    """The stage after a product page: a cart add, another search, or -1 for leaving."""
    if draw < config.p_cart_after_view:
        return CARTING
    if draw < config.p_cart_after_view + config.p_search_after_view:
        return SEARCHING
    return -1

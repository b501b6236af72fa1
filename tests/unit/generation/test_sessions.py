"""Sessions: the PAGE_VIEW -> SEARCH -> PAGE_VIEW -> CART_ADD funnel, the timeout, and orders after cart adds."""

from __future__ import annotations

import itertools
import random
from collections import defaultdict
from typing import Any

from app.generation import Sampler, search_terms
from app.generation.events import Event, EventIds
from app.generation.sessions import SessionPool
from app.wire.roles import CUSTOMER_INTERACTIONS, ORDERS
from tests.unit.generation.support import NOW_MS, assert_share, make_catalog, make_config, make_generator


def sessions_of(events: list[Event]) -> dict[str, list[dict[str, object]]]:
    """The good interactions by session, in the order they were emitted."""
    by_session: dict[str, list[dict[str, object]]] = defaultdict(list)
    for event in events:
        if event.kind == CUSTOMER_INTERACTIONS and event.bad_kind is None:
            by_session[event.key].append(event.value)
    return by_session


def browsing(seed: int = 7, total: int = 40_000, **knobs: Any) -> list[Event]:
    """Mostly interactions at 100 events/s of stream time, the clock keeping pace."""
    knobs = {
        "weight_orders": 0.2,
        "weight_interactions": 0.8,
        "weight_inventory_chg": 0.0,
        "stream_eps": 100.0,
        **knobs,
    }
    generator = make_generator(seed=seed, **knobs)
    events: list[Event] = []
    for tick in range(total // 100):
        events += generator.next_batch(100, NOW_MS + tick * 1_000)
    return events


def test_every_session_walks_the_funnel_in_order() -> None:
    catalog = make_catalog()
    terms = {product.product_id: search_terms(product) for product in catalog.products}
    sessions = sessions_of(browsing())
    assert len(sessions) > 1_000
    for steps in sessions.values():
        assert len({step["user_id"] for step in steps}) == 1
        first = steps[0]
        assert (first["interaction_type"], first["product_id"], first["search_term"]) == ("PAGE_VIEW", None, None)
        for before, step in itertools.pairwise(steps):
            kind = step["interaction_type"]
            if kind == "SEARCH":
                assert step["product_id"] is None
                assert before["interaction_type"] in ("PAGE_VIEW", "CART_ADD")
            elif kind == "PAGE_VIEW":  # a product page, reached from a search for one of its terms
                assert before["interaction_type"] == "SEARCH"
                assert before["search_term"] in terms[step["product_id"]]  # type: ignore[index]
                assert step["search_term"] is None
            else:
                assert kind == "CART_ADD"
                assert (before["interaction_type"], before["product_id"]) == ("PAGE_VIEW", step["product_id"])
                assert step["product_id"] is not None


def test_the_funnel_drops_off() -> None:
    sessions = sessions_of(browsing()).values()
    searched = sum(any(step["interaction_type"] == "SEARCH" for step in steps) for steps in sessions)
    viewed = sum(any(step["product_id"] is not None for step in steps) for steps in sessions)
    carted = sum(any(step["interaction_type"] == "CART_ADD" for step in steps) for steps in sessions)
    assert len(sessions) > searched > viewed > carted > 0


def test_orders_follow_cart_adds_of_the_same_user_and_product() -> None:
    config = make_config()
    cart_adds: dict[str, list[tuple[object, object]]] = defaultdict(list)
    pending = followed = eligible = 0
    for event in browsing():  # 400 s of stream time: no cart add is older than the timeout
        if event.kind == CUSTOMER_INTERACTIONS and event.value["interaction_type"] == "CART_ADD":
            cart_adds[event.key].append((event.value["user_id"], event.value["product_id"]))
            pending += 1
        elif event.kind == ORDERS and event.bad_kind is None:
            eligible += pending > 0
            session_id = event.value["session_id"]
            if session_id is not None:
                followed += 1
                pending -= 1
                cart_adds[str(session_id)].remove((event.value["user_id"], event.value["product_id"]))
    assert_share(followed, eligible, config.p_order_follows_cart, "orders after a pending cart add")


def pool(**knobs: Any) -> SessionPool:
    config = make_config(**knobs)
    rng = random.Random(9)
    sampler = Sampler(make_catalog(), rng, 100, 20, 0.0, 0.0)
    return SessionPool(config, sampler, rng, EventIds(rng.getrandbits))


def test_a_session_idle_beyond_the_timeout_is_closed() -> None:
    sessions = pool(session_timeout_ms=60_000, think_time_ms=5_000.0)
    opened = {sessions.step(clock_ms=0.0, event_ms=NOW_MS)[0] for _ in range(200)}
    later = {sessions.step(clock_ms=60_001.0, event_ms=NOW_MS)[0] for _ in range(200)}
    assert not opened & later
    assert sessions.open_sessions <= 200


def test_a_session_within_the_timeout_goes_on() -> None:
    sessions = pool(session_timeout_ms=60_000, think_time_ms=5_000.0)
    opened = {sessions.step(clock_ms=0.0, event_ms=NOW_MS)[0] for _ in range(200)}
    later = {sessions.step(clock_ms=59_999.0, event_ms=NOW_MS)[0] for _ in range(200)}
    assert opened & later


def test_steps_of_a_session_are_never_further_apart_than_the_timeout() -> None:
    timeout = 30_000.0
    sessions = pool(session_timeout_ms=int(timeout), think_time_ms=30_000.0)  # pauses often exceed the timeout
    last_step: dict[str, float] = {}
    for tick in range(20_000):
        clock = tick * 50.0
        session_id, _ = sessions.step(clock_ms=clock, event_ms=NOW_MS)
        if session_id in last_step:
            assert clock - last_step[session_id] <= timeout
        last_step[session_id] = clock


def browsed_pool() -> SessionPool:
    sessions = pool(session_timeout_ms=60_000)
    for tick in range(3_000):
        sessions.step(clock_ms=tick * 10.0, event_ms=NOW_MS)
    assert len(sessions.carts) > 1
    return sessions


def test_cart_adds_expire_with_their_session() -> None:
    sessions = browsed_pool()
    newest = sessions.carts[-1]
    assert sessions.take_cart(clock_ms=newest.at_ms + 60_000.0) == newest  # the older ones expired on the way
    sessions = browsed_pool()
    assert sessions.take_cart(clock_ms=newest.at_ms + 60_001.0) is None
    assert not sessions.carts


def test_open_sessions_are_capped() -> None:
    sessions = pool(max_open_sessions=50)
    for _ in range(1_000):
        sessions.step(clock_ms=0.0, event_ms=NOW_MS)
    assert sessions.open_sessions <= 50

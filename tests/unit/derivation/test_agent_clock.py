"""The agents' clock: it follows the record timestamps the agents take, and derived records are stamped on it."""

from __future__ import annotations

import asyncio
import json
import random
from collections import Counter
from collections.abc import Callable
from types import SimpleNamespace
from typing import Any

from agents.fulfilment import agent_clock
from agents.ledger import Decided
from agents.orders import OrdersAgent
from app.derivation import DerivationConfig
from app.derivation.agent_clock import AgentClock
from app.settings import Settings, load_settings
from app.truth import minute_of
from tests.unit.agents.support import StubCodec, stock_agent, truth
from tests.unit.derivation.support import make_order
from tests.unit.generation.support import FrozenWall
from tests.unit.support import RecordingProducer

DAY_MS = 86_400_000
#: 2026-11-29T00:00:00Z, simulated: long before the wall clock of these tests.
SIMULATED_MS = 1_795_910_400_000


def test_by_default_the_agents_clock_is_the_wall_clock() -> None:
    wall = FrozenWall(1_900_000_000.0)
    clock = AgentClock(wall=wall)
    assert clock.now_ms() == 1_900_000_000_000
    clock.saw(1_800_000_000_000)  # a record from the past does not move it back
    wall.seconds += 1.5
    assert clock.now_ms() == 1_900_000_001_500


def test_it_follows_the_latest_record_taken_at_speedup_since_and_never_goes_back() -> None:
    wall = FrozenWall(1_900_000_000.0)
    clock = AgentClock(SIMULATED_MS - DAY_MS, 60.0, wall=wall)
    assert clock.now_ms() == SIMULATED_MS - DAY_MS
    clock.saw(SIMULATED_MS)  # a backfill's records race ahead: the clock with them
    assert clock.now_ms() == SIMULATED_MS
    clock.saw(SIMULATED_MS - 5_000)  # one from an earlier partition
    assert clock.now_ms() == SIMULATED_MS
    wall.seconds += 2  # nothing taken since: on at 60 simulated seconds per wall second
    assert clock.now_ms() == SIMULATED_MS + 120_000


def test_a_derived_record_is_stamped_at_its_event_time_or_the_clock_whichever_is_later() -> None:
    clock = AgentClock(SIMULATED_MS, wall=FrozenWall(1_900_000_000.0))
    assert clock.stamp(SIMULATED_MS + 90_000) == SIMULATED_MS + 90_000
    assert clock.stamp(SIMULATED_MS - 90_000) == SIMULATED_MS
    assert clock.stamp(None) == SIMULATED_MS
    assert clock.now_ms() == SIMULATED_MS  # stamping ahead does not move the clock


def test_the_agents_start_where_the_generator_does(settings_factory: Callable[..., Settings]) -> None:
    start = "2026-11-29T00:00:00Z"
    backfilled = agent_clock(settings_factory(START_TIME=start, BACKFILL="1d"))
    assert abs(backfilled.now_ms() - (SIMULATED_MS - DAY_MS)) < 5_000
    assert abs(agent_clock(settings_factory(START_TIME=start)).now_ms() - SIMULATED_MS) < 5_000


# ----- the agents stamp on it


class Intake:
    def __init__(self, order: dict) -> None:
        self.order = order

    async def value(self, *args: Any) -> dict:
        return self.order


def test_the_orders_agent_stamps_the_payment_and_request_no_earlier_than_the_order() -> None:
    wall = FrozenWall(1_900_000_000.0)  # the wall clock is two years past the simulated orders
    clock = AgentClock(SIMULATED_MS - DAY_MS, wall=wall)
    order = make_order(random.Random(4), event_time=SIMULATED_MS - 3_000)  # a late order: event time behind
    producer = RecordingProducer()
    config = DerivationConfig.from_settings(load_settings({"P_ORDER_HAS_PAYMENT": "1"}))
    agent = OrdersAgent(
        Intake(order),  # type: ignore[arg-type]
        StubCodec(),  # type: ignore[arg-type]
        producer,  # type: ignore[arg-type]
        {"orders": "orders.v1", "payments": "payments.v1"},
        "requests",
        config,
        Counter(),
        lambda: False,
        clock=clock,
    )
    message = SimpleNamespace(headers=[], timestamp=SIMULATED_MS / 1000, partition=0, offset=9)
    asyncio.run(agent.take(SimpleNamespace(message=message)))  # type: ignore[arg-type]
    (topic, _, value, paid_at, _), (requests, _, _, requested_at, _) = producer.sent
    payment = json.loads(value)
    assert (topic, requests) == ("payments.v1", "requests")
    assert paid_at == max(SIMULATED_MS, payment["event_time"])  # not the wall clock
    assert paid_at >= payment["event_time"]
    assert requested_at == SIMULATED_MS


class Ledger:
    """Decides any batch to a shipment due later and a SALE picked earlier than the clock."""

    def __init__(self, shipment: dict, sale: dict) -> None:
        self.records = [("shipments", "o1", shipment), ("inventory_changes", "5", sale)]

    async def undelivered(self) -> Decided:
        return Decided()

    async def decide(self, requests: list) -> Decided:
        return Decided(records=list(self.records))


def test_the_stock_agent_stamps_each_record_and_counts_it_in_the_minute_of_its_stamp() -> None:
    clock = AgentClock(SIMULATED_MS, wall=FrozenWall(1_900_000_000.0))
    shipment = {"carrier": "DHL", "event_time": SIMULATED_MS + 150_000}  # handling time ahead
    sale = {"change_type": "SALE", "delta": -2, "event_time": SIMULATED_MS - 1_000}
    told, _ = truth(now_ms=SIMULATED_MS)
    agent, producer = stock_agent(Ledger(shipment, sale), told, clock=clock)
    asyncio.run(agent.take([]))
    assert [(topic, stamp) for topic, _, _, stamp, _ in producer.sent] == [
        ("shipments.v1", SIMULATED_MS + 150_000),
        ("inventory-changes.v1", SIMULATED_MS),
    ]
    minutes = {minute for _, minute in told.minutes}
    assert minutes == {minute_of(SIMULATED_MS + 150_000), minute_of(SIMULATED_MS)}

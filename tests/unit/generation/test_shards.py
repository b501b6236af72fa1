"""Generation shards, pure: shares, blocks, dealing, deterministic shard streams, reservations and the price walk."""

from __future__ import annotations

import random
from collections import Counter

import pytest

from app.generation import GenerationConfig, GenerationError, ShardStream, StreamPlace, block_size, deal, shard_share
from app.generation.events import Event
from app.generation.generator import price_move_rate
from app.generation.prices import PriceWalk
from app.generation.sampler import AliasTable
from app.generation.shards import IDS_PER_EVENT, MAX_BLOCK, MIN_BLOCK
from app.wire.roles import ORDERS
from tests.unit.generation.support import NOW_MS, make_catalog

CONFIG = GenerationConfig(stream_eps=1_200.0, p_update_price=0.05, p_bad_record=0.01)
CATALOG = make_catalog(products=40)


def stream(shard: int, shards: int, first: int = 0, reserved: int = 10**9, **kwargs: object) -> ShardStream:
    return ShardStream(
        CATALOG,
        CONFIG,
        seed=7,
        price_seed=7,
        shard=shard,
        shards=shards,
        first_event=first,
        reserved=reserved,
        **kwargs,  # type: ignore[arg-type]
    )


def identity(event: Event) -> tuple:
    """An event's kind, key, fields but times, and fault: what must not depend on how it was made."""
    return (event.kind, event.key, tuple(sorted((k, v) for k, v in event.value.items() if k != "event_time")),
            event.bad_kind)


# Shares, blocks and dealing ----------------------------------------------------------------------------------


@pytest.mark.parametrize(("total", "shards"), [(0, 3), (1, 12), (11, 12), (12, 12), (1_000_003, 12), (7, 1)])
def test_shard_shares_add_up_and_differ_by_at_most_one(total: int, shards: int) -> None:
    shares = [shard_share(total, shard, shards) for shard in range(shards)]
    assert sum(shares) == total
    assert max(shares) - min(shares) <= 1


def test_a_block_is_ten_seconds_of_a_shard_within_bounds() -> None:
    assert block_size(12_000, 12) == 10_000
    assert block_size(1, 12) == MIN_BLOCK
    assert block_size(1e9, 12) == MAX_BLOCK


def test_dealing_keeps_the_streams_level_and_within_their_room() -> None:
    streams = [stream(shard, 4, reserved=room) for shard, room in enumerate((100, 100, 30, 1_000))]
    streams[1].made = 20  # behind the others
    dealt = dict((s.shard, share) for s, share in deal(250, streams))
    assert sum(dealt.values()) == 250
    assert dealt[2] == 30  # all its room
    levels = {shard: streams[shard].made + dealt.get(shard, 0) for shard in (0, 1, 3)}
    assert max(levels.values()) - min(levels.values()) <= 1
    assert all(dealt.get(s.shard, 0) <= s.room for s in streams)


def test_dealing_more_than_the_room_deals_the_room() -> None:
    streams = [stream(shard, 2, reserved=10) for shard in range(2)]
    assert sum(share for _, share in deal(100, streams)) == 20
    assert deal(0, streams) == []


# Deterministic shard streams ---------------------------------------------------------------------------------


def test_a_shard_makes_the_same_events_however_its_batches_are_cut() -> None:
    whole = stream(2, 3).next_batch(900, NOW_MS)
    cut, parts = stream(2, 3), []
    for size in (1, 499, 13, 387):
        parts += cut.next_batch(size, NOW_MS + size)
    assert [identity(event) for event in parts] == [identity(event) for event in whole]


def test_shards_make_different_events_and_ids_never_meet() -> None:
    made = [stream(shard, 3).next_batch(2_000, NOW_MS) for shard in range(3)]
    keys = [{identity(event) for event in events} for events in made]
    assert not keys[0] & keys[1]
    assert not keys[1] & keys[2]
    ids = Counter(event.key for events in made for event in events if event.kind == ORDERS)
    assert ids
    assert max(ids.values()) == 1


def test_a_resumed_shard_makes_no_id_of_its_first_run_and_draws_afresh() -> None:
    first = stream(1, 4, reserved=3_000)
    before = first.next_batch(2_000, NOW_MS)
    resumed = stream(1, 4, first=3_000, reserved=6_000)  # the end of the first run's reservation
    after = resumed.next_batch(2_000, NOW_MS)
    ids_before = {str(event.value.get("order_id") or event.value.get("interaction_id") or event.value["change_id"])
                  for event in before if event.bad_kind is None}
    ids_after = {str(event.value.get("order_id") or event.value.get("interaction_id") or event.value["change_id"])
                 for event in after if event.bad_kind is None}
    assert ids_before
    assert ids_after
    assert not ids_before & ids_after
    assert [event.value.get("user_id") for event in after[:50]] != [event.value.get("user_id") for event in before[:50]]


def test_a_stream_makes_nothing_beyond_its_reservation_or_its_share_of_max_events() -> None:
    reserved = stream(0, 2, first=100, reserved=150)
    assert reserved.room == 50
    with pytest.raises(GenerationError, match="50 reserved and not used"):
        reserved.next_batch(51, NOW_MS)
    capped = stream(1, 2, reserved=10_000, max_events=11)  # shard 1 of 2 makes 5 of 11
    capped.next_batch(capped.room, NOW_MS)
    assert capped.position == 5
    assert capped.finished
    assert capped.room == 0


def test_ids_stay_within_the_numbers_an_event_reserves() -> None:
    shard = stream(0, 1, first=500, reserved=10_000)
    shard.next_batch(5_000, NOW_MS)
    assert IDS_PER_EVENT * 500 <= shard._ids.sequence <= IDS_PER_EVENT * shard.position


def test_the_config_of_a_shard_keeps_time_and_shares_the_pools() -> None:
    config = CONFIG.for_shards(12)
    assert config.stream_eps == pytest.approx(100.0)
    assert config.max_open_sessions == -(-CONFIG.max_open_sessions // 12)
    assert CONFIG.for_shards(1) is CONFIG
    with pytest.raises(GenerationError):
        StreamPlace(shard=3, shards=3)


# The price walk ----------------------------------------------------------------------------------------------


def reference_prices(position: int) -> list[int]:
    """The prices before the event at ``position``, walked alone from the list prices."""
    prices = [product.price_cents for product in CATALOG.products]
    walk = PriceWalk(
        random.Random("7:prices"),
        AliasTable([product.popularity for product in CATALOG.products]),
        prices,
        [product.cost_cents for product in CATALOG.products],
        [product.product_id for product in CATALOG.products],
        CONFIG.price_move,
        price_move_rate(CONFIG),
    )
    walk.advance(position - 1)
    return prices


def test_every_shard_charges_the_price_of_its_position_in_the_whole_stream() -> None:
    index = {product.product_id: i for i, product in enumerate(CATALOG.products)}
    checked = 0
    for shard, first in ((0, 0), (2, 0), (1, 700)):  # the last resumes mid-stream
        events = stream(shard, 3, first=first).next_batch(1_500, NOW_MS)
        for k, event in enumerate(events):
            if event.kind == ORDERS and event.bad_kind is None and k % 50 == 0:
                position = (first + k) * 3 + shard
                product = index[int(event.value["product_id"])]  # type: ignore[call-overload]
                assert event.value["unit_price"] == reference_prices(position)[product], (shard, k)
                checked += 1
    assert checked > 20


def test_only_shard_0_keeps_the_price_changes_and_they_are_the_walk_s() -> None:
    zero, one = stream(0, 2), stream(1, 2)
    zero.next_batch(3_000, NOW_MS)
    one.next_batch(3_000, NOW_MS)
    changes = zero.generator.drain_price_changes()
    assert changes
    assert one.generator.drain_price_changes() == []
    final = reference_prices(2 * 3_000)
    index = {product.product_id: i for i, product in enumerate(CATALOG.products)}
    last = {change.product_id: change.new_cents for change in changes}
    assert all(final[index[product]] == cents for product, cents in last.items())
    expected = price_move_rate(CONFIG) * 6_000
    assert abs(len(changes) - expected) <= 4.5 * expected**0.5

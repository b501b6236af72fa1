"""Generation shards: a deployment's stream split into a fixed number of deterministic streams.

Shard s of a deployment is the stream of (seed, s): its events are positions s, s + shards, s + 2 x shards, ...
of the whole stream, whichever worker makes them. A shard never makes an event number, and so an id, twice: it
makes only events it has reserved (the edge checkpoints ``reserved`` durably before it uses the numbers), and a
shard that resumes starts at the end of what was reserved, leaving a gap of unused numbers.
"""

from __future__ import annotations

import math
import random
from collections.abc import Sequence

from app.generation.catalog_snapshot import Catalog
from app.generation.config import GenerationConfig, StreamPlace
from app.generation.events import Event, EventIds
from app.generation.exceptions import GenerationError
from app.generation.generator import EventGenerator

#: Id sequence numbers one event takes at most: an interaction that opens a session takes two (session and event).
IDS_PER_EVENT = 2
#: A reservation covers this many seconds of a shard's events at its target rate ...
RESERVE_SECONDS = 10.0
#: ... within these bounds (a restart skips at most 1.5 blocks of a shard's numbers).
MIN_BLOCK, MAX_BLOCK = 1_000, 1_000_000


def shard_share(total: int, shard: int, shards: int) -> int:
    """Shard ``shard``'s part of ``total`` events: the parts differ by at most one and add up to ``total``."""
    return total // shards + (1 if shard < total % shards else 0)


def block_size(target_eps: float, shards: int) -> int:
    """Events one reservation covers: RESERVE_SECONDS of a shard's share of ``target_eps``, within the bounds."""
    return int(min(MAX_BLOCK, max(MIN_BLOCK, math.ceil(target_eps / shards * RESERVE_SECONDS))))


class ShardStream:
    """One shard's generator, from its event ``first_event`` on, and the events it may make: up to ``reserved``.

    Contents come from ``Random(f"{seed}:{shard}:{first_event}")``, so a resumed shard does not repeat its first
    run's draws; ids from a prefix of (seed, shard) and sequence numbers from IDS_PER_EVENT x first_event on;
    prices from the walk of ``price_seed``, which every shard of a deployment must share.
    """

    def __init__(
        self,
        catalog: Catalog,
        config: GenerationConfig,
        *,
        seed: int | str,
        price_seed: int | str,
        shard: int,
        shards: int,
        first_event: int,
        reserved: int,
        max_events: int | None = None,
    ) -> None:
        """``config`` is the deployment's; ``max_events`` the deployment's MAX_EVENTS (this shard makes its share)."""
        place = StreamPlace(shard, shards, first_event)
        self.shard = shard
        self._ids = EventIds(random.Random(f"{seed}:{shard}:ids").getrandbits, start=IDS_PER_EVENT * first_event)
        self.generator = EventGenerator(
            catalog,
            config.for_shards(shards),
            random.Random(f"{seed}:{shard}:{first_event}"),
            place=place,
            ids=self._ids,
            price_rng=random.Random(f"{price_seed}:prices"),
        )
        #: Bytes of deliberately corrupted records are drawn from here, so they too follow the shard.
        self.faults = random.Random(f"{seed}:{shard}:{first_event}:faults")
        #: The next event number of this shard.
        self.position = first_event
        #: Event numbers below this are durably reserved: the stream makes none beyond it.
        self.reserved = reserved
        self.limit = None if max_events is None else shard_share(max_events, shard, shards)
        #: Events made by this stream (since it started here).
        self.made = 0

    @property
    def room(self) -> int:
        """Events the stream may make now: up to its reservation, and its share of MAX_EVENTS."""
        end = self.reserved if self.limit is None else min(self.reserved, self.limit)
        return max(0, end - self.position)

    @property
    def finished(self) -> bool:
        """True once the shard has made its share of MAX_EVENTS."""
        return self.limit is not None and self.position >= self.limit

    def next_batch(self, count: int, now_ms: int) -> list[Event]:
        """The next ``count`` events, at most ``room``."""
        if not 0 <= count <= self.room:
            msg = f"shard {self.shard}: {count} events asked, {self.room} reserved and not used"
            raise GenerationError(msg)
        events = self.generator.next_batch(count, now_ms)
        self.position += count
        self.made += count
        if self._ids.sequence > IDS_PER_EVENT * self.position:  # a defect: ids beyond the numbers reserved
            msg = f"shard {self.shard}: id sequence {self._ids.sequence} passed {IDS_PER_EVENT} per reserved event"
            raise GenerationError(msg)
        return events


def deal(count: int, streams: Sequence[ShardStream]) -> list[tuple[ShardStream, int]]:
    """``count`` events dealt to ``streams`` so their made counts stay level, none given more than its room.

    Water-filling: the streams that have made the fewest get events first. Events that no stream has room for
    are not dealt, so the shares can add up to less than ``count``.
    """
    shares = [0] * len(streams)

    def level(index: int) -> int:
        return streams[index].made + shares[index]

    left = count
    while left > 0:
        open_ = [index for index, stream in enumerate(streams) if stream.room > shares[index]]
        if not open_:
            break
        low = min(level(index) for index in open_)
        lowest = [index for index in open_ if level(index) == low]
        each = left // len(lowest)
        above = [level(index) for index in open_ if level(index) > low]
        if above:
            each = min(each, min(above) - low)
        each = min(each, min(streams[index].room - shares[index] for index in lowest))
        if each == 0:  # fewer events left than streams at the lowest level: one each, lowest shard first
            for index in lowest[:left]:
                shares[index] += 1
            left -= min(left, len(lowest))
            continue
        for index in lowest:
            shares[index] += each
        left -= each * len(lowest)
    return [(streams[index], share) for index, share in enumerate(shares) if share]

"""Stopping a worker in bounded time when Kafka is gone, and keeping a Kafka outage to a few log lines.

Faust's stop waits for the records its agents are handling, then commits the consumer's offsets, before it closes
the consumer (``wait_empty``, then the consumer's own stop). With the broker gone that commit never ends: aiokafka
looks the group coordinator up in a loop that stops only when a broker answers or the consumer is closed, and the
close comes after the commit. That loop and aiokafka's fetch loop meanwhile log three errors every 100 ms each. Past
it, the stop would wait for Faust's producer to flush the table changelogs (their batches expire after
``producer_request_timeout``, 20 minutes) and 60 s for the consumer's thread, which aiokafka's fetcher ends with a
``CancelledError`` as it closes (see ``quiet_cancelled_threads``).

``DatagenWorker`` gives all that its stop waits on Kafka for one grace period together, from the signal. Offsets it
could not commit are read again at the next start, as after a crash, which the agents take (their ids derive from
their input and the fold skips a change it applied); changelog records it could not send are lost, as after a crash.
A deadline ends the process anyway if the stop goes on for another reason, and repeated Kafka client warnings are
held back, with a count, instead of flooding the log.
"""

from __future__ import annotations

import asyncio
import logging
import os
import re
import threading
import time
from collections.abc import Awaitable, Callable, Iterable
from typing import Any, TypeVar

import faust
from faust.types import AppT

T = TypeVar("T")

log = logging.getLogger(__name__)

#: How long a stop waits for Kafka, all waits together (records in flight, offset commits, flush, closes).
KAFKA_GRACE_SECONDS = 5.0
#: What a flush or a close gets once the grace is spent: enough when it has nothing left to send.
AFTER_GRACE_SECONDS = 0.5
#: How long a stop may take before the process exits anyway, whatever it waits for.
STOP_DEADLINE_SECONDS = 25.0
#: The exit status when the deadline ends the process.
DEADLINE_EXIT_STATUS = 1
#: How long a repeated Kafka client warning stays held back after it was printed.
REPEAT_WINDOW_SECONDS = 30.0
#: The loggers whose repeats are held back: the Kafka clients', which log every reconnection attempt.
QUIETED_LOGGERS = ("aiokafka", "librdkafka")

_NUMBERS = re.compile(r"\d+")
_DECISION = "_datagen_repeat_shown"  # a record's verdict, so that every handler of the filter gets the same


class RepeatFilter(logging.Filter):
    """Lets the first warning of a kind through, then one a window, saying how many it held back.

    Warnings (and errors) are of a kind when they come from the same logger at the same level and differ only in their
    numbers (ports, node ids, milliseconds). Only the loggers under ``prefixes`` are filtered; their info is not.
    """

    def __init__(
        self,
        prefixes: tuple[str, ...] = QUIETED_LOGGERS,
        window: float = REPEAT_WINDOW_SECONDS,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        super().__init__()
        self._prefixes = prefixes
        self._window = window
        self._clock = clock
        self._shown: dict[tuple[str, int, str], tuple[float, int]] = {}  # kind -> (printed at, held back since)
        self._lock = threading.Lock()  # aiokafka logs from the consumer's thread, librdkafka from the main one

    def filter(self, record: logging.LogRecord) -> bool:
        if record.levelno < logging.WARNING or not record.name.startswith(self._prefixes):
            return True
        decided = getattr(record, _DECISION, None)
        if decided is None:
            decided = self._decide(record)
            setattr(record, _DECISION, decided)
        return bool(decided)

    def _decide(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        kind = (record.name, record.levelno, _NUMBERS.sub("#", message))
        now = self._clock()
        with self._lock:
            shown_at, held = self._shown.get(kind, (None, 0))
            if shown_at is not None and now - shown_at < self._window:
                self._shown[kind] = (shown_at, held + 1)
                return False
            self._shown[kind] = (now, 0)
        if held and shown_at is not None:
            record.msg, record.args = f"{message} (and {held} more like it in the last {now - shown_at:.0f} s)", ()
        return True


def quiet_repeats(handlers: Iterable[logging.Handler], repeats: RepeatFilter | None = None) -> RepeatFilter:
    """Hold repeated Kafka client warnings back on each of ``handlers``; the filter they share."""
    repeats = repeats or RepeatFilter()
    for handler in handlers:
        if repeats not in handler.filters:
            handler.addFilter(repeats)
    return repeats


class KafkaGrace:
    """One grace period for all that a stop waits on Kafka for, from the moment it is made.

    A wait that outlasts it is left behind, not cancelled (Faust's commit and its wait for acks each take a
    cancellation for a cue to go on), and answers ``gave_up``. Once the grace is spent, Kafka is taken to be gone: a
    commit, which needs its answer, is not tried any more; a flush or a close still gets ``AFTER_GRACE_SECONDS``,
    enough when it has nothing to send.
    """

    def __init__(self, seconds: float = KAFKA_GRACE_SECONDS, clock: Callable[[], float] = time.monotonic) -> None:
        self.seconds = seconds
        self._clock = clock
        self._deadline = clock() + seconds
        self.gave_up: list[str] = []
        self._left_behind: set[asyncio.Future[Any]] = set()

    def bound(
        self, what: str, wait: Callable[..., Awaitable[T]], gave_up: T, *, after_grace: float = 0.0
    ) -> Callable[..., Awaitable[T]]:
        """``wait`` within the grace, or ``after_grace`` seconds once it is spent; ``what`` names it in the log."""

        async def bounded(*args: Any, **kwargs: Any) -> T:
            timeout = max(self._deadline - self._clock(), after_grace)
            if timeout <= 0:
                self._give_up(what)
                return gave_up
            task = asyncio.ensure_future(wait(*args, **kwargs))
            done, _ = await asyncio.wait({task}, timeout=timeout)
            if done:
                return task.result()
            self._leave_behind(task)
            self._give_up(what)
            return gave_up

        return bounded

    def _give_up(self, what: str) -> None:
        if what not in self.gave_up:
            self.gave_up.append(what)
            log.warning("stopping without %s: Kafka did not answer in the %.0f s the stop gives it", what, self.seconds)

    def _leave_behind(self, task: asyncio.Future[Any]) -> None:
        # Held until it ends (the loop's last sweep cancels it), its outcome read so that nothing logs it at exit.
        self._left_behind.add(task)
        task.add_done_callback(self._left_behind.discard)
        task.add_done_callback(lambda done: done.cancelled() or done.exception())


class StopDeadline:
    """Ends the process when a stop takes longer than ``seconds``: one log line, then ``exit_process``.

    The last resort, for a stop held up by something other than Kafka. A thread rather than a task, so that it fires
    even while something holds the event loop.
    """

    def __init__(self, seconds: float = STOP_DEADLINE_SECONDS, exit_process: Callable[[int], Any] = os._exit) -> None:
        self.seconds = seconds
        self._exit = exit_process
        self._timer = threading.Timer(seconds, self._expire)
        self._timer.daemon = True

    def start(self) -> None:
        self._timer.start()

    def _expire(self) -> None:
        log.error("the stop took longer than %.0f s: exiting now, leaving the rest of it undone", self.seconds)
        for handler in logging.getLogger().handlers:
            handler.flush()
        self._exit(DEADLINE_EXIT_STATUS)


def bound_kafka_waits(app: AppT, grace: KafkaGrace) -> None:
    """Give what ``app``'s stop waits on Kafka for ``grace``: the records the agents are handling (they wait for Kafka
    to take what they derive), the consumer's commits and close, the producer's flush and close.

    Each is a method of the instance, replaced for the stop only: Faust calls them by name.
    """
    consumer, producer = app.consumer, app.producer
    waits: list[tuple[object, str, str, bool | None, float]] = [
        (consumer, "wait_empty", "waiting for the records the agents are handling", None, 0.0),
        (consumer, "commit", "committing the offsets", False, 0.0),
        (consumer, "stop", "waiting for the consumer to close", None, AFTER_GRACE_SECONDS),
        (producer, "flush", "flushing the table changelogs", None, AFTER_GRACE_SECONDS),
        (producer, "stop", "waiting for the producer to close", None, AFTER_GRACE_SECONDS),
    ]
    for service, method, what, gave_up, after_grace in waits:
        setattr(service, method, grace.bound(what, getattr(service, method), gave_up, after_grace=after_grace))


def quiet_cancelled_threads() -> None:
    """From now on, a thread that ends with ``CancelledError`` is one log line, not a traceback.

    aiokafka's ``Fetcher.close`` (0.14.0, and its main branch) awaits the fetches it cancels, and a fetch cancelled in
    its pause after a failed request raises ``CancelledError``: with Kafka gone, that ends the consumer's thread as it
    closes, and mode, which sends stderr to the log, writes the traceback a fragment a line (a hundred lines).
    """
    previous = threading.excepthook

    def hook(args: threading.ExceptHookArgs) -> None:
        if not issubclass(args.exc_type, asyncio.CancelledError):
            previous(args)
            return
        name = args.thread.name if args.thread is not None else "a thread"
        log.warning("%s ended with CancelledError while stopping (aiokafka's fetcher close, Kafka gone)", name)

    threading.excepthook = hook


class DatagenWorker(faust.Worker):
    """Faust's worker, whose stop waits for Kafka a grace period at most and ends within a deadline.

    It also holds repeated Kafka client warnings back from the log (see ``RepeatFilter``).
    """

    async def on_first_start(self) -> None:
        await super().on_first_start()  # sets logging up
        quiet_repeats(logging.getLogger().handlers)

    async def on_stop(self) -> None:
        # Runs before the app, its consumer and its producer stop.
        StopDeadline().start()
        quiet_cancelled_threads()
        bound_kafka_waits(self.app, KafkaGrace())
        await super().on_stop()

"""What both agents do with a consumed record before deciding: decode, validate, or dead-letter it; and delivery.

Nothing the agents derive is acknowledged to Kafka's group (so committed) before the records derived from it are
acknowledged by Kafka: ``deliver`` waits until the producer holds nothing undelivered.
"""

from __future__ import annotations

import asyncio
import logging
from collections import Counter
from collections.abc import Callable, Mapping
from datetime import datetime
from typing import Any

from faust.types import EventT

from app.dead_letters import dead_letter_headers
from app.decoding import RecordDecoder, RegistryUnavailable, UndecodableRecord
from app.metrics import DEAD_LETTERS, DeadLetterReason, agent_meters
from app.producer import EventProducer

log = logging.getLogger(__name__)

#: How long to wait before asking the registry again while it cannot be reached.
REGISTRY_PAUSE = 2.0
#: How long one wait for deliveries lasts before the worker's state is checked and it is tried again.
DELIVERY_WAIT = 1.0
#: How often a wait for deliveries is logged.
DELIVERY_LOG_SECONDS = 10.0


def millis(value: Mapping[str, Any]) -> dict[str, Any]:
    """The decoded value with its timestamps as epoch milliseconds, as the pure core takes them."""
    return {key: int(item.timestamp() * 1000) if isinstance(item, datetime) else item for key, item in value.items()}


class Intake:
    """Decodes and validates consumed records; dead-letters what cannot be used, with where it came from and why."""

    def __init__(self, decoder: RecordDecoder, producer: EventProducer, dead_letter_topic: str, counts: Counter[str]):
        self._decoder = decoder
        self._producer = producer
        self._dead_letter_topic = dead_letter_topic
        self._counts = counts

    async def value(
        self,
        event: EventT,
        topic: str,
        validate: Callable[[Mapping[str, Any]], str | None],
        what: str,
        invalid: DeadLetterReason,
    ) -> dict[str, Any] | None:
        """The event's value (read as a record of ``topic``) with epoch-ms times; None once dead-lettered (as
        ``invalid`` when ``validate`` refuses it)."""
        while True:
            try:
                decoded = self._decoder.decode(topic, event.value)
                break
            except UndecodableRecord as error:
                self.dead_letter(event, str(error), "undecodable")
                return None
            except RegistryUnavailable as error:
                log.warning("schema registry unavailable while decoding (%s); waiting", error)
                await asyncio.sleep(REGISTRY_PAUSE)
        valid = millis(decoded)
        reason = validate(valid)
        if reason is not None:
            self.dead_letter(event, f"invalid {what}: {reason}", invalid)
            return None
        return valid

    def dead_letter(self, event: EventT, error: str, reason: DeadLetterReason) -> None:
        """Send the record, whole, to the dead-letter topic with its source and ``error`` in headers; count it under
        ``reason`` (its class: ``error`` names ids, too many values for a metric's label)."""
        message = event.message
        original = message.headers or []
        pairs = list(original.items()) if isinstance(original, Mapping) else list(original)
        headers = dead_letter_headers(pairs, message.topic, message.partition, message.offset, error)
        self._producer.send_surely(
            self._dead_letter_topic, message.key or b"", event.value or b"", int(message.timestamp * 1000), headers
        )
        self._counts[DEAD_LETTERS] += 1
        agent_meters(event.app).dead_letter(reason)


async def deliver(producer: EventProducer, what: str, stopping: Callable[[], bool]) -> bool:
    """Wait until Kafka has acknowledged every record ``producer`` holds: True then. False if the worker started
    stopping first: the caller must not acknowledge what those records came from (a restart decides it again)."""
    waited = 0.0
    while True:
        # Taken here, on the thread that sends: a record stamped before it was queued before it.
        started_ms = producer.clock()
        left = await asyncio.to_thread(producer.flush, DELIVERY_WAIT)
        if left == 0:
            producer.drained_ms = max(producer.drained_ms, started_ms)
            return True
        if stopping():
            log.warning("%s: stopping with %d records not acknowledged by Kafka; their input stays uncommitted", what,
                        left)
            return False
        waited += DELIVERY_WAIT
        if waited % DELIVERY_LOG_SECONDS < DELIVERY_WAIT:
            log.warning("%s: %d records not yet acknowledged by Kafka after %.0f s; waiting", what, left, waited)

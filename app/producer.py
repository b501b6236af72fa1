"""Sends framed records to Kafka with confluent-kafka's producer (librdkafka), and says when Kafka pushes back."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import Any

from confluent_kafka import KafkaError, Message, Producer

from app.wire.headers import Headers

log = logging.getLogger(__name__)

#: How long ``send_surely`` waits for deliveries to make room in a full queue before it tries again.
BLOCKED_POLL_SECONDS = 0.05


class EventProducer:
    """A librdkafka producer whose ``send`` answers False instead of blocking when its queue is full."""

    def __init__(
        self,
        connection: dict[str, Any],
        *,
        client_id: str,
        queue_max: int,
        failures: Callable[[KafkaError, Message], None] | None = None,
    ) -> None:
        """``connection``: the bootstrap servers and security (``app.clients.kafka_config``).

        ``queue_max`` bounds the records librdkafka holds while Kafka is slow: the memory backpressure may use.
        ``failures(error, message)``, when given, hears of every record that could not be delivered, from inside
        ``serve`` and ``flush`` (they are logged either way).
        """
        config: dict[str, Any] = {
            **connection,
            "client.id": client_id,
            "enable.idempotence": True,  # acks=all, no duplicates from librdkafka's own retries
            "linger.ms": 20,
            "batch.num.messages": 10_000,
            "queue.buffering.max.messages": queue_max,
            # No compression: every consumer can read it (aiokafka, so Faust, needs an extra library for lz4),
            # and on these machines the CPU it would cost is what limits the rate, not the network.
            "compression.type": "none",
            # The Java client's partitioner (and aiokafka's, so Faust's): a key lands in the same partition
            # whoever produces it, which the co-partitioned stock agent relies on.
            "partitioner": "murmur2_random",
            # Reports only failures: a Python callback per delivered record would cost ~1 us of the GIL each.
            "delivery.report.only.error": True,
            # One callback for the producer rather than one per produce() call: a bound method made and
            # kept per record costs a fifth of the call.
            "on_delivery": self._on_delivery,
            "logger": logging.getLogger("librdkafka"),
        }
        self.failed = 0
        #: A moment (epoch ms, taken on the sending thread) at which every record queued before it was delivered
        #: or reported failed: set by whoever saw the queue empty after it (``agents.intake.deliver``).
        self.drained_ms = 0
        #: Epoch ms as the records are stamped (the agents' clock, set by their owner): what ``drained_ms`` is read on.
        self.clock: Callable[[], int] = lambda: int(time.time() * 1000)
        self._failures = failures
        self._producer = Producer(config)

    def send(
        self,
        topic: str,
        key: bytes,
        value: bytes,
        timestamp_ms: int,
        headers: Headers | None = None,
    ) -> bool:
        """Queue one record; False when the local queue is full (nothing was queued)."""
        try:
            self._producer.produce(topic, value, key, timestamp=timestamp_ms, headers=headers)
        except BufferError:
            return False
        return True

    def send_surely(
        self,
        topic: str,
        key: bytes,
        value: bytes,
        timestamp_ms: int,
        headers: Headers | None = None,
    ) -> None:
        """Queue one record, waiting (and blocking the caller) while the local queue is full: nothing is dropped."""
        while not self.send(topic, key, value, timestamp_ms, headers):
            self._producer.poll(BLOCKED_POLL_SECONDS)

    def serve(self, timeout: float = 0.0) -> None:
        """Run delivery callbacks, waiting up to ``timeout`` seconds for one."""
        self._producer.poll(timeout)

    def queued(self) -> int:
        """Records waiting in librdkafka for delivery."""
        return len(self._producer)

    def flush(self, timeout: float) -> int:
        """Deliver what is queued; the number still undelivered after ``timeout``."""
        return int(self._producer.flush(timeout))

    def _on_delivery(self, error: KafkaError | None, message: Message) -> None:
        if error is None:
            return
        if self._failures is not None:
            self._failures(error, message)
        self.failed += 1
        if self.failed <= 10 or self.failed % 1000 == 0:
            log.error("delivery to %s failed (%d so far): %s", message.topic(), self.failed, error)

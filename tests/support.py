"""Helpers shared by the integration tests: the stack's addresses, reading topics back, a cuttable TCP proxy.

The real-worker harness (``run_worker``, ``Worker``, ``free_port``, ...) lives in tests/harness.py; it is re-exported
here, where the tests have always imported it from.
"""

from __future__ import annotations

import socket
import threading
import time
import uuid
from contextlib import suppress
from dataclasses import dataclass
from typing import TYPE_CHECKING

# The harness's names, re-exported (the ``as`` marks them so) for the tests that import them from here.
from tests.harness import FAUST as FAUST
from tests.harness import ROOT as ROOT
from tests.harness import Worker as Worker
from tests.harness import free_port as free_port
from tests.harness import http_get as http_get
from tests.harness import run_worker as run_worker
from tests.harness import wait_for as wait_for

if TYPE_CHECKING:
    from confluent_kafka.schema_registry import SchemaRegistryClient
    from confluent_kafka.schema_registry.avro import AvroDeserializer

REGISTRY_URL = "http://127.0.0.1:8081/apis/ccompat/v7"
KAFKA_BOOTSTRAP = "127.0.0.1:9092"
PG_DSN = "host=127.0.0.1 port=5432 dbname=demo user=admin password=admin"


def unique_topics(tag: str) -> dict[str, str]:
    """Topic settings private to one test, so tests never see each other's topics or subjects."""
    suffix = f"{tag}-{uuid.uuid4().hex[:8]}"
    return {
        "TOPIC_ORDERS": f"orders.{suffix}",
        "TOPIC_PAYMENTS": f"payments.{suffix}",
        "TOPIC_SHIPMENTS": f"shipments.{suffix}",
        "TOPIC_INVENTORY_CHANGES": f"inventory-changes.{suffix}",
        "TOPIC_CUSTOMER_INTERACTIONS": f"customer-interactions.{suffix}",
        "TOPIC_DEAD_LETTER": f"dead-letter.{suffix}",
        "TOPIC_TRUTH": f"truth.{suffix}",
        "APP_ID": f"datagen-{suffix}",
    }


@dataclass(frozen=True)
class ReadRecord:
    """One record read back by the independent consumer."""

    topic: str
    partition: int
    offset: int
    key: bytes | None
    raw: bytes
    timestamp_ms: int
    headers: dict[str, bytes]
    value: dict | None  # None when the record did not decode
    error: str | None


def registry_client() -> SchemaRegistryClient:
    """A client of the stack's registry with a request timeout, so a registry that never answers one request is
    asked again (the client retries timeouts) instead of hanging a test forever (the default is no timeout)."""
    from confluent_kafka.schema_registry import SchemaRegistryClient

    return SchemaRegistryClient({"url": REGISTRY_URL, "timeout": 10})


def topic_deserializer(registry: SchemaRegistryClient) -> AvroDeserializer:
    """confluent-kafka's AvroDeserializer with TopicNameStrategy, as a consumer of this generator's topics
    configures it (see app/avro.py for why: the default asks an API Apicurio does not answer)."""
    from confluent_kafka.schema_registry.avro import AvroDeserializer

    return AvroDeserializer(registry, conf={"subject.name.strategy.type": "TOPIC"})


def read_back(topics: list[str], expected: int, timeout: float = 120.0) -> list[ReadRecord]:
    """Read every record of ``topics`` from the start with confluent-kafka's AvroDeserializer and the registry.

    Independent of the project's own decoding: a downstream user's consumer. Stops at ``expected`` records or
    when nothing new arrives for a while after ``timeout``.
    """
    from confluent_kafka import Consumer
    from confluent_kafka.serialization import MessageField, SerializationContext

    deserializer = topic_deserializer(registry_client())
    consumer = Consumer(
        {
            "bootstrap.servers": KAFKA_BOOTSTRAP,
            "group.id": f"readback-{uuid.uuid4().hex}",
            "auto.offset.reset": "earliest",
            "enable.auto.commit": False,
        }
    )
    consumer.subscribe(topics)
    records: list[ReadRecord] = []
    deadline = time.monotonic() + timeout
    try:
        while len(records) < expected and time.monotonic() < deadline:
            for message in consumer.consume(num_messages=5000, timeout=1.0):
                if message.error():
                    raise AssertionError(f"consumer error: {message.error()}")
                raw = message.value() or b""
                value, error = None, None
                try:
                    context = SerializationContext(message.topic(), MessageField.VALUE)
                    value = deserializer(raw, context)
                except Exception as caught:  # every way a record can fail to decode counts
                    error = f"{type(caught).__name__}: {caught}"
                records.append(
                    ReadRecord(
                        message.topic(),
                        message.partition(),
                        message.offset(),
                        message.key(),
                        raw,
                        message.timestamp()[1],
                        {name: data for name, data in (message.headers() or [])},
                        value,
                        error,
                    )
                )
    finally:
        consumer.close()
    return records


class TcpProxy:
    """A loopback TCP forwarder to a real service that a test can cut and restore: an outage on demand."""

    def __init__(self, upstream_port: int) -> None:
        self.upstream_port = upstream_port
        self.port = free_port()
        self._listener: socket.socket | None = None
        self._connections: list[socket.socket] = []
        self._lock = threading.Lock()

    def open(self) -> None:
        """Accept and forward connections."""
        listener = socket.socket()
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind(("127.0.0.1", self.port))
        listener.listen(64)
        self._listener = listener
        threading.Thread(target=self._accept, args=(listener,), daemon=True).start()

    def close(self) -> None:
        """Refuse new connections and cut the open ones."""
        listener, self._listener = self._listener, None
        if listener is not None:
            listener.close()
        with self._lock:
            connections, self._connections = self._connections, []
        for connection in connections:
            with suppress(OSError):
                connection.shutdown(socket.SHUT_RDWR)
            connection.close()

    def _accept(self, listener: socket.socket) -> None:
        while True:
            try:
                client, _ = listener.accept()
            except OSError:
                return
            try:
                server = socket.create_connection(("127.0.0.1", self.upstream_port))
            except OSError:
                client.close()
                continue
            with self._lock:
                self._connections += [client, server]
            for source, sink in ((client, server), (server, client)):
                threading.Thread(target=self._pump, args=(source, sink), daemon=True).start()

    @staticmethod
    def _pump(source: socket.socket, sink: socket.socket) -> None:
        with suppress(OSError):
            while data := source.recv(65536):
                sink.sendall(data)
        with suppress(OSError):
            sink.shutdown(socket.SHUT_WR)


def foldable_changes(records: list[ReadRecord]) -> list[dict]:
    """The valid inventory changes among ``records``, in (partition, offset) order and with epoch-ms times, as
    ``app.inventory.fold`` takes them; deliberately bad and undecodable records left out."""
    from datetime import datetime

    from app.inventory import validate_change
    from app.wire.headers import BAD_RECORD_HEADER

    changes = []
    for record in sorted(records, key=lambda record: (record.partition, record.offset)):
        if record.value is None or BAD_RECORD_HEADER in record.headers:
            continue
        value = {
            key: int(item.timestamp() * 1000) if isinstance(item, datetime) else item
            for key, item in record.value.items()
        }
        if validate_change(value) is None:
            changes.append(value)
    return changes

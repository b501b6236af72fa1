"""Helpers shared by the integration tests: a real worker process and the stack's addresses."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from confluent_kafka.schema_registry import SchemaRegistryClient
    from confluent_kafka.schema_registry.avro import AvroDeserializer

ROOT = Path(__file__).resolve().parent.parent
FAUST = str(Path(sys.executable).with_name("faust"))
REGISTRY_URL = "http://127.0.0.1:8081/apis/ccompat/v7"
KAFKA_BOOTSTRAP = "127.0.0.1:9092"
PG_DSN = "host=127.0.0.1 port=5432 dbname=demo user=admin password=admin"


def free_port() -> int:
    """A TCP port nobody listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


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


def http_get(url: str, timeout: float = 5.0) -> tuple[int, dict]:
    """Status and JSON body of a GET, whatever the status."""
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response:
            return response.status, json.loads(response.read() or b"null")
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read() or b"null")


@dataclass
class Worker:
    """A running ``faust -A app worker`` process and how to reach it."""

    process: subprocess.Popen[bytes]
    env: dict[str, str]
    port: int
    log_path: Path

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def wait_until(self, predicate_path: str, want_status: int, timeout: float = 90.0) -> dict:
        """Poll a view until it answers ``want_status``; fail with the worker's log if it never does."""
        deadline = time.monotonic() + timeout
        last: object = None
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise AssertionError(f"worker exited with {self.process.returncode}:\n{self.log()[-4000:]}")
            try:
                status, body = http_get(self.url + predicate_path)
            except (OSError, ValueError) as error:
                last = error
            else:
                last = (status, body)
                if status == want_status:
                    return body
            time.sleep(0.5)
        raise AssertionError(f"{predicate_path} never answered {want_status}; last: {last}\n{self.log()[-4000:]}")

    def wait_until_logged(self, text: str, timeout: float = 60.0) -> None:
        """Wait for ``text`` in the worker's log; fail with the log if it never comes."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if text in self.log():
                return
            if self.process.poll() is not None:
                break
            time.sleep(0.3)
        raise AssertionError(f"never logged {text!r}:\n{self.log()[-4000:]}")


def wait_for(predicate: Callable[[], bool], what: str, timeout: float = 120.0) -> None:
    """Poll ``predicate`` every 0.5 s until it holds; AssertionError naming ``what`` after ``timeout`` s."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.5)
    raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}")


@contextmanager
def run_worker(tmp_path: Path, overrides: Mapping[str, str]) -> Iterator[Worker]:
    """Start a worker with the default settings plus ``overrides``; stop it with SIGTERM afterwards."""
    port = free_port()
    env = {
        **os.environ,
        "WEB_PORT": str(port),
        "DATA_DIR": str(tmp_path / "faust-data"),
        **overrides,
    }
    log_path = tmp_path / "worker.log"
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            [FAUST, "-A", "app", "worker", "-l", "info"], cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT
        )
    worker = Worker(process, env, port, log_path)
    try:
        yield worker
    finally:
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


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

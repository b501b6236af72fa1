"""Kafka security against the local broker's SASL_SSL (:9094) and mutual-TLS (:9095) listeners (stack/stack.sh).

The stack's throwaway CA, broker certificate, client certificate and SCRAM/PLAIN credentials are under .stack/tls/.
A worker with the right credentials generates and derives through every client it makes; one with wrong credentials
or an untrusted CA stops with exit status 2 and one line. Over a whole run with real secrets set (the SASL password,
a Postgres role's password, the registry's basic auth), no log line and no web view shows any of them.
"""

from __future__ import annotations

import re
import secrets
import signal
import subprocess
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import psycopg2
import pytest
from psycopg2 import sql
from psycopg2.extensions import make_dsn

from db.throwaway import create_database, drop_database, dsn_for
from tests.stock_support import high_watermarks
from tests.support import PG_DSN, ROOT, Worker, run_worker, unique_topics, wait_for

pytestmark = pytest.mark.integration

TLS = ROOT / ".stack" / "tls"
SASL_SSL = "127.0.0.1:9094"
MTLS = "127.0.0.1:9095"
#: The views a person or a scraper reads; none may show a secret.
VIEWS = ("/", "/health", "/stats/", "/stats/?local", "/inventory/", "/inventory/?page=2", "/warehouses/1/inventory/")


def _credentials() -> dict[str, str]:
    text = (TLS / "credentials").read_text()
    return dict(line.split("=", 1) for line in text.splitlines() if "=" in line)


def _small(tag: str) -> dict[str, str]:
    return {
        **unique_topics(tag),
        "N_USERS": "200",
        "N_PRODUCTS": "50",
        "N_WAREHOUSES": "2",
        "N_SUPPLIERS": "5",
        "TARGET_EPS": "200",
        "DIURNAL_ENABLED": "false",
        "P_BAD_RECORD": "0.02",
    }


def _sasl(mechanism: str, password: str | None = None) -> dict[str, str]:
    found = _credentials()
    return {
        "KAFKA_BOOTSTRAP": SASL_SSL,
        "KAFKA_SECURITY_PROTOCOL": "SASL_SSL",
        "KAFKA_SASL_MECHANISM": mechanism,
        "KAFKA_SASL_USERNAME": found["username"],
        "KAFKA_SASL_PASSWORD": found["password"] if password is None else password,
        "KAFKA_SSL_CA_FILE": str(TLS / "ca.pem"),
    }


def _mtls(with_certificate: bool = True) -> dict[str, str]:
    settings = {"KAFKA_BOOTSTRAP": MTLS, "KAFKA_SECURITY_PROTOCOL": "SSL", "KAFKA_SSL_CA_FILE": str(TLS / "ca.pem")}
    if with_certificate:
        settings |= {"KAFKA_SSL_CERT_FILE": str(TLS / "client.pem"), "KAFKA_SSL_KEY_FILE": str(TLS / "client.key")}
    return settings


def _derives(worker: Worker, topics: dict[str, str]) -> None:
    """The worker generated through its producers and Faust's, and the agents derived payments."""
    worker.wait_until("/health", 200, timeout=120)

    def payments() -> bool:
        return sum(high_watermarks(topics["TOPIC_PAYMENTS"]).values()) >= 20

    wait_for(payments, "payments derived over the secured connection", timeout=120)
    assert sum(high_watermarks(topics["TOPIC_ORDERS"]).values()) > 20


def _refused(tmp_path: Path, settings: dict[str, str]) -> str:
    """The worker's output, after it exited with status 2 by itself."""
    with run_worker(tmp_path, settings) as worker:
        try:
            worker.process.wait(timeout=90)
        except subprocess.TimeoutExpired:
            pytest.fail(f"the worker did not stop:\n{worker.log()[-3000:]}")
        assert worker.process.returncode == 2, worker.log()[-3000:]
        return worker.log()


@pytest.fixture
def secret_role() -> Iterator[tuple[str, str]]:
    """A Postgres role with a random password (the stack's admin/admin is no secret) and a DSN of it to a throwaway
    database, where the worker seeds tables the role then owns: the database is dropped before the role."""
    name, password = f"sec_{secrets.token_hex(4)}", secrets.token_urlsafe(18)
    with psycopg2.connect(PG_DSN) as conn, conn.cursor() as cursor:
        cursor.execute(sql.SQL("create role {} login superuser password %s").format(sql.Identifier(name)), [password])
    conn.close()
    database = create_database(PG_DSN, "sectest")
    try:
        yield password, make_dsn(dsn_for(PG_DSN, database), user=name, password=password)
    finally:
        drop_database(PG_DSN, database)
        with psycopg2.connect(PG_DSN) as conn, conn.cursor() as cursor:
            cursor.execute(sql.SQL("drop role if exists {}").format(sql.Identifier(name)))
        conn.close()


def test_scram_sha_512_over_tls_and_no_secret_shown_over_a_whole_run(
    tmp_path: Path, secret_role: tuple[str, str]
) -> None:
    pg_password, dsn = secret_role
    registry_password = secrets.token_urlsafe(18)
    topics = _small("sec")
    settings = {
        **topics,
        **_sasl("SCRAM-SHA-512"),
        "PG_DSN": dsn,
        "CANON_INVENTORY": "kafka",
        "MIRROR_INVENTORY_TO_DB": "true",
        # Apicurio here asks for no authentication and ignores it; the worker must send it and never show it.
        "SCHEMA_REGISTRY_BASIC_AUTH": f"reader:{registry_password}",
    }
    shown = []
    with run_worker(tmp_path, settings) as worker:
        _derives(worker, topics)
        for view in VIEWS:
            with urllib.request.urlopen(worker.url + view, timeout=10) as response:
                shown.append(response.read().decode(errors="replace"))
        worker.process.send_signal(signal.SIGTERM)
        assert worker.process.wait(timeout=60) == 0
        log = worker.log()
    sasl_password = _credentials()["password"]
    for secret in (sasl_password, pg_password, registry_password):
        assert secret not in log
        for page in shown:
            assert secret not in page
    assert "KAFKA_SASL_PASSWORD': '***'" in log  # the settings line shows that it is set, not what it is
    assert len(shown) == len(VIEWS)


def test_plain_over_tls_runs(tmp_path: Path) -> None:
    topics = _small("plain")
    with run_worker(tmp_path, {**topics, **_sasl("PLAIN")}) as worker:
        _derives(worker, topics)


def test_mutual_tls_runs(tmp_path: Path) -> None:
    topics = _small("mtls")
    with run_worker(tmp_path, {**topics, **_mtls()}) as worker:
        _derives(worker, topics)


@pytest.mark.parametrize("mechanism", ["SCRAM-SHA-512", "PLAIN"])
def test_a_wrong_password_stops_the_worker_with_one_line(tmp_path: Path, mechanism: str) -> None:
    wrong = f"wrong-{secrets.token_hex(8)}"
    started = time.monotonic()
    log = _refused(tmp_path, {**_small("wrong"), **_sasl(mechanism, password=wrong)})
    assert time.monotonic() - started < 60
    assert wrong not in log
    critical = [line for line in log.splitlines() if "CRITICAL" in line]
    assert len(critical) == 1, log[-3000:]
    assert "refused the connection" in critical[0]
    assert re.search(r"[Aa]uthentication", critical[0]), critical[0]
    assert "Traceback" not in log


def test_mutual_tls_without_a_client_certificate_stops_the_worker(tmp_path: Path) -> None:
    log = _refused(tmp_path, {**_small("nocert"), **_mtls(with_certificate=False)})
    critical = [line for line in log.splitlines() if "CRITICAL" in line]
    assert len(critical) == 1, log[-3000:]
    assert "bad certificate" in critical[0]


def test_an_untrusted_broker_certificate_stops_the_worker(tmp_path: Path) -> None:
    other_ca = tmp_path / "other-ca.pem"
    key = tmp_path / "other.key"
    command = ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", str(key), "-out", str(other_ca)]
    subprocess.run([*command, "-days", "1", "-subj", "/CN=not the stack's CA"], check=True, capture_output=True)
    log = _refused(tmp_path, {**_small("ca"), **_sasl("SCRAM-SHA-512"), "KAFKA_SSL_CA_FILE": str(other_ca)})
    critical = [line for line in log.splitlines() if "CRITICAL" in line]
    assert len(critical) == 1, log[-3000:]
    assert "certificate" in critical[0].lower()

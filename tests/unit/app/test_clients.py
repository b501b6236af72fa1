"""The security settings in each client's terms: librdkafka's keys, Faust's (so aiokafka's) credentials, the
registry's."""

from __future__ import annotations

import ssl
import subprocess
from pathlib import Path

import aiohttp
import faust
import pytest
from confluent_kafka import KafkaError
from faust.transport.drivers.aiokafka import credentials_to_aiokafka_auth

from app.clients import (
    REGISTRY_TIMEOUT_SECONDS,
    faust_credentials,
    kafka_config,
    kafka_ssl_context,
    refused,
    registry_config,
    registry_http,
    secrets_of,
    without_secrets,
)
from app.exceptions import SettingsError
from app.settings import load_settings


@pytest.fixture(scope="module")
def pem(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    """A throwaway CA and a client certificate it signed, made with openssl as stack/stack.sh makes the stack's."""
    where = tmp_path_factory.mktemp("tls")

    def run(*args: str) -> None:
        subprocess.run(["openssl", *args], cwd=where, check=True, capture_output=True)

    run(
        "req",
        "-x509",
        "-newkey",
        "rsa:2048",
        "-nodes",
        "-keyout",
        "ca.key",
        "-out",
        "ca.pem",
        "-days",
        "2",
        "-subj",
        "/CN=t",
    )
    run("genpkey", "-algorithm", "RSA", "-pkeyopt", "rsa_keygen_bits:2048", "-out", "client.key")
    run("req", "-new", "-key", "client.key", "-out", "client.csr", "-subj", "/CN=client")
    run(
        "x509",
        "-req",
        "-in",
        "client.csr",
        "-CA",
        "ca.pem",
        "-CAkey",
        "ca.key",
        "-CAcreateserial",
        "-out",
        "client.pem",
    )
    (where / "junk.pem").write_text("not a certificate\n")
    return {name: str(where / f"{name}") for name in ("ca.pem", "client.pem", "client.key", "junk.pem")}


def test_plaintext_adds_nothing_to_any_client() -> None:
    settings = load_settings({})
    assert kafka_config(settings) == {"bootstrap.servers": "127.0.0.1:9092"}
    assert faust_credentials(settings) is None
    assert registry_config(settings) == {"url": settings.schema_registry_url, "timeout": REGISTRY_TIMEOUT_SECONDS}
    assert registry_http(settings) == {}


def test_sasl_ssl_with_scram_reaches_librdkafka_and_aiokafka(pem: dict[str, str]) -> None:
    settings = load_settings(
        {
            "KAFKA_SECURITY_PROTOCOL": "SASL_SSL",
            "KAFKA_SASL_MECHANISM": "SCRAM-SHA-512",
            "KAFKA_SASL_USERNAME": "datagen",
            "KAFKA_SASL_PASSWORD": "s3cret-pw",
            "KAFKA_SSL_CA_FILE": pem["ca.pem"],
        }
    )
    assert kafka_config(settings, **{"group.id": "g"}) == {
        "bootstrap.servers": "127.0.0.1:9092",
        "security.protocol": "SASL_SSL",
        "sasl.mechanism": "SCRAM-SHA-512",
        "sasl.username": "datagen",
        "sasl.password": "s3cret-pw",
        "ssl.ca.location": pem["ca.pem"],
        "group.id": "g",
    }
    # What Faust's aiokafka driver hands its consumer and producer (faust-streaming is pinned).
    auth = credentials_to_aiokafka_auth(faust_credentials(settings))
    assert auth["security_protocol"] == "SASL_SSL"
    assert auth["sasl_mechanism"] == "SCRAM-SHA-512"
    assert (auth["sasl_plain_username"], auth["sasl_plain_password"]) == ("datagen", "s3cret-pw")
    context = auth["ssl_context"]
    assert isinstance(context, ssl.SSLContext)
    assert context.verify_mode == ssl.CERT_REQUIRED
    assert context.check_hostname
    assert [cert["subject"] for cert in context.get_ca_certs()] == [((("commonName", "t"),),)]


def test_sasl_plaintext_has_no_tls() -> None:
    settings = load_settings(
        {"KAFKA_SECURITY_PROTOCOL": "SASL_PLAINTEXT", "KAFKA_SASL_USERNAME": "u", "KAFKA_SASL_PASSWORD": "pw12"}
    )
    auth = credentials_to_aiokafka_auth(faust_credentials(settings))
    assert auth["security_protocol"] == "SASL_PLAINTEXT"
    assert auth["ssl_context"] is None
    assert auth["sasl_mechanism"] == "PLAIN"
    assert kafka_config(settings)["security.protocol"] == "SASL_PLAINTEXT"


def test_mutual_tls_loads_the_client_certificate(pem: dict[str, str]) -> None:
    settings = load_settings(
        {
            "KAFKA_SECURITY_PROTOCOL": "SSL",
            "KAFKA_SSL_CA_FILE": pem["ca.pem"],
            "KAFKA_SSL_CERT_FILE": pem["client.pem"],
            "KAFKA_SSL_KEY_FILE": pem["client.key"],
        }
    )
    credentials = faust_credentials(settings)
    assert isinstance(credentials, faust.SSLCredentials)
    auth = credentials_to_aiokafka_auth(credentials)
    assert auth["security_protocol"] == "SSL"
    assert isinstance(auth["ssl_context"], ssl.SSLContext)
    config = kafka_config(settings)
    assert config["ssl.certificate.location"] == pem["client.pem"]
    assert config["ssl.key.location"] == pem["client.key"]
    assert "sasl.username" not in config


def test_a_file_tls_cannot_load_is_refused_in_one_line(pem: dict[str, str]) -> None:
    settings = load_settings(
        {
            "KAFKA_SECURITY_PROTOCOL": "SSL",
            "KAFKA_SSL_CERT_FILE": pem["junk.pem"],
            "KAFKA_SSL_KEY_FILE": pem["client.key"],
        }
    )
    with pytest.raises(SettingsError) as refused:
        kafka_ssl_context(settings)
    assert refused.value.variable == "KAFKA_SSL_CERT_FILE"
    assert "\n" not in str(refused.value)


def test_the_registry_gets_basic_auth_and_its_ca(pem: dict[str, str]) -> None:
    settings = load_settings(
        {
            "SCHEMA_REGISTRY_URL": "https://registry.example:8081",
            "SCHEMA_REGISTRY_BASIC_AUTH": "reader:pa:ss",
            "SCHEMA_REGISTRY_CA_FILE": pem["ca.pem"],
        }
    )
    assert registry_config(settings) == {
        "url": "https://registry.example:8081",
        "timeout": REGISTRY_TIMEOUT_SECONDS,
        "basic.auth.user.info": "reader:pa:ss",
        "ssl.ca.location": pem["ca.pem"],
    }
    http = registry_http(settings)
    assert http["auth"] == aiohttp.BasicAuth("reader", "pa:ss")
    assert isinstance(http["ssl"], ssl.SSLContext)


def test_secrets_are_replaced_in_any_text(tmp_path: Path) -> None:
    settings = load_settings(
        {
            "KAFKA_SECURITY_PROTOCOL": "SASL_PLAINTEXT",
            "KAFKA_SASL_USERNAME": "u",
            "KAFKA_SASL_PASSWORD": "sasl-secret",
            "SCHEMA_REGISTRY_BASIC_AUTH": "reader:registry-secret",
            "PG_DSN": "host=db dbname=demo password=pg-secret",
        }
    )
    text = "a sasl-secret b reader:registry-secret c registry-secret d pg-secret"
    cleaned = without_secrets(text, settings)
    for secret in ("sasl-secret", "registry-secret", "pg-secret"):
        assert secret not in cleaned
    assert len(secrets_of(settings)) == 5  # DSN, its password, SASL's, the registry's and its user:
    shown = " ".join(settings.display().values())
    assert "sasl-secret" not in shown
    assert "registry-secret" not in shown
    assert "pg-secret" not in shown


def test_a_refusal_is_told_from_a_broker_that_is_down() -> None:
    assert refused(KafkaError(KafkaError._AUTHENTICATION, "SASL authentication error: invalid credentials"))
    alert = "ssl://h:9095/bootstrap: Receive failed: error:0A000412:SSL routines::ssl/tls alert bad certificate"
    assert refused(KafkaError(KafkaError._TRANSPORT, alert))
    assert not refused(
        KafkaError(KafkaError._TRANSPORT, "127.0.0.1:9092/bootstrap: Connect to ipv4#127.0.0.1:9092 failed")
    )
    assert not refused(KafkaError(KafkaError._ALL_BROKERS_DOWN, "1/1 brokers are down"))
    # A TLS connection's errors all name the broker as ssl://... or sasl_ssl://...: a broker that is down is not
    # a TLS failure for that.
    for down in (
        "ssl://127.0.0.1:9095/bootstrap: Connect to ipv4#127.0.0.1:9095 failed: Connection refused (after 0ms)",
        "sasl_ssl://127.0.0.1:9094/bootstrap: Disconnected while requesting ApiVersion: might be caused by ...",
        "sasl_ssl://127.0.0.1:9094/bootstrap: SSL handshake failed: Disconnected (after 3ms in state SSL_HANDSHAKE)",
    ):
        assert not refused(KafkaError(KafkaError._TRANSPORT, down)), down
    verify = "sasl_ssl://h:9094/bootstrap: SSL handshake failed: error:0A000086:SSL routines::certificate verify failed"
    assert refused(KafkaError(KafkaError._SSL, verify))
    assert refused(KafkaError(KafkaError._TRANSPORT, verify))

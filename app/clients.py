"""How every client the worker makes reaches Kafka and the registry: the security settings, in each client's terms.

Faust's consumer and producer (aiokafka) take credentials and an ``ssl.SSLContext``; the confluent-kafka producers,
consumers and admin clients (librdkafka) take their own dotted keys; the registry client takes basic auth and a CA
file; the health check's HTTP session takes the same two. Postgres' TLS is PG_DSN's own (``sslmode`` and friends).
"""

from __future__ import annotations

import asyncio
import logging
import os
import re
import ssl
import time
from typing import Any

import aiohttp
import faust
from confluent_kafka import KafkaError, KafkaException
from confluent_kafka.admin import AdminClient
from faust.types.auth import CredentialsT
from psycopg2.extensions import parse_dsn

from app.exceptions import SettingsError
from app.settings import HIDDEN, Settings

log = logging.getLogger(__name__)

#: Where the preflight client's own log goes: nowhere. What it finds is said in the one line of the refusal, and a
#: broker that is down is reported by Faust's clients, which wait for it.
_SILENT = logging.getLogger(f"{__name__}.preflight")
_SILENT.addHandler(logging.NullHandler())
_SILENT.propagate = False

#: The librdkafka errors that no waiting cures: wrong credentials, a certificate that does not verify.
REFUSALS = frozenset({KafkaError._AUTHENTICATION, KafkaError._SSL, KafkaError.SASL_AUTHENTICATION_FAILED})
#: The longest a registry request may take (seconds): well under the consumer's session timeout.
REGISTRY_TIMEOUT_SECONDS = 3

#: A transport error that is a TLS failure no retry cures: an alert from the broker (a client certificate it refuses,
#: or none), a certificate that does not verify, TLS spoken to a plaintext listener. Matched after the broker's name,
#: which starts with ``ssl://`` or ``sasl_ssl://`` in every error of a TLS connection, a refused connect included.
_TLS_FAILURE = re.compile(r"alert|certificate|wrong version number|PLAINTEXT broker listener", re.IGNORECASE)


def refused(error: KafkaError) -> bool:
    """True for an error no waiting cures: a refused login, a certificate either side does not accept.

    librdkafka reports a broker's TLS alert (a client certificate it refuses, or none) as a transport error; a broker
    that is down is a transport error too, but without TLS in it.
    """
    if error.code() in REFUSALS:
        return True
    if error.code() != KafkaError._TRANSPORT:
        return False
    _, _, what = error.str().partition(": ")  # past "ssl://host:port/id"
    return bool(_TLS_FAILURE.search(what))


def kafka_config(settings: Settings, **extra: Any) -> dict[str, Any]:
    """librdkafka's configuration for the bootstrap servers and the security settings, with ``extra`` added."""
    config: dict[str, Any] = {"bootstrap.servers": settings.kafka_bootstrap}
    protocol = settings.kafka_security_protocol
    if protocol != "PLAINTEXT":
        config["security.protocol"] = protocol
    if protocol.startswith("SASL_"):
        config["sasl.mechanism"] = settings.kafka_sasl_mechanism
        config["sasl.username"] = settings.kafka_sasl_username
        config["sasl.password"] = settings.kafka_sasl_password.get_secret_value()
    if settings.kafka_ssl_ca_file:
        config["ssl.ca.location"] = settings.kafka_ssl_ca_file
    if settings.kafka_ssl_cert_file:
        config["ssl.certificate.location"] = settings.kafka_ssl_cert_file
        config["ssl.key.location"] = settings.kafka_ssl_key_file
    if settings.kafka_ssl_key_password.get_secret_value():
        config["ssl.key.password"] = settings.kafka_ssl_key_password.get_secret_value()
    return {**config, **extra}


def kafka_ssl_context(settings: Settings) -> ssl.SSLContext:
    """The TLS context of Faust's clients: the CA file (else the system's), and the client certificate if set."""
    try:
        context = ssl.create_default_context(cafile=settings.kafka_ssl_ca_file or None)
        if settings.kafka_ssl_cert_file:
            password = settings.kafka_ssl_key_password.get_secret_value() or None
            context.load_cert_chain(settings.kafka_ssl_cert_file, settings.kafka_ssl_key_file, password)
    except (ssl.SSLError, OSError) as error:
        variable = "KAFKA_SSL_CERT_FILE" if settings.kafka_ssl_cert_file else "KAFKA_SSL_CA_FILE"
        value = settings.kafka_ssl_cert_file or settings.kafka_ssl_ca_file
        raise SettingsError(variable, value, f"PEM files TLS can load ({type(error).__name__})") from None
    return context


def faust_credentials(settings: Settings) -> CredentialsT | None:
    """Faust's ``broker_credentials``: None for PLAINTEXT."""
    protocol = settings.kafka_security_protocol
    if protocol == "PLAINTEXT":
        return None
    if protocol == "SSL":
        return faust.SSLCredentials(kafka_ssl_context(settings))
    return faust.SASLCredentials(
        username=settings.kafka_sasl_username,
        password=settings.kafka_sasl_password.get_secret_value(),
        mechanism=settings.kafka_sasl_mechanism,
        ssl_context=kafka_ssl_context(settings) if protocol == "SASL_SSL" else None,
    )


def registry_config(settings: Settings) -> dict[str, Any]:
    """confluent-kafka's SchemaRegistryClient configuration."""
    # A bounded wait: a decoder asks for an unknown schema id on the agents' event loop, and a registry that accepts
    # connections without answering (one shutting down) would otherwise hold the loop, heartbeats and all, for good.
    config: dict[str, Any] = {"url": settings.schema_registry_url, "timeout": REGISTRY_TIMEOUT_SECONDS}
    if settings.schema_registry_basic_auth.get_secret_value():
        config["basic.auth.user.info"] = settings.schema_registry_basic_auth.get_secret_value()
    if settings.schema_registry_ca_file:
        config["ssl.ca.location"] = settings.schema_registry_ca_file
    return config


def registry_http(settings: Settings) -> dict[str, Any]:
    """aiohttp request arguments for the registry: basic auth and the CA file, when set."""
    arguments: dict[str, Any] = {}
    user_info = settings.schema_registry_basic_auth.get_secret_value()
    if user_info:
        user, _, password = user_info.partition(":")
        arguments["auth"] = aiohttp.BasicAuth(user, password)
    if settings.schema_registry_ca_file:
        arguments["ssl"] = ssl.create_default_context(cafile=settings.schema_registry_ca_file)
    return arguments


def secrets_of(settings: Settings) -> list[str]:
    """Every secret value set, longest first: what no log line, page or error may show."""
    values = [
        settings.pg_dsn.get_secret_value(),
        parse_dsn(settings.pg_dsn.get_secret_value()).get("password", ""),
        settings.kafka_sasl_password.get_secret_value(),
        settings.kafka_ssl_key_password.get_secret_value(),
        settings.schema_registry_basic_auth.get_secret_value(),
        settings.schema_registry_basic_auth.get_secret_value().partition(":")[2],
    ]
    return sorted({value for value in values if len(value) >= 4}, key=len, reverse=True)


def without_secrets(text: str, settings: Settings) -> str:
    """``text`` with every secret of ``settings`` replaced."""
    for secret in secrets_of(settings):
        text = text.replace(secret, HIDDEN)
    return text


def kafka_refusal(settings: Settings, *, timeout: float) -> str | None:
    """Why Kafka refuses these credentials or this TLS setup, or None once it answers (or stays silent ``timeout`` s).

    A broker that is down is not a refusal: the worker waits for it as it would without this check. Run before Faust's
    own clients start, so that wrong credentials end the worker with one line instead of its retrying forever.
    """
    refusals: list[KafkaError] = []

    def on_error(error: KafkaError) -> None:
        if refused(error):
            refusals.append(error)

    admin = AdminClient(kafka_config(settings, error_cb=on_error, logger=_SILENT))
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and not refusals:
        try:
            admin.list_topics(timeout=min(1.0, max(0.1, deadline - time.monotonic())))
            return None
        except KafkaException as error:
            if error.args and isinstance(error.args[0], KafkaError) and refused(error.args[0]):
                refusals.append(error.args[0])
        admin.poll(0.1)  # serves error_cb, where librdkafka reports a refused login or handshake
    if not refusals:
        return None
    return without_secrets(refusals[0].str(), settings)


#: How long the start waits for Kafka to accept or refuse the credentials before it goes on (a broker that is down
#: is waited for by Faust's own clients, as without security).
PREFLIGHT_SECONDS = 15.0


async def refuse_wrong_credentials(settings: Settings) -> None:
    """Exit with status 2 and one line when Kafka refuses the credentials or the TLS setup; otherwise return."""
    refusal = await asyncio.to_thread(kafka_refusal, settings, timeout=PREFLIGHT_SECONDS)
    if refusal is None:
        return
    how = f"KAFKA_SECURITY_PROTOCOL={settings.kafka_security_protocol}"
    if settings.kafka_security_protocol.startswith("SASL_"):
        how += f", KAFKA_SASL_MECHANISM={settings.kafka_sasl_mechanism}"
        how += f", KAFKA_SASL_USERNAME={settings.kafka_sasl_username}"
    log.critical(
        "Kafka at %s refused the connection (%s): %s; check the KAFKA_SASL_* and KAFKA_SSL_* settings",
        settings.kafka_bootstrap,
        how,
        refusal,
    )
    logging.shutdown()
    os._exit(2)

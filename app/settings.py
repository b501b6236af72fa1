"""Every setting of the generator: one frozen, typed object read once at start-up."""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from typing import Annotated, Any, Literal
from urllib.parse import urlsplit, urlunsplit
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from psycopg2 import ProgrammingError
from psycopg2.extensions import parse_dsn
from pydantic import BaseModel, ConfigDict, Field, SecretStr, ValidationError, field_validator, model_validator

from app.exceptions import SettingsError
from app.generation.clock import DURATION_ACCEPTS, START_ACCEPTS, parse_duration, parse_start
from app.wire.roles import (
    CUSTOMER_INTERACTIONS,
    DEAD_LETTER,
    INVENTORY_CHANGES,
    ORDERS,
    PAYMENTS,
    SHIPMENTS,
    TRUTH,
)

#: What each kind of value accepts, said in the one-line error a bad value produces.
PROBABILITY = "a number between 0 and 1"
WEIGHT = "a number 0-1000000 (the three weights must not all be 0)"

Probability = Annotated[float, Field(ge=0.0, le=1.0, json_schema_extra={"accepts": PROBABILITY})]
Weight = Annotated[float, Field(ge=0.0, le=1_000_000, json_schema_extra={"accepts": WEIGHT})]

_HOST_PORT = re.compile(r"^[A-Za-z0-9._-]+:\d{1,5}$")
_TOPIC_NAME = re.compile(r"^[A-Za-z0-9._-]{1,249}$")
#: A host name, an IPv4 address or an IPv6 address.
_HOST_PATTERN = r"^[A-Za-z0-9.:_-]{1,253}$"
#: Characters no URL or DSN of ours holds: white space and control characters, quotes, angle brackets.
_UNSAFE = re.compile(r"[\x00-\x20\x7f\"'<>`]")
#: A path to a PEM file: checked to be a readable file when the settings are read.
PEM_FILE = "the path of a readable PEM file"
#: What a refused secret shows in its error line.
HIDDEN = "<hidden>"
#: The settings whose values are secrets: masked wherever settings are shown.
SECRETS = frozenset({"pg_dsn", "kafka_sasl_password", "kafka_ssl_key_password", "schema_registry_basic_auth"})


class Settings(BaseModel):
    """The generator's configuration; each field is read from the variable of its name in capitals."""

    model_config = ConfigDict(frozen=True, extra="forbid", allow_inf_nan=False)

    # Rate and mix.
    target_eps: float = Field(
        10.0, gt=0, le=10_000_000, json_schema_extra={"accepts": "a number > 0, at most 10000000"}
    )
    burst_capacity: float | None = Field(
        None,
        ge=1,
        le=100_000_000,
        json_schema_extra={"accepts": "a number of events 1-100000000 (unset: one second at TARGET_EPS)"},
    )
    weight_orders: Weight = 0.6
    weight_interactions: Weight = 0.3
    weight_inventory_chg: Weight = 0.1
    max_events: int | None = Field(
        None, ge=1, le=10**15, json_schema_extra={"accepts": "a whole number 1-10^15, or unset for an endless run"}
    )
    schema_evolve_after: int | None = Field(
        None,
        ge=0,
        le=10**15,
        json_schema_extra={"accepts": "a whole number 0-10^15 of events, or unset for never"},
    )
    producer_queue_max: int = Field(
        200_000,
        ge=1,
        le=10_000_000,
        json_schema_extra={"accepts": "a whole number 1-10000000"},
    )
    diurnal_enabled: bool = Field(True, json_schema_extra={"accepts": "true or false"})
    # The simulated clock (app.generation.clock).
    start_time: str | None = Field(None, json_schema_extra={"accepts": START_ACCEPTS + ", or unset for now"})
    speedup: float = Field(
        1.0, gt=0, le=1_000_000, json_schema_extra={"accepts": "simulated seconds per wall second, > 0, <= 1000000"}
    )
    backfill: str | None = Field(None, json_schema_extra={"accepts": DURATION_ACCEPTS + ", or unset for none"})
    timezone: str = Field("UTC", json_schema_extra={"accepts": "an IANA time zone name such as Europe/Paris"})
    random_seed: int | None = Field(
        None, ge=0, le=2**63 - 1, json_schema_extra={"accepts": "a whole number 0-9223372036854775807, or unset"}
    )

    # Reference data sizes (the seed); the bounds are app.reference.sizes', checked equal by a test.
    n_users: int = Field(10_000, ge=1, le=5_000_000, json_schema_extra={"accepts": "a whole number 1-5000000"})
    n_products: int = Field(1_000, ge=1, le=1_000_000, json_schema_extra={"accepts": "a whole number 1-1000000"})
    n_warehouses: int = Field(
        5, ge=1, le=20, json_schema_extra={"accepts": "a whole number 1-20 (one warehouse per region)"}
    )
    n_suppliers: int = Field(50, ge=1, le=100_000, json_schema_extra={"accepts": "a whole number 1-100000"})

    # Inventory.
    canon_inventory: Literal["postgres", "kafka"] = Field(
        "postgres", json_schema_extra={"accepts": "postgres or kafka"}
    )
    agents_enabled: bool = Field(True, json_schema_extra={"accepts": "true or false"})
    generation_enabled: bool = Field(True, json_schema_extra={"accepts": "true or false"})
    truth_enabled: bool = Field(True, json_schema_extra={"accepts": "true or false"})
    generation_shards: int = Field(
        12,
        ge=1,
        le=1024,
        json_schema_extra={"accepts": "a whole number 1-1024, fixed for the life of an APP_ID"},
    )
    generation_settle_seconds: float = Field(
        3.0,
        ge=0,
        le=600,
        json_schema_extra={"accepts": "a number of seconds 0-600"},
    )
    backorder_timeout_days: float = Field(
        14.0,
        gt=0,
        le=3650,
        json_schema_extra={"accepts": "a number of days in (0, 3650] (scaled by LEAD_TIME_SCALE, like lead times)"},
    )
    lead_time_scale: float = Field(
        1 / 1440,
        gt=0,
        le=1,
        json_schema_extra={"accepts": "a number in (0, 1]: 1/1440 makes a supplier's day last a minute"},
    )
    mirror_inventory_to_db: bool = Field(False, json_schema_extra={"accepts": "true or false"})

    # Business probabilities and data-quality faults.
    p_order_has_payment: Probability = 0.85
    p_order_has_shipment: Probability = 0.75
    p_update_inventory: Probability = 0.02
    p_update_price: Probability = 0.001
    p_late_event: Probability = 0.05
    p_bad_record: Probability = 0.001
    p_duplicate: Probability = 0.0

    # Connectivity.
    kafka_bootstrap: str = Field("127.0.0.1:9092", json_schema_extra={"accepts": "comma-separated host:port pairs"})
    schema_registry_url: str = Field(
        "http://127.0.0.1:8081/apis/ccompat/v7",
        repr=False,  # may carry user:password; display() shows it masked
        json_schema_extra={"accepts": "an http:// or https:// URL"},
    )
    pg_dsn: SecretStr = Field(
        SecretStr("host=127.0.0.1 port=5432 dbname=demo user=admin password=admin"),
        json_schema_extra={"accepts": "a libpq DSN naming at least host and dbname"},
    )

    # Security of the Kafka and registry connections (Postgres': PG_DSN's sslmode, sslrootcert, ...).
    kafka_security_protocol: Literal["PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL"] = Field(
        "PLAINTEXT", json_schema_extra={"accepts": "PLAINTEXT, SSL, SASL_PLAINTEXT or SASL_SSL"}
    )
    kafka_sasl_mechanism: Literal["PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"] = Field(
        "PLAIN", json_schema_extra={"accepts": "PLAIN, SCRAM-SHA-256 or SCRAM-SHA-512"}
    )
    kafka_sasl_username: str = Field(
        "",
        pattern=r"^[^\x00-\x20\x7f]{0,255}$",
        json_schema_extra={"accepts": "a user name of 1-255 characters, no space or control character"},
    )
    kafka_sasl_password: SecretStr = Field(
        SecretStr(""), json_schema_extra={"accepts": "the SASL password of KAFKA_SASL_USERNAME"}
    )
    kafka_ssl_ca_file: str = Field("", json_schema_extra={"accepts": PEM_FILE + " of CA certificates"})
    kafka_ssl_cert_file: str = Field("", json_schema_extra={"accepts": PEM_FILE + " holding the client certificate"})
    kafka_ssl_key_file: str = Field("", json_schema_extra={"accepts": PEM_FILE + " holding the client's key"})
    kafka_ssl_key_password: SecretStr = Field(
        SecretStr(""), json_schema_extra={"accepts": "the password of KAFKA_SSL_KEY_FILE, when it is encrypted"}
    )
    schema_registry_basic_auth: SecretStr = Field(
        SecretStr(""), json_schema_extra={"accepts": "user:password for the registry's HTTP basic auth"}
    )
    schema_registry_ca_file: str = Field("", json_schema_extra={"accepts": PEM_FILE + " of CA certificates"})

    # Topics.
    topic_orders: str = "orders.v1"
    topic_payments: str = "payments.v1"
    topic_shipments: str = "shipments.v1"
    topic_inventory_changes: str = "inventory-changes.v1"
    topic_customer_interactions: str = "customer-interactions.v1"
    topic_dead_letter: str = "dead-letter.v1"
    topic_truth: str = "truth.v1"
    topic_partitions: int = Field(4, ge=1, le=10_000, json_schema_extra={"accepts": "a whole number 1-10000"})
    topic_replication_factor: int = Field(1, ge=1, le=32, json_schema_extra={"accepts": "a whole number 1-32"})

    # The worker itself.
    app_id: str = Field(
        "retail-datagen",
        pattern=r"^[A-Za-z0-9._-]{1,200}$",
        json_schema_extra={"accepts": "a name of 1-200 letters, digits, '.', '_' or '-' (it prefixes Kafka topics)"},
    )
    web_bind: str = Field(
        "127.0.0.1", pattern=_HOST_PATTERN, json_schema_extra={"accepts": "an address to listen on (a host or IP)"}
    )
    web_host: str = Field(
        "127.0.0.1",
        pattern=_HOST_PATTERN,
        json_schema_extra={"accepts": "a host name the other workers reach, or auto (this machine's address)"},
    )
    web_port: int = Field(6066, ge=1, le=65535, json_schema_extra={"accepts": "a port number 1-65535"})
    web_faust_views_enabled: bool = Field(False, json_schema_extra={"accepts": "true or false"})
    data_dir: str = Field(
        "./.faust-data",
        pattern=r"^[^\x00-\x1f\x7f]{1,1024}$",
        json_schema_extra={"accepts": "a directory path of 1-1024 characters, none a control character"},
    )

    @field_validator("kafka_bootstrap")
    @classmethod
    def _bootstrap_is_host_ports(cls, value: str) -> str:
        servers = [server.strip() for server in value.split(",")]
        if not all(_HOST_PORT.match(server) for server in servers):
            raise ValueError("not a list of host:port")
        return ",".join(servers)

    @field_validator("timezone")
    @classmethod
    def _known_time_zone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError, OSError) as error:  # OSError: a name too long for a file
            raise ValueError("unknown time zone") from error
        return value

    @field_validator("backfill")
    @classmethod
    def _duration(cls, value: str | None) -> str | None:
        if value is not None and not 0 < parse_duration(value) <= 3_650 * 86_400:
            raise ValueError("not a duration of more than 0 and at most 3650 days")
        return value

    @field_validator("start_time")
    @classmethod
    def _iso_moment(cls, value: str | None) -> str | None:
        if value is not None:
            parse_start(value, ZoneInfo("UTC"))  # the offset-less reading in TIMEZONE parses alike
        return value

    @field_validator("schema_registry_url")
    @classmethod
    def _registry_is_http_url(cls, value: str) -> str:
        if _UNSAFE.search(value) or len(value) > 2048:
            raise ValueError("not an http(s) URL")
        parts = urlsplit(value)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError("not an http(s) URL")
        _ = parts.port  # raises ValueError on a port that is not a number
        return value.rstrip("/")

    @field_validator("kafka_ssl_ca_file", "kafka_ssl_cert_file", "kafka_ssl_key_file", "schema_registry_ca_file")
    @classmethod
    def _readable_file(cls, value: str) -> str:
        if value and not _readable(value):
            raise ValueError("not a readable file")
        return value

    @field_validator("schema_registry_basic_auth")
    @classmethod
    def _user_colon_password(cls, value: SecretStr) -> SecretStr:
        text = value.get_secret_value()
        user, colon, password = text.partition(":")
        if text and (not colon or not user or not password or _UNSAFE.search(user) or len(text) > 1024):
            raise ValueError("not user:password")
        return value

    @field_validator("pg_dsn")
    @classmethod
    def _dsn_is_libpq(cls, value: SecretStr) -> SecretStr:
        try:
            parsed = parse_dsn(value.get_secret_value())
        except ProgrammingError as error:
            raise ValueError("not a libpq DSN") from error
        if not parsed.get("host") or not parsed.get("dbname"):
            raise ValueError("a DSN without host or dbname")
        return value

    @field_validator(
        "topic_orders",
        "topic_payments",
        "topic_shipments",
        "topic_inventory_changes",
        "topic_customer_interactions",
        "topic_dead_letter",
        "topic_truth",
    )
    @classmethod
    def _legal_topic_name(cls, value: str) -> str:
        if not _TOPIC_NAME.match(value) or value in (".", ".."):
            raise ValueError("not a legal Kafka topic name")
        return value

    @model_validator(mode="after")
    def _consistent(self) -> Settings:
        if self.weight_orders + self.weight_interactions + self.weight_inventory_chg <= 0:
            raise SettingsError(
                "WEIGHT_ORDERS+WEIGHT_INTERACTIONS+WEIGHT_INVENTORY_CHG", "0", "at least one of the three weights > 0"
            )
        if self.p_order_has_shipment > self.p_order_has_payment:
            raise SettingsError(
                "P_ORDER_HAS_SHIPMENT",
                str(self.p_order_has_shipment),
                f"a probability <= P_ORDER_HAS_PAYMENT ({self.p_order_has_payment}): only paid orders ship",
            )
        topics = self.topics()
        if len(set(topics.values())) != len(topics):
            raise SettingsError("TOPIC_*", ",".join(topics.values()), "seven distinct topic names")
        self._consistent_security()
        return self

    def _consistent_security(self) -> None:
        """No security setting that the chosen protocols would ignore, and none missing that they need."""
        protocol = self.kafka_security_protocol
        sasl, tls = protocol.startswith("SASL_"), protocol.endswith("SSL")
        unused = {
            "kafka_sasl_username": not sasl and bool(self.kafka_sasl_username),
            "kafka_sasl_password": not sasl and bool(self.kafka_sasl_password.get_secret_value()),
            "kafka_ssl_ca_file": not tls and bool(self.kafka_ssl_ca_file),
            "kafka_ssl_cert_file": not tls and bool(self.kafka_ssl_cert_file),
            "kafka_ssl_key_file": not tls and bool(self.kafka_ssl_key_file),
            "kafka_ssl_key_password": not tls and bool(self.kafka_ssl_key_password.get_secret_value()),
        }
        for name, ignored in unused.items():
            if ignored:
                raise SettingsError(
                    name.upper(), self._shown(name), f"unset: KAFKA_SECURITY_PROTOCOL={protocol} does not use it"
                )
        if sasl and not (self.kafka_sasl_username and self.kafka_sasl_password.get_secret_value()):
            missing = "KAFKA_SASL_USERNAME" if not self.kafka_sasl_username else "KAFKA_SASL_PASSWORD"
            raise SettingsError(missing, "", f"a value: KAFKA_SECURITY_PROTOCOL={protocol} logs in with it")
        if bool(self.kafka_ssl_cert_file) != bool(self.kafka_ssl_key_file):
            missing = "KAFKA_SSL_KEY_FILE" if self.kafka_ssl_cert_file else "KAFKA_SSL_CERT_FILE"
            raise SettingsError(missing, "", "a file: a client certificate needs its key and the key its certificate")
        if self.kafka_ssl_key_password.get_secret_value() and not self.kafka_ssl_key_file:
            raise SettingsError("KAFKA_SSL_KEY_PASSWORD", HIDDEN, "unset: KAFKA_SSL_KEY_FILE is not set")
        if self.schema_registry_ca_file and not self.schema_registry_url.startswith("https://"):
            raise SettingsError(
                "SCHEMA_REGISTRY_CA_FILE", self.schema_registry_ca_file, "unset: SCHEMA_REGISTRY_URL is not https://"
            )
        if self.schema_registry_basic_auth.get_secret_value() and urlsplit(self.schema_registry_url).username:
            raise SettingsError(
                "SCHEMA_REGISTRY_BASIC_AUTH", HIDDEN, "unset: SCHEMA_REGISTRY_URL carries a user already"
            )

    def _shown(self, name: str) -> str:
        """A setting's value as an error line may show it."""
        return HIDDEN if name in SECRETS else shorten(str(getattr(self, name)))

    def topics(self) -> dict[str, str]:
        """The topic names by role."""
        return {
            ORDERS: self.topic_orders,
            PAYMENTS: self.topic_payments,
            SHIPMENTS: self.topic_shipments,
            INVENTORY_CHANGES: self.topic_inventory_changes,
            CUSTOMER_INTERACTIONS: self.topic_customer_interactions,
            DEAD_LETTER: self.topic_dead_letter,
            TRUTH: self.topic_truth,
        }

    @property
    def bucket_capacity(self) -> float:
        """The token bucket's size in events: BURST_CAPACITY, or one wall second at the target rate (TARGET_EPS is
        per simulated second: x SPEEDUP)."""
        return self.burst_capacity if self.burst_capacity is not None else max(1.0, self.target_eps * self.speedup)

    @property
    def start_ms(self) -> int | None:
        """START_TIME in epoch milliseconds, or None for now."""
        return None if self.start_time is None else parse_start(self.start_time, ZoneInfo(self.timezone))

    @property
    def backfill_ms(self) -> int:
        """BACKFILL in milliseconds (0 when unset)."""
        return 0 if self.backfill is None else round(parse_duration(self.backfill) * 1000)

    def display(self) -> dict[str, str]:
        """Every setting by its variable name, secrets masked: safe to log or show."""
        shown = {}
        for name in type(self).model_fields:
            value = getattr(self, name)
            if name == "pg_dsn":
                text = mask_dsn(value.get_secret_value())
            elif name in SECRETS:
                text = "***" if value.get_secret_value() else ""
            elif name == "schema_registry_url":
                text = mask_url(value)
            elif isinstance(value, bool):
                text = str(value).lower()
            else:
                text = "" if value is None else str(value)
            shown[name.upper()] = text
        return shown


def mask_dsn(dsn: str) -> str:
    """The DSN with its password replaced by ***."""
    parsed = parse_dsn(dsn)
    if "password" in parsed:
        parsed["password"] = "***"
    return " ".join(f"{key}={value}" for key, value in parsed.items())


def mask_url(url: str) -> str:
    """The URL with any user:password part replaced by ***."""
    parts = urlsplit(url)
    if not (parts.username or parts.password):
        return url
    host = parts.hostname or ""
    netloc = f"***@{host}" + (f":{parts.port}" if parts.port else "")
    return urlunsplit(parts._replace(netloc=netloc))


def _readable(path: str) -> bool:
    """True when ``path`` names a file this process can read."""
    if _UNSAFE.search(path.replace(" ", "")) or len(path) > 4096:
        return False
    try:
        return os.path.isfile(path) and os.access(path, os.R_OK)
    except (OSError, ValueError):
        return False


def _accepts(name: str) -> str:
    field = Settings.model_fields[name]
    extra = field.json_schema_extra if isinstance(field.json_schema_extra, dict) else {}
    for item in field.metadata:  # Annotated aliases keep their Field() in metadata
        extra = {**(getattr(item, "json_schema_extra", None) or {}), **extra}
    accepts = extra.get("accepts")
    if isinstance(accepts, str):
        return accepts
    if name.startswith("topic_"):
        return "a Kafka topic name of letters, digits, '.', '_' or '-'"
    return "a valid value"


def _from_validation_error(error: ValidationError, environ: Mapping[str, str]) -> SettingsError:
    first: dict[str, Any] = dict(error.errors()[0])
    loc = first.get("loc") or ("?",)
    name = str(loc[0])
    variable = name.upper()
    value = environ.get(variable, first.get("input"))
    if name in SECRETS:
        value = HIDDEN  # a malformed DSN may still hold a password
    elif name == "schema_registry_url":
        value = re.sub(r"//[^/@]*@", "//***@", str(value))
    return SettingsError(
        variable, shorten(str(value)), _accepts(name) if name in Settings.model_fields else "a valid value"
    )


#: The most characters of a refused value an error message repeats.
SHOWN_CHARACTERS = 64


def shorten(value: str) -> str:
    """``value`` as an error message repeats it: at most SHOWN_CHARACTERS, then how many more there were."""
    if len(value) <= SHOWN_CHARACTERS:
        return value
    return f"{value[:SHOWN_CHARACTERS]}... ({len(value) - SHOWN_CHARACTERS} more characters)"


def load_settings(environ: Mapping[str, str]) -> Settings:
    """Read and validate the settings from ``environ``; raise SettingsError on the first bad value."""
    fields = Settings.model_fields
    values = {name: environ[name.upper()] for name in fields if environ.get(name.upper(), "") != ""}
    try:
        return Settings.model_validate(values)
    except ValidationError as error:
        raise _from_validation_error(error, environ) from None

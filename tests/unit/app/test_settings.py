"""Settings: the spec's defaults, and one clear line for each kind of bad value."""

from collections.abc import Callable

import pytest

from app.exceptions import SettingsError
from app.settings import Settings, load_settings


def test_defaults_are_the_specs_with_local_hosts() -> None:
    settings = load_settings({})
    assert settings.target_eps == 10
    assert (settings.weight_orders, settings.weight_interactions, settings.weight_inventory_chg) == (0.6, 0.3, 0.1)
    assert settings.canon_inventory == "postgres"
    assert settings.mirror_inventory_to_db is False
    assert settings.p_order_has_payment == 0.85
    assert settings.p_order_has_shipment == 0.75
    assert settings.p_update_inventory == 0.02
    assert settings.p_update_price == 0.001
    assert settings.p_late_event == 0.05
    assert settings.p_bad_record == 0.001
    assert settings.kafka_bootstrap == "127.0.0.1:9092"
    assert settings.schema_registry_url == "http://127.0.0.1:8081/apis/ccompat/v7"
    assert settings.pg_dsn.get_secret_value() == "host=127.0.0.1 port=5432 dbname=demo user=admin password=admin"
    assert settings.topics() == {
        "orders": "orders.v1",
        "payments": "payments.v1",
        "shipments": "shipments.v1",
        "inventory_changes": "inventory-changes.v1",
        "customer_interactions": "customer-interactions.v1",
        "dead_letter": "dead-letter.v1",
        "truth": "truth.v1",
    }


def test_values_are_read_from_the_variables_of_the_same_name() -> None:
    settings = load_settings(
        {
            "TARGET_EPS": "2500",
            "CANON_INVENTORY": "kafka",
            "MIRROR_INVENTORY_TO_DB": "true",
            "RANDOM_SEED": "42",
            "TOPIC_PARTITIONS": "8",
            "KAFKA_BOOTSTRAP": "a:9092, b:9093",
            "UNRELATED": "ignored",
        }
    )
    assert settings.target_eps == 2500
    assert settings.canon_inventory == "kafka"
    assert settings.mirror_inventory_to_db is True
    assert settings.random_seed == 42
    assert settings.topic_partitions == 8
    assert settings.kafka_bootstrap == "a:9092,b:9093"


def test_an_empty_variable_means_the_default() -> None:
    assert load_settings({"TARGET_EPS": "", "RANDOM_SEED": ""}) == load_settings({})


def test_settings_are_frozen() -> None:
    settings = load_settings({})
    with pytest.raises(ValueError, match="frozen"):
        settings.target_eps = 5  # type: ignore[misc]


def test_burst_capacity_defaults_to_one_second_of_the_target(settings_factory: Callable[..., Settings]) -> None:
    assert settings_factory(TARGET_EPS="500").bucket_capacity == 500
    assert settings_factory(TARGET_EPS="0.5").bucket_capacity == 1
    assert settings_factory(TARGET_EPS="500", BURST_CAPACITY="50").bucket_capacity == 50


@pytest.mark.parametrize(
    ("environ", "variable", "accepts"),
    [
        ({"TARGET_EPS": "abc"}, "TARGET_EPS", "a number > 0"),
        ({"TARGET_EPS": "0"}, "TARGET_EPS", "a number > 0"),
        ({"P_LATE_EVENT": "1.5"}, "P_LATE_EVENT", "between 0 and 1"),
        ({"P_BAD_RECORD": "-0.1"}, "P_BAD_RECORD", "between 0 and 1"),
        ({"WEIGHT_ORDERS": "-1"}, "WEIGHT_ORDERS", "a number 0-1000000"),
        (
            {"WEIGHT_ORDERS": "0", "WEIGHT_INTERACTIONS": "0", "WEIGHT_INVENTORY_CHG": "0"},
            "WEIGHT_ORDERS+WEIGHT_INTERACTIONS+WEIGHT_INVENTORY_CHG",
            "at least one of the three weights > 0",
        ),
        ({"CANON_INVENTORY": "redis"}, "CANON_INVENTORY", "postgres or kafka"),
        ({"MIRROR_INVENTORY_TO_DB": "maybe"}, "MIRROR_INVENTORY_TO_DB", "true or false"),
        ({"PG_DSN": "not a dsn"}, "PG_DSN", "libpq DSN"),
        ({"PG_DSN": "port=5432 user=admin"}, "PG_DSN", "libpq DSN"),
        ({"SCHEMA_REGISTRY_URL": "ftp://registry"}, "SCHEMA_REGISTRY_URL", "http:// or https:// URL"),
        ({"SCHEMA_REGISTRY_URL": "http://:8081"}, "SCHEMA_REGISTRY_URL", "http:// or https:// URL"),
        ({"KAFKA_BOOTSTRAP": "localhost"}, "KAFKA_BOOTSTRAP", "host:port"),
        ({"P_ORDER_HAS_SHIPMENT": "0.9"}, "P_ORDER_HAS_SHIPMENT", "<= P_ORDER_HAS_PAYMENT"),
        ({"TOPIC_PARTITIONS": "0"}, "TOPIC_PARTITIONS", "a whole number 1-10000"),
        ({"RANDOM_SEED": "x"}, "RANDOM_SEED", "a whole number"),
        ({"TOPIC_ORDERS": "has space"}, "TOPIC_ORDERS", "Kafka topic name"),
        ({"TOPIC_PAYMENTS": "orders.v1"}, "TOPIC_*", "seven distinct topic names"),
        ({"WEB_PORT": "70000"}, "WEB_PORT", "a port number"),
    ],
)
def test_a_bad_value_names_the_variable_the_value_and_what_is_accepted(
    environ: dict[str, str], variable: str, accepts: str
) -> None:
    with pytest.raises(SettingsError) as caught:
        load_settings(environ)
    message = str(caught.value)
    assert caught.value.variable == variable
    assert accepts in message
    assert "\n" not in message
    value = next(iter(environ.values())) if variable != "TOPIC_*" else "orders.v1"
    if variable != "PG_DSN":
        assert value in message


def test_secrets_never_appear_in_what_is_shown() -> None:
    settings = load_settings(
        {
            "PG_DSN": "host=db dbname=demo user=admin password=s3cret-pw",
            "SCHEMA_REGISTRY_URL": "https://robot:t0ken@registry:8081",
        }
    )
    shown = settings.display()
    assert set(shown) == {name.upper() for name in Settings.model_fields}
    text = repr(shown) + repr(settings) + str(settings)
    assert "s3cret-pw" not in text
    assert "t0ken" not in text
    assert "password=***" in shown["PG_DSN"]
    assert shown["SCHEMA_REGISTRY_URL"] == "https://***@registry:8081"


@pytest.mark.parametrize(
    "environ",
    [
        {"PG_DSN": "host=db dbname=demo password='s3cret pw' bogus"},
        {"SCHEMA_REGISTRY_URL": "http://robot:s3cret@registry:notaport"},
    ],
)
def test_secrets_never_appear_in_errors(environ: dict[str, str]) -> None:
    with pytest.raises(SettingsError) as caught:
        load_settings(environ)
    assert "s3cret" not in str(caught.value)


def test_size_bounds_are_the_seeds() -> None:
    from app.reference.sizes import MAX_PRODUCTS, MAX_SUPPLIERS, MAX_USERS, MAX_WAREHOUSES

    assert load_settings({"N_USERS": str(MAX_USERS), "N_PRODUCTS": str(MAX_PRODUCTS)}).n_users == MAX_USERS
    for variable, bound in [
        ("N_USERS", MAX_USERS),
        ("N_PRODUCTS", MAX_PRODUCTS),
        ("N_WAREHOUSES", MAX_WAREHOUSES),
        ("N_SUPPLIERS", MAX_SUPPLIERS),
    ]:
        assert getattr(load_settings({variable: str(bound)}), variable.lower()) == bound
        with pytest.raises(SettingsError, match=variable):
            load_settings({variable: str(bound + 1)})
        with pytest.raises(SettingsError, match=variable):
            load_settings({variable: "0"})


def test_web_host_auto_is_this_machine_s_address() -> None:
    import socket

    from app.main import advertised_host

    assert advertised_host("worker-3.example") == "worker-3.example"
    assert advertised_host("auto") == socket.gethostbyname(socket.gethostname())

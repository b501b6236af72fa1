"""docker-compose.yml, Dockerfile and .dockerignore, checked by reading them: no Docker, no network."""

from __future__ import annotations

import json
import re
import shlex
from functools import cache
from typing import Any
from urllib.parse import urlsplit

import pytest
import yaml  # type: ignore[import-untyped]  # no types-PyYAML in the test deps
from psycopg2.extensions import parse_dsn
from pydantic import SecretStr
from pydantic_core import PydanticUndefined

from app.settings import Settings, load_settings
from tests.unit.project.support import (
    COMPOSE_FILE,
    ROOT,
    compose,
    compose_default,
    datagen_environment,
    published_ports,
    published_ranges,
    service,
)

DOCKERFILE = ROOT / "Dockerfile"
DOCKERIGNORE = ROOT / ".dockerignore"

#: The settings whose compose default legitimately differs from the app's: they name the compose services
#: or the container's own paths and addresses. Each is checked on its own below.
CONTAINER_SETTINGS = {"KAFKA_BOOTSTRAP", "SCHEMA_REGISTRY_URL", "PG_DSN", "WEB_BIND", "WEB_HOST", "DATA_DIR"}

EXPECTED_PROFILES = {
    "kafka": ["core"],
    "schema-registry": ["core"],
    "postgres": ["core"],
    "datagen": ["datagen"],
    "prometheus": ["monitoring"],
    "grafana": ["monitoring"],
}
EXPECTED_PORTS = {
    "kafka": 9092,
    "schema-registry": 8081,
    "postgres": 5432,
    "datagen": 6066,
    "prometheus": 9090,
    "grafana": 3000,
}
EXPECTED_IMAGES = {
    "kafka": "apache/kafka",
    "schema-registry": "confluentinc/cp-schema-registry",
    "postgres": "postgres",
    "prometheus": "prom/prometheus",
    "grafana": "grafana/grafana",
}


# --- Reading the files ------------------------------------------------------------------------------


def app_default(name: str) -> str:
    """The app's default for variable ``name`` written as an environment value ('' for unset)."""
    field = Settings.model_fields[name.lower()]
    assert field.default is not PydanticUndefined, f"{name} has no default in Settings"
    value = field.default
    if isinstance(value, SecretStr):
        value = value.get_secret_value()
    if value is None:
        return ""
    if isinstance(value, bool):
        return str(value).lower()
    return str(value)


@cache
def dockerfile_instructions() -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) for each instruction, continuation lines joined, comments dropped."""
    instructions = []
    pending = ""
    for line in DOCKERFILE.read_text(encoding="utf-8").splitlines():
        if line.strip().startswith("#"):
            continue
        stripped = line.rstrip()
        if stripped.endswith("\\"):
            pending += stripped[:-1]
            continue
        logical = (pending + line).strip()
        pending = ""
        if logical:
            keyword, _, arguments = logical.partition(" ")
            instructions.append((keyword.upper(), arguments.strip()))
    assert not pending, "the Dockerfile ends inside a continued line"
    return instructions


def dockerfile(keyword: str) -> list[str]:
    return [arguments for instruction, arguments in dockerfile_instructions() if instruction == keyword]


def dockerfile_env() -> dict[str, str]:
    env = {}
    for arguments in dockerfile("ENV"):
        for word in shlex.split(arguments):
            key, equals, value = word.partition("=")
            assert equals, f"ENV {arguments!r}: use the KEY=value form"
            env[key] = value
    return env


def healthcheck_command() -> list[str]:
    """The argv of the Dockerfile's ``HEALTHCHECK [options] CMD [...]``."""
    healthchecks = dockerfile("HEALTHCHECK")
    assert len(healthchecks) == 1, f"expected one HEALTHCHECK, found {len(healthchecks)}"
    _, cmd, command = healthchecks[0].partition("CMD ")
    assert cmd, f"HEALTHCHECK {healthchecks[0]!r} has no CMD"
    parsed = json.loads(command)
    assert isinstance(parsed, list), "HEALTHCHECK CMD must be in exec (JSON) form"
    assert parsed, "HEALTHCHECK CMD runs nothing"
    return parsed


# --- docker-compose.yml: the services ---------------------------------------------------------------


class _UniqueKeyLoader(yaml.SafeLoader):
    """PyYAML keeps the last of two equal keys; Compose refuses the file ("mapping key already defined")."""

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
        keys = [self.construct_object(key, deep=deep) for key, _ in node.value]
        repeated = sorted({str(key) for key in keys if keys.count(key) > 1})
        if repeated:
            raise yaml.constructor.ConstructorError(None, None, f"repeated keys {repeated}", node.start_mark)
        return super().construct_mapping(node, deep=deep)


def test_compose_file_has_no_repeated_key() -> None:
    yaml.load(COMPOSE_FILE.read_text(encoding="utf-8"), Loader=_UniqueKeyLoader)  # a SafeLoader


def test_compose_file_follows_the_compose_spec_with_its_services() -> None:
    assert "version" not in compose(), "the Compose spec has no version: key"
    assert set(compose()["services"]) == set(EXPECTED_PROFILES)


@pytest.mark.parametrize(("name", "profiles"), EXPECTED_PROFILES.items())
def test_service_profiles(name: str, profiles: list[str]) -> None:
    assert service(name).get("profiles") == profiles


@pytest.mark.parametrize(("name", "repository"), EXPECTED_IMAGES.items())
def test_third_party_images_are_pinned(name: str, repository: str) -> None:
    image = service(name).get("image", "")
    assert "build" not in service(name)
    image_repository, colon, tag = image.rpartition(":")
    assert colon, f"{name}: image {image!r} has no tag"
    assert "/" not in tag, f"{name}: image {image!r} has no tag"
    assert image_repository == repository
    assert tag != "latest", f"{name}: image {image!r} is not pinned"
    assert re.match(r"^v?\d+(\.\d+)*", tag), f"{name}: tag {tag!r} is not a version"


def test_datagen_is_built_from_the_repository() -> None:
    datagen = service("datagen")
    build = datagen.get("build")
    context = build if isinstance(build, str) else (build or {}).get("context")
    assert context == "."
    if isinstance(build, dict):
        assert build.get("dockerfile", "Dockerfile") == "Dockerfile"
    assert datagen.get("image") == "retail-datagen:latest"


@pytest.mark.parametrize("name", EXPECTED_PROFILES)
def test_every_service_has_a_healthcheck(name: str) -> None:
    healthcheck = service(name).get("healthcheck")
    assert isinstance(healthcheck, dict), f"{name} has no healthcheck"
    assert not healthcheck.get("disable"), f"{name}'s healthcheck is disabled"
    test = healthcheck.get("test")
    if name == "datagen" and test is None:
        # Only the timing is set: Docker runs the image's HEALTHCHECK.
        assert healthcheck_command()
        return
    assert isinstance(test, list), f"{name}'s healthcheck test must be a list"
    assert test[0] in ("CMD", "CMD-SHELL"), f"{name}'s healthcheck test: {test}"
    assert len(test) > 1, f"{name}'s healthcheck runs nothing: {test}"


@pytest.mark.parametrize(
    ("name", "needle"),
    [
        ("kafka", "/opt/kafka/bin/kafka-broker-api-versions.sh --bootstrap-server localhost:9092"),
        ("schema-registry", "curl"),
        ("schema-registry", "http://localhost:8081/subjects"),
        ("postgres", "pg_isready"),
        ("postgres", "-U admin -d demo"),
        ("prometheus", "http://localhost:9090/-/ready"),
        ("grafana", "http://localhost:3000/api/health"),
    ],
)
def test_healthcheck_commands(name: str, needle: str) -> None:
    assert needle in " ".join(service(name)["healthcheck"]["test"][1:])


@pytest.mark.parametrize(("name", "port"), EXPECTED_PORTS.items())
def test_published_ports(name: str, port: int) -> None:
    assert published_ports(name).get(port) == port, f"{name} does not publish {port}:{port}"


def test_kafka_runs_kraft_as_one_combined_node() -> None:
    environment = service("kafka")["environment"]
    assert environment["KAFKA_PROCESS_ROLES"] == "broker,controller"
    assert environment["KAFKA_CONTROLLER_QUORUM_VOTERS"] == f"{environment['KAFKA_NODE_ID']}@kafka:9093"
    assert set(environment["KAFKA_LISTENERS"].split(",")) == {"PLAINTEXT://:9092", "CONTROLLER://:9093"}
    assert environment["KAFKA_ADVERTISED_LISTENERS"] == "PLAINTEXT://kafka:9092"
    assert environment["KAFKA_CONTROLLER_LISTENER_NAMES"] == "CONTROLLER"
    assert "CONTROLLER:PLAINTEXT" in environment["KAFKA_LISTENER_SECURITY_PROTOCOL_MAP"].split(",")
    for single_replica in (
        "KAFKA_OFFSETS_TOPIC_REPLICATION_FACTOR",
        "KAFKA_TRANSACTION_STATE_LOG_REPLICATION_FACTOR",
        "KAFKA_TRANSACTION_STATE_LOG_MIN_ISR",
        "KAFKA_MIN_INSYNC_REPLICAS",
    ):
        assert str(environment[single_replica]) == "1", single_replica
    assert str(environment["KAFKA_GROUP_INITIAL_REBALANCE_DELAY_MS"]) == "0"


def test_schema_registry_waits_for_a_healthy_kafka() -> None:
    registry = service("schema-registry")
    assert registry["depends_on"]["kafka"]["condition"] == "service_healthy"
    assert registry["environment"]["SCHEMA_REGISTRY_KAFKASTORE_BOOTSTRAP_SERVERS"] == "PLAINTEXT://kafka:9092"
    assert registry["environment"]["SCHEMA_REGISTRY_LISTENERS"] == "http://0.0.0.0:8081"


def test_postgres_keeps_its_data_in_a_named_volume() -> None:
    volumes = service("postgres").get("volumes", [])
    named = [str(volume).split(":")[0] for volume in volumes if not str(volume).startswith((".", "/"))]
    assert named, "postgres has no named volume"
    assert set(named) <= set(compose().get("volumes") or {}), "postgres uses an undeclared volume"


# --- docker-compose.yml: datagen --------------------------------------------------------------------


def test_datagen_depends_on_exactly_these_conditions() -> None:
    depends_on = service("datagen")["depends_on"]
    assert {name: entry["condition"] for name, entry in depends_on.items()} == {
        "postgres": "service_healthy",
        "kafka": "service_healthy",
        "schema-registry": "service_started",
    }


def test_datagen_dependencies_are_optional_so_the_datagen_profile_runs_alone() -> None:
    # Without required: false, `docker compose --profile datagen up` rejects the file, since the
    # dependencies belong to the core profile and are then absent.
    for name, entry in service("datagen")["depends_on"].items():
        assert entry.get("required") is False, f"depends_on {name} must be required: false"
        assert "core" in service(name)["profiles"]


def test_datagen_environment_passes_every_setting() -> None:
    missing = {name.upper() for name in Settings.model_fields} - set(datagen_environment())
    assert not missing, f"settings not passed to datagen: {sorted(missing)}"


def test_datagen_environment_has_no_unknown_variable() -> None:
    unknown = set(datagen_environment()) - {name.upper() for name in Settings.model_fields}
    assert not unknown, f"variables Settings does not read: {sorted(unknown)}"


@pytest.mark.parametrize("name", sorted(name.upper() for name in Settings.model_fields))
def test_each_setting_is_a_pass_through_with_a_default(name: str) -> None:
    if name not in datagen_environment():
        pytest.fail(f"{name} is not in datagen's environment")
    compose_default(name)


@pytest.mark.parametrize(
    "name", sorted(name.upper() for name in Settings.model_fields if name.upper() not in CONTAINER_SETTINGS)
)
def test_compose_default_equals_the_app_default(name: str) -> None:
    if name not in datagen_environment():
        pytest.fail(f"{name} is not in datagen's environment")
    assert compose_default(name) == app_default(name)


def test_compose_defaults_are_valid_settings() -> None:
    environ = {name: compose_default(name) for name in datagen_environment()}
    settings = load_settings(environ)
    for name in Settings.model_fields:
        if name.upper() not in CONTAINER_SETTINGS:
            assert getattr(settings, name) == getattr(Settings(), name), name


def test_connection_defaults_name_the_compose_services() -> None:
    kafka_host, _, kafka_port = compose_default("KAFKA_BOOTSTRAP").rpartition(":")
    assert (kafka_host, kafka_port) == ("kafka", "9092")
    assert f"//{kafka_host}:{kafka_port}" in service("kafka")["environment"]["KAFKA_ADVERTISED_LISTENERS"]

    registry = urlsplit(compose_default("SCHEMA_REGISTRY_URL"))
    assert (registry.scheme, registry.hostname, registry.port) == ("http", "schema-registry", 8081)
    assert registry.path in ("", "/"), "Confluent's registry serves its API at the root"

    dsn = parse_dsn(compose_default("PG_DSN"))
    postgres = service("postgres")["environment"]
    assert (dsn["host"], dsn["port"]) == ("postgres", "5432")
    assert dsn["dbname"] == postgres["POSTGRES_DB"]
    assert dsn["user"] == postgres["POSTGRES_USER"]
    assert dsn["password"] == postgres["POSTGRES_PASSWORD"]

    for host in (kafka_host, registry.hostname, dsn["host"]):
        assert host in compose()["services"], f"{host} is not a compose service"


def test_the_worker_listens_on_every_interface_and_is_reached_by_its_own_address() -> None:
    assert compose_default("WEB_BIND") == "0.0.0.0"
    # Scaled containers share the service name: each advertises its own address for Faust's routed views.
    assert compose_default("WEB_HOST") == "auto"
    assert int(compose_default("WEB_PORT")) in published_ports("datagen")


def test_three_scaled_workers_each_get_a_host_port() -> None:
    published_ports("datagen")
    assert len(published_ranges["datagen"]) >= 3


def test_data_dir_is_the_directory_the_image_prepares() -> None:
    assert compose_default("DATA_DIR") == "/var/lib/datagen"
    assert dockerfile_env().get("DATA_DIR") == "/var/lib/datagen"


# --- Dockerfile and .dockerignore -------------------------------------------------------------------


def test_dockerfile_base_image() -> None:
    assert dockerfile("FROM") == ["python:3.11-slim"]


def test_dockerfile_installs_the_project() -> None:
    assert any("pip install --no-cache-dir ." in run for run in dockerfile("RUN"))


def test_dockerfile_runs_as_a_non_root_user() -> None:
    users = dockerfile("USER")
    assert users, "no USER: the worker would run as root"
    user = users[-1].split(":")[0]
    assert user not in ("", "root", "0")


def test_dockerfile_container_settings() -> None:
    env = dockerfile_env()
    assert env.get("WEB_BIND") == "0.0.0.0"
    assert "6066" in " ".join(dockerfile("EXPOSE")).split()


def test_dockerfile_healthcheck_checks_postgres_and_the_registry() -> None:
    command = healthcheck_command()
    assert command[:2] == ["python", "-c"]
    assert len(command) == 3
    code = command[2]
    compile(code, "HEALTHCHECK", "exec")  # a SyntaxError fails the test
    assert "psycopg2.connect" in code
    assert "select 1" in code
    assert "/subjects" in code
    assert "connect_timeout" in code


def test_dockerfile_entrypoint_is_the_worker() -> None:
    entrypoints = dockerfile("ENTRYPOINT")
    assert len(entrypoints) == 1
    assert json.loads(entrypoints[0]) == ["faust", "-A", "app", "worker", "-l", "info"]


@pytest.mark.parametrize("pattern", [".venv", ".stack", ".git", ".faust-data", "**/__pycache__"])
def test_dockerignore_excludes(pattern: str) -> None:
    lines = [line.strip() for line in DOCKERIGNORE.read_text(encoding="utf-8").splitlines()]
    assert pattern in lines

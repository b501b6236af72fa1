"""Shared by the tests of the whole repository's files: docker-compose.yml read as Compose reads it (services,
variables with their defaults, published ports).

Not a test module: pytest does not collect it.
"""

from __future__ import annotations

import re
from functools import cache
from pathlib import Path
from typing import Any

import yaml  # type: ignore[import-untyped]  # no types-PyYAML in the test deps

ROOT = Path(__file__).resolve().parents[3]
COMPOSE_FILE = ROOT / "docker-compose.yml"

_VARIABLE = re.compile(r"\$\{(?P<name>[A-Za-z_][A-Za-z0-9_]*)(?::?-(?P<default>[^}]*))?\}")


@cache
def compose() -> dict[str, Any]:
    loaded = yaml.safe_load(COMPOSE_FILE.read_text(encoding="utf-8"))
    assert isinstance(loaded, dict), "docker-compose.yml is not a mapping"
    return loaded


def service(name: str) -> dict[str, Any]:
    services = compose()["services"]
    assert name in services, f"no service {name!r} in docker-compose.yml"
    return services[name]


def interpolate(text: str) -> str:
    """``text`` as Compose reads it with no variable set: ``${NAME:-default}`` becomes ``default``."""
    return _VARIABLE.sub(lambda match: match.group("default") or "", str(text)).replace("$$", "$")


def datagen_environment() -> dict[str, str]:
    environment = service("datagen").get("environment")
    assert isinstance(environment, dict), "datagen's environment must be a NAME: value mapping"
    return environment


def compose_default(name: str) -> str:
    """The default of ``NAME: ${NAME:-default}`` in datagen's environment; fails on any other form."""
    value = datagen_environment()[name]
    assert isinstance(value, str), f"{name}: {value!r} is not a string (quote it)"
    match = re.fullmatch(r"\$\{(?P<name>[A-Z0-9_]+):-(?P<default>[^}]*)\}", value)
    assert match, f"{name}: {value!r} is not of the form ${{{name}:-default}}"
    assert match.group("name") == name, f"{name} passes through the variable {match.group('name')}"
    return match.group("default")


#: Service name -> the host ports its last published port may take (filled by ``published_ports``).
published_ranges: dict[str, range] = {}


def published_ports(name: str) -> dict[int, int]:
    """Container port -> host port (the first of a range), for every port that service ``name`` publishes."""
    published = {}
    for port in service(name).get("ports", []):
        if isinstance(port, dict):
            host, container = port["published"], port["target"]
        else:
            text = interpolate(port).split("/")[0]
            *_, host, container = text.split(":")
        first, _, last = interpolate(str(host)).partition("-")  # a range: one host port per scaled container
        published[int(interpolate(str(container)))] = int(first)
        published_ranges[name] = range(int(first), int(last or first) + 1)
    return published

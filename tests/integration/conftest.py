"""Fixtures shared by the integration tests."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import psycopg2
import pytest

from app.settings import Settings, load_settings, mask_dsn
from db.throwaway import create_database, drop_database, dsn_for
from tests.support import PG_DSN


@pytest.fixture
def pg_database_factory() -> Iterator[Callable[[], str]]:
    """Makes empty throwaway databases on the stack's Postgres (a DSN each), all dropped after the test.

    Postgres not answering fails the test: it is part of the stack these tests run against.
    """
    made: list[str] = []

    def make() -> str:
        try:
            name = create_database(PG_DSN, "seedtest")
        except psycopg2.OperationalError as error:
            pytest.fail(f"Postgres at {mask_dsn(PG_DSN)} does not answer: {error}")
        made.append(name)
        return dsn_for(PG_DSN, name)

    yield make
    for name in made:
        drop_database(PG_DSN, name)


@pytest.fixture
def seed_settings_factory(pg_database_factory: Callable[[], str]) -> Callable[..., Settings]:
    """Settings for a seed into a new throwaway database (or ``dsn``), small sizes unless told otherwise."""

    def make(dsn: str | None = None, **variables: str) -> Settings:
        environ = {
            "PG_DSN": dsn or pg_database_factory(),
            "N_USERS": "300",
            "N_PRODUCTS": "80",
            "N_WAREHOUSES": "3",
            "N_SUPPLIERS": "12",
            "RANDOM_SEED": "7",
            **variables,
        }
        return load_settings(environ)

    return make

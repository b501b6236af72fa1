"""Throwaway databases for tests and benchmarks: made under a unique name beside the configured one, then dropped."""

from __future__ import annotations

import secrets
from collections.abc import Iterator
from contextlib import closing, contextmanager

import psycopg2
from psycopg2 import sql
from psycopg2.extensions import make_dsn, parse_dsn


def dsn_for(dsn: str, dbname: str) -> str:
    """The same connection parameters, to another database."""
    return make_dsn(**{**parse_dsn(dsn), "dbname": dbname})


def create_database(dsn: str, prefix: str) -> str:
    """Create an empty database named ``<prefix>_<random hex>`` on the server of ``dsn``; its name."""
    name = f"{prefix}_{secrets.token_hex(6)}"
    _run_outside_transaction(dsn, sql.SQL("create database {}").format(sql.Identifier(name)))
    return name


def drop_database(dsn: str, name: str) -> None:
    """Drop the database, ending any session still connected to it."""
    _run_outside_transaction(dsn, sql.SQL("drop database if exists {} with (force)").format(sql.Identifier(name)))


@contextmanager
def throwaway_database(dsn: str, prefix: str) -> Iterator[str]:
    """A DSN to a new empty database, dropped on exit."""
    name = create_database(dsn, prefix)
    try:
        yield dsn_for(dsn, name)
    finally:
        drop_database(dsn, name)


def _run_outside_transaction(dsn: str, statement: sql.Composable) -> None:
    with closing(psycopg2.connect(dsn, application_name="retail-datagen throwaway")) as conn:
        conn.autocommit = True  # CREATE/DROP DATABASE cannot run in a transaction
        with conn.cursor() as cursor:
            cursor.execute(statement)

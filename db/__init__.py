"""Postgres: DDL, seeding, repositories (aiopg) and the inventory mirror."""

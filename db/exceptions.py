"""Errors of the Postgres side."""

from app.exceptions import DatagenError


class SeedError(DatagenError):
    """The reference data could not be seeded; the message names the database (password masked) and the step."""

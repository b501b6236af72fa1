"""Errors of the generation core: a configuration or a catalogue it cannot generate from."""

from app.exceptions import DatagenError


class GenerationError(DatagenError):
    """The generation core was given a value it cannot work with."""


class CatalogError(GenerationError):
    """The reference data handed to the generator is empty or inconsistent."""

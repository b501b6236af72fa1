"""Errors of the inventory fold: a change or a stored state it cannot work with."""

from app.exceptions import DatagenError


class InventoryError(DatagenError):
    """A stock state or change the fold cannot work with: a bug at the caller, not bad data on a topic."""

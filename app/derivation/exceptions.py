"""Errors of the derivations: a configuration they cannot decide with."""

from app.exceptions import DatagenError


class DerivationError(DatagenError):
    """The derivation core was given a knob or reference data it cannot work with."""

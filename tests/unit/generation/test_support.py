"""The generation tests' own yardstick: the sampling tolerance of ``support.py``."""

from __future__ import annotations

from tests.unit.generation.support import Z, tolerance


def test_tolerance_is_z_standard_errors() -> None:
    assert tolerance(0.5, 10_000) == Z * 0.005
    assert tolerance(0.0, 100) == 0.0
    assert tolerance(1.0, 100) == 0.0

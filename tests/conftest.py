"""Factory fixtures shared by every test: each returns a function that builds one thing with the defaults, so a test
says only what differs from them.

    def test_a_small_catalogue(catalog_factory: Callable[..., Catalog]) -> None:
        catalog = catalog_factory(products=3)

The factories hold no state, so they are session-scoped: a fixture of any scope may use them. The builders behind
them live in the support modules (``tests/unit/<package>/support.py``), where a helper function may import them too.
``tests/integration/conftest.py`` adds the stack's own (throwaway databases, seed settings).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping

import pytest

from app.generation import Catalog, EventGenerator
from app.settings import Settings, load_settings
from tests.unit.generation.support import make_catalog, make_generator
from tests.unit.verify.support import SyntheticRun, settings_for


@pytest.fixture(scope="session")
def settings_factory() -> Callable[..., Settings]:
    """Settings read as the worker reads its environment, every variable not given at its default:
    ``settings_factory(TARGET_EPS="500")``, or ``settings_factory({"TARGET_EPS": "500"})`` for a mapping; both
    together, the keywords win. A bad value raises SettingsError, as ``load_settings`` does."""

    def make(environ: Mapping[str, str] | None = None, /, **variables: str) -> Settings:
        return load_settings({**(environ or {}), **variables})

    return make


@pytest.fixture(scope="session")
def catalog_factory() -> Callable[..., Catalog]:
    """A seeded catalogue with skewed weights (``support.make_catalog``): ``catalog_factory(users=300, products=40)``;
    also ``warehouses`` and ``seed``."""

    def make(**overrides: int) -> Catalog:
        return make_catalog(**overrides)

    return make


@pytest.fixture(scope="session")
def generator_factory() -> Callable[..., EventGenerator]:
    """An event generator over ``catalog_factory()``'s default catalogue unless ``catalog=`` is given, seeded with
    ``seed`` (7), its GenerationConfig the default Settings' with the given knobs changed:
    ``generator_factory(seed=11, p_duplicate=0.0)``."""

    def make(seed: int = 7, catalog: Catalog | None = None, **knobs: object) -> EventGenerator:
        return make_generator(seed, catalog, **knobs)

    return make


@pytest.fixture(scope="session")
def synthetic_run_factory() -> Callable[..., SyntheticRun]:
    """A synthetic conforming run for the verify checks (``tests/unit/verify/support.py``), drawn from the verify
    tests' settings with the given variables changed: ``synthetic_run_factory(AGENTS_ENABLED="false", events=0)``;
    or from given Settings: ``synthetic_run_factory(settings, events=0)``. ``seed`` 5 and ``events`` 8,000 unless
    told."""

    def make(
        settings: Settings | None = None, /, *, seed: int = 5, events: int = 8_000, **variables: str
    ) -> SyntheticRun:
        if settings is not None and variables:
            raise TypeError("give Settings or variables to change, not both")
        return SyntheticRun(settings if settings is not None else settings_for(**variables), seed=seed, events=events)

    return make

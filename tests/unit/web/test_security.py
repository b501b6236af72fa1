"""What the worker's web server serves: Faust's views of raw tables and routing only when asked, and every view of
the project read-only."""

from __future__ import annotations

import pytest
from faust.web import View

from app.main import create_app
from app.settings import load_settings

DSN = "host=127.0.0.1 dbname=demo user=admin password=admin"
WRITES = ("post", "put", "patch", "delete")


def _prefixes(**variables: str) -> set[str]:
    app = create_app(load_settings({"PG_DSN": DSN, **variables}))
    return {prefix for prefix, _ in app.web.blueprints._enabled}


def test_faust_s_table_and_router_views_are_off_by_default() -> None:
    assert not {"/table", "/router", "/graph"} & _prefixes()


def test_a_setting_turns_them_on() -> None:
    assert {"/table", "/router"} <= _prefixes(WEB_FAUST_VIEWS_ENABLED="true")


@pytest.mark.parametrize("mode", ["kafka", "postgres"])
def test_every_view_of_the_project_only_reads(mode: str) -> None:
    app = create_app(load_settings({"PG_DSN": DSN, "CANON_INVENTORY": mode}))
    views = {path: type(view) for path, view in app.web.views.items()}
    assert {"/", "/health", "/stats/", "/inventory/", "/inventory/{sku}/"} <= set(views), sorted(views)
    for path, view in views.items():
        assert issubclass(view, View), path
        written = [name for name in WRITES if getattr(view, name) is not getattr(View, name)]
        assert not written, f"{path} ({view.__name__}) answers {written}"

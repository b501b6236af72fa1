"""The README stays true: it shows both commands and documents every setting with its default."""

import re
from pathlib import Path

from app.settings import Settings, load_settings

README = (Path(__file__).resolve().parents[2] / "README.md").read_text(encoding="utf-8")


def _settings_table() -> dict[str, str]:
    rows = re.findall(r"^\| `([A-Z_]+)` \| ([^|]+) \|", README, flags=re.MULTILINE)
    return {name: default.strip() for name, default in rows}


def test_readme_shows_the_two_commands() -> None:
    assert "make run" in README
    assert "make test" in README


def test_every_setting_is_documented_once_with_its_default() -> None:
    table = _settings_table()
    assert set(table) == {name.upper() for name in Settings.model_fields}
    settings = load_settings({})
    defaults = {**settings.display(), "PG_DSN": settings.pg_dsn.get_secret_value()}  # the spec's public default
    for name, documented in table.items():
        actual = defaults[name]
        if actual == "":
            assert documented.startswith("unset"), name
        else:
            assert _same(documented.strip("`"), actual), (name, documented, actual)


def _same(documented: str, actual: str) -> bool:
    if documented == actual:
        return True
    try:
        return float(documented) == float(actual)
    except ValueError:
        return False

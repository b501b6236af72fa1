"""The docs stay true: the README is a short front door showing both commands, docs/settings.md documents every
setting with its default, and every relative link of the README and docs/ leads to a file (and heading) that exists."""

import re
from pathlib import Path

import pytest

from app.settings import Settings, load_settings

ROOT = Path(__file__).resolve().parents[3]
README_PATH = ROOT / "README.md"
DOCS = ROOT / "docs"
README = README_PATH.read_text(encoding="utf-8")
SETTINGS_DOC = (DOCS / "settings.md").read_text(encoding="utf-8")
MARKDOWN = [README_PATH, *sorted(DOCS.glob("*.md"))]

#: A markdown link or image: its target up to the first space (a title may follow) or closing parenthesis.
LINK = re.compile(r"!?\[[^\]]*\]\(\s*<?([^)\s>]+)>?[^)]*\)")
#: An explicit HTML anchor, as the docs use for paragraphs that have no heading.
HTML_ANCHOR = re.compile(r"""<a\s+(?:id|name)=["']([^"']+)["']""")


def _settings_table(text: str) -> dict[str, str]:
    rows = re.findall(r"^\| `([A-Z_]+)` \| ([^|]+) \|", text, flags=re.MULTILINE)
    return {name: default.strip() for name, default in rows}


def test_readme_shows_the_two_commands() -> None:
    assert "make run" in README
    assert "make test" in README


def test_readme_is_short() -> None:
    assert len(README.splitlines()) < 200


def test_the_full_settings_reference_lives_in_docs_only() -> None:
    assert _settings_table(README) == {}


def test_every_setting_is_documented_once_with_its_default() -> None:
    table = _settings_table(SETTINGS_DOC)
    rows = re.findall(r"^\| `([A-Z_]+)` \|", SETTINGS_DOC, flags=re.MULTILINE)
    assert len(rows) == len(set(rows)), "a setting is documented twice"
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


def _outside_code(text: str) -> str:
    """The text without fenced code blocks and inline code spans, where a bracket is not a link."""
    text = re.sub(r"^```.*?^```[^\n]*$", "", text, flags=re.MULTILINE | re.DOTALL)
    return re.sub(r"`[^`\n]*`", "", text)


def _anchors(path: Path) -> set[str]:
    """The anchors a page offers: GitHub's slug of each heading (numbered when repeated), and HTML anchors."""
    text = path.read_text(encoding="utf-8")
    anchors = set(HTML_ANCHOR.findall(text))
    seen: dict[str, int] = {}
    headings = re.findall(r"^#{1,6}\s+(.+?)\s*#*\s*$", re.sub(r"^```.*?^```", "", text, flags=re.M | re.S), re.M)
    for heading in headings:
        slug = re.sub(r"[^\w\- ]", "", heading.lower()).replace(" ", "-")
        count = seen.get(slug, 0)
        seen[slug] = count + 1
        anchors.add(slug if count == 0 else f"{slug}-{count}")
    return anchors


def _relative_links(path: Path) -> list[str]:
    targets = LINK.findall(_outside_code(path.read_text(encoding="utf-8")))
    return [target for target in targets if not re.match(r"^[a-z][a-z0-9+.-]*:", target, flags=re.IGNORECASE)]


def test_the_link_checker_sees_links() -> None:
    assert "docs/settings.md" in _relative_links(README_PATH)
    assert {"inventory.md#returns", "events.md#duplicates"} <= set(_relative_links(DOCS / "settings.md"))


@pytest.mark.parametrize("page", MARKDOWN, ids=lambda page: str(page.relative_to(ROOT)))
def test_every_relative_link_leads_somewhere(page: Path) -> None:
    broken = []
    for target in _relative_links(page):
        file_part, _, anchor = target.partition("#")
        destination = (page.parent / file_part).resolve() if file_part else page
        if not destination.exists():
            broken.append(f"{target}: no file {destination}")
        elif anchor and destination.suffix == ".md" and anchor not in _anchors(destination):
            broken.append(f"{target}: no heading or anchor #{anchor} in {destination.name}")
    assert not broken, broken

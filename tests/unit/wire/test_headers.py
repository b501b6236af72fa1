"""app.wire.headers and the stock requests topic's name: the names, byte for byte, and no module restating them."""

from __future__ import annotations

import ast
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

from agents import requests
from agents.generation import DUPLICATE as GENERATION_DUPLICATE
from app.dead_letters import dead_letter_headers
from app.metrics import agent_inputs
from app.settings import load_settings
from app.verify.expectations import Expectations
from app.verify.truth import generated_topics
from app.wire import headers, roles

#: The checkout: the first folder above this file that holds app/wire (so the file may move into a subfolder).
ROOT = next(folder for folder in Path(__file__).resolve().parents if (folder / "app" / "wire").is_dir())
#: Where no module may restate a header name, the stock requests topic's name or the requests role.
SCANNED = ("app", "agents", "db", "tables", "bench", "faults")
HOME = ROOT / "app" / "wire"
#: The names as they go on the wire, stated here independently of app.wire.headers.
WIRE_NAMES = {
    "BAD_RECORD_HEADER": "x-datagen-bad-record",
    "DUPLICATE_HEADER": "x-datagen-duplicate",
    "SHARD_HEADER": "x-datagen-shard",
    "SOURCE_HEADER": "x-datagen-source",
    "REQUEST_KIND_HEADER": "x-datagen-request",
    "DLQ_SOURCE_TOPIC_HEADER": "x-dlq-source-topic",
    "DLQ_SOURCE_PARTITION_HEADER": "x-dlq-source-partition",
    "DLQ_SOURCE_OFFSET_HEADER": "x-dlq-source-offset",
    "DLQ_ERROR_HEADER": "x-dlq-error",
}


# ----- the names


def test_the_header_names_are_the_wire_names() -> None:
    named = {name: value for name, value in vars(headers).items() if name.endswith("_HEADER")}
    assert named == WIRE_NAMES
    assert len(set(named.values())) == len(named)


def test_the_duplicate_header_and_the_dead_letter_headers_in_order() -> None:
    assert headers.DUPLICATE == ("x-datagen-duplicate", b"1")
    assert GENERATION_DUPLICATE is headers.DUPLICATE
    assert headers.DLQ_HEADERS == ("x-dlq-source-topic", "x-dlq-source-partition", "x-dlq-source-offset", "x-dlq-error")
    written = dead_letter_headers([(headers.BAD_RECORD_HEADER, b"undecodable")], "orders.v1", 3, 1234, "why")
    assert [name for name, _ in written] == ["x-datagen-bad-record", *headers.DLQ_HEADERS]


def test_the_requests_write_and_read_their_kind_header() -> None:
    assert requests.headers_of(requests.ORDER) == [("x-datagen-request", b"order")]
    assert requests.kind_of({"x-datagen-request": b"due"}) == requests.DUE
    assert requests.kind_of([("x-datagen-request", b"opening")]) == requests.OPENING
    assert requests.kind_of([]) == requests.CHANGE


# ----- the stock requests topic


def test_the_requests_topic_is_named_after_the_app() -> None:
    assert roles.requests_topic("retail-datagen") == "retail-datagen-stock-requests"
    assert roles.requests_topic("a.b_c") == "a.b_c-stock-requests"
    assert roles.REQUESTS == "requests"
    assert roles.REQUESTS not in roles.ROLES  # no setting names it: it follows APP_ID


def test_every_reader_of_the_requests_topic_names_it_alike() -> None:
    settings = load_settings({"APP_ID": "shop-7", "AGENTS_ENABLED": "true"})
    assert agent_inputs(settings)[-1] == "shop-7-stock-requests"
    assert "shop-7-stock-requests" in generated_topics(settings)
    assert Expectations.from_settings(settings).requests_topic == "shop-7-stock-requests"


def test_the_headers_and_roles_import_no_agent_and_no_io_library() -> None:
    probe = "import sys, app.wire.headers, app.wire.roles; print(' '.join(sorted(sys.modules)))"
    run = subprocess.run([sys.executable, "-c", probe], check=True, capture_output=True, text=True, cwd=ROOT)
    loaded = {name.split(".")[0] for name in run.stdout.split()}
    assert not loaded & {"agents", "faust", "confluent_kafka", "aiopg", "psycopg2", "fastavro", "aiohttp", "mode"}


# ----- no module restates them


def _docstrings(tree: ast.AST) -> set[int]:
    """The ids of the docstring nodes of ``tree``: prose may name a header."""
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Module | ast.ClassDef | ast.FunctionDef | ast.AsyncFunctionDef) and node.body:
            first = node.body[0]
            if isinstance(first, ast.Expr) and isinstance(first.value, ast.Constant):
                found.add(id(first.value))
    return found


def _restated(where: str, tree: ast.AST) -> list[str]:
    """Each string literal of ``tree`` (f-string parts too, docstrings not) that is a header name (``x-datagen...``,
    ``x-dlq-...``), the stock requests topic's name (``...-stock-requests``) or the requests role (``"requests"``)."""
    prose = _docstrings(tree)
    found = []
    for node in ast.walk(tree):
        if not (isinstance(node, ast.Constant) and isinstance(node.value, str)) or id(node) in prose:
            continue
        text = node.value
        if text.startswith(("x-datagen", "x-dlq-")):
            found.append(f"{where}:{node.lineno} restates header {text!r} (app.wire.headers has it)")
        elif text.endswith("-stock-requests"):
            found.append(f"{where}:{node.lineno} restates {text!r} (app.wire.roles.requests_topic makes it)")
        elif text == roles.REQUESTS:
            found.append(f"{where}:{node.lineno} restates the role {text!r} (app.wire.roles.REQUESTS)")
    return found


def _sources(tops: tuple[str, ...]) -> Iterator[tuple[Path, ast.AST]]:
    for top in tops:
        for path in sorted((ROOT / top).rglob("*.py")):
            yield path, ast.parse(path.read_text(encoding="utf-8"))


def test_no_module_outside_app_wire_restates_a_header_or_the_requests_topic() -> None:
    sources = [(path, tree) for path, tree in _sources(SCANNED) if HOME not in path.parents]
    assert ROOT / "agents" / "requests.py" in {path for path, _ in sources}  # the scan sees the modules
    found = [problem for path, tree in sources for problem in _restated(str(path.relative_to(ROOT)), tree)]
    assert not found, "\n".join(found)


def test_app_wire_states_each_once() -> None:
    found = [
        problem.split(" restates ", 1)[1]
        for path, tree in _sources(("app/wire",))
        for problem in _restated(path.name, tree)
    ]
    assert sorted(found) == sorted(set(found))
    assert len(found) == len(WIRE_NAMES) + 2  # the headers, the topic's suffix and the role


def test_the_scan_sees_a_planted_literal() -> None:
    source = (
        '"""The x-datagen-shard header, named in prose: fine."""\n'
        'SHARD = "x-datagen-shard"\n'
        'letter.headers.get("x-dlq-error")\n'
        'topic = f"{app_id}-stock-requests"\n'
        'other = app_id + "-stock-requests"\n'
        'ROLE = "requests"\n'
        'PROXY = "x-forwarded-for"\n'  # not a header of ours
        'LABEL = "stock requests"\n'  # words, not a name
        "def f():\n"
        '    """Returns the requests."""\n'
        '    return {"x-datagen-bad-record-kind": 1}\n'
    )
    found = _restated("x.py", ast.parse(source))
    assert sorted(int(problem.split()[0].split(":")[1]) for problem in found) == [2, 3, 4, 5, 6, 11]

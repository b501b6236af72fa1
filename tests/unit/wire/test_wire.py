"""app.wire: the framing round trip, the enum symbols against the .avsc files, and no module restating either."""

from __future__ import annotations

import ast
import json
import random
import struct
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from app.inventory import DELTA_SIGN
from app.settings import load_settings
from app.wire import roles
from app.wire.framing import HEADER_SIZE, MAGIC_BYTE, body, frame, header, schema_id
from schemas import EVENT_SCHEMAS, EVOLVED_SCHEMAS, SCHEMA_FILES, symbols

ROOT = Path(__file__).resolve().parents[3]
SCHEMAS = ROOT / "schemas"
#: Where no module may restate a wire fact (app/wire/ is their home).
SCANNED = ("app", "agents", "db", "tables")
HOME = ROOT / "app" / "wire"
IO_LIBRARIES = {"faust", "confluent_kafka", "aiopg", "psycopg2", "fastavro", "aiohttp", "pydantic", "httpx", "mode"}


# ----- framing


@pytest.mark.parametrize("writer_id", [0, 1, 255, 256, 65_537, 2**31 - 1, 2**32 - 1])
def test_a_framed_body_gives_back_its_schema_id_and_body(writer_id: int) -> None:
    avro = random.Random(writer_id).randbytes(17)
    framed = frame(writer_id, avro)
    assert framed == struct.pack(">bI", 0, writer_id) + avro  # the Confluent layout, stated independently
    assert (framed[0], len(header(writer_id)), HEADER_SIZE) == (MAGIC_BYTE, 5, 5)
    assert framed[:HEADER_SIZE] == header(writer_id)
    assert (schema_id(framed), body(framed)) == (writer_id, avro)


def test_an_empty_body_and_a_bare_header_round_trip() -> None:
    assert frame(7, b"") == header(7)
    assert (schema_id(header(7)), body(header(7))) == (7, b"")


@pytest.mark.parametrize("writer_id", [-1, 2**32])
def test_a_schema_id_outside_four_bytes_is_refused(writer_id: int) -> None:
    with pytest.raises(OverflowError):
        frame(writer_id, b"\x02")


# ----- symbols


def _enum(file: str, name: str) -> tuple[str, ...]:
    """The symbols of enum ``name`` in ``schemas/<file>``, read here with json alone."""

    def walk(node: Any) -> Iterator[dict[str, Any]]:
        if isinstance(node, dict):
            if node.get("type") == "enum":
                yield node
            for item in node.values():
                yield from walk(item)
        elif isinstance(node, list):
            for item in node:
                yield from walk(item)

    found = [node for node in walk(json.loads((SCHEMAS / file).read_text())) if node["name"] == name]
    assert len(found) == 1, f"{file}: {len(found)} enums named {name}"
    return tuple(found[0]["symbols"])


def test_the_symbols_are_the_enums_of_the_avsc_files() -> None:
    assert _enum("inventory_change.avsc", "ChangeType") == symbols.CHANGE_TYPES
    assert _enum("payment.avsc", "PaymentMethod") == symbols.PAYMENT_METHODS
    assert _enum("payment.avsc", "PaymentStatus") == symbols.PAYMENT_STATUSES
    assert _enum("customer_interaction.avsc", "InteractionType") == symbols.INTERACTION_TYPES
    assert _enum("customer_interaction.v2.avsc", "InteractionType") == symbols.INTERACTION_TYPES


def test_each_named_symbol_is_its_own_name_and_in_its_enum() -> None:
    named = {
        symbols.CHANGE_TYPES: ("RESTOCK", "SALE", "DAMAGE", "RETURN"),
        symbols.PAYMENT_METHODS: ("CARD", "APPLE_PAY", "PAYPAL"),
        symbols.PAYMENT_STATUSES: ("AUTHORIZED", "CAPTURED", "DECLINED"),
        symbols.INTERACTION_TYPES: ("PAGE_VIEW", "SEARCH", "CART_ADD"),
    }
    for enum, names in named.items():
        for name in names:
            assert getattr(symbols, name) == name
            assert name in enum


def test_every_change_type_has_a_sign() -> None:
    assert set(DELTA_SIGN) == set(symbols.CHANGE_TYPES)


def test_a_schema_that_lost_a_named_symbol_fails_at_import() -> None:
    probe = (
        "import schemas\n"
        "load = schemas.load_schema\n"
        "schemas.load_schema = lambda role, version=1: load(role, version).replace('\"DECLINED\"', '\"VOID\"')\n"
        "import schemas.symbols\n"
    )
    run = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, cwd=ROOT)
    assert run.returncode != 0
    assert "SchemaSymbolError" in run.stderr
    assert "lost DECLINED from enum PaymentStatus" in run.stderr


def test_a_schema_without_the_enum_is_named() -> None:
    with pytest.raises(symbols.SchemaSymbolError, match=r"orders schema .* has no enum ChangeType"):
        symbols.enum_symbols(roles.ORDERS, "ChangeType")


# ----- roles


def test_the_roles_are_the_settings_and_the_schemas_keys() -> None:
    assert tuple(load_settings({}).topics()) == roles.ROLES
    assert set(SCHEMA_FILES) == set(roles.ROLES) - {roles.DEAD_LETTER}
    assert set(EVENT_SCHEMAS) == set(roles.GENERATED) | set(roles.DERIVED)
    assert set(EVOLVED_SCHEMAS) <= set(roles.GENERATED)
    assert len(set(roles.ROLES)) == len(roles.ROLES)


def test_the_wire_imports_no_io_library_and_may_be_imported_after_the_schemas() -> None:
    probe = "import sys, schemas, schemas.symbols, app.wire.framing; print(' '.join(sorted(sys.modules)))"
    run = subprocess.run([sys.executable, "-c", probe], check=True, capture_output=True, text=True, cwd=ROOT)
    loaded = {name.split(".")[0] for name in run.stdout.split()}
    assert not loaded & IO_LIBRARIES


# ----- no module restates a wire fact


def _sources() -> Iterator[tuple[str, ast.AST]]:
    for top in SCANNED:
        for path in sorted((ROOT / top).rglob("*.py")):
            if HOME not in path.parents:
                yield str(path.relative_to(ROOT)), ast.parse(path.read_text(encoding="utf-8"))


def _bindings(node: ast.AST) -> Iterator[tuple[str, ast.expr]]:
    """(name, value) of each plain name an assignment binds, unpacked tuples included."""
    if isinstance(node, ast.Assign):
        pairs = [(target, node.value) for target in node.targets]
    elif isinstance(node, ast.AnnAssign) and node.value is not None:
        pairs = [(node.target, node.value)]
    else:
        return
    for target, value in pairs:
        if isinstance(target, ast.Name):
            yield target.id, value
        elif isinstance(target, ast.Tuple) and isinstance(value, ast.Tuple) and len(target.elts) == len(value.elts):
            for name, item in zip(target.elts, value.elts, strict=True):
                if isinstance(name, ast.Name):
                    yield name.id, item


def _single_name(node: ast.AST) -> bool:
    """Whether ``node`` binds one plain name (a tuple unpacked may hold a label that is spelt like a role)."""
    return isinstance(node, ast.Assign) and len(node.targets) == 1 and isinstance(node.targets[0], ast.Name)


def _literal(node: ast.expr) -> str | None:
    return node.value if isinstance(node, ast.Constant) and isinstance(node.value, str) else None


def _restated(where: str, tree: ast.AST) -> list[str]:
    """What ``tree`` restates: MAGIC_BYTE or HEADER_SIZE, a name bound to its own enum symbol or role, a literal
    tuple, list or set of symbols of one enum, or one of the names of every symbol of an enum."""
    enums = (symbols.CHANGE_TYPES, symbols.PAYMENT_METHODS, symbols.PAYMENT_STATUSES, symbols.INTERACTION_TYPES)
    every_symbol = {symbol for enum in enums for symbol in enum}
    role_names = {role.upper(): role for role in roles.ROLES}
    found = []
    for node in ast.walk(tree):
        line = f"{where}:{getattr(node, 'lineno', '?')}"
        for name, value in _bindings(node):
            literal = _literal(value)
            if name in {"MAGIC_BYTE", "HEADER_SIZE"}:
                found.append(f"{line} defines {name} (app.wire.framing has it)")
            elif name in every_symbol and literal == name:
                found.append(f"{line} defines {name} = {literal!r} (schemas.symbols has it)")
            elif name in role_names and literal == role_names[name] and _single_name(node):
                found.append(f"{line} defines {name} = {literal!r} (app.wire.roles has it)")
        if isinstance(node, ast.Tuple | ast.List | ast.Set) and len(node.elts) >= 2:
            every_literal = all(_literal(item) is not None for item in node.elts)
            items = {literal for item in node.elts if (literal := _literal(item)) is not None}
            if every_literal and any(items <= set(enum) for enum in enums):
                found.append(f"{line} writes out enum symbols {sorted(items)} (schemas.symbols has them)")
            names = {item.id if isinstance(item, ast.Name) else None for item in node.elts}
            if any(names == set(enum) for enum in enums):  # some of them are a choice; all of them, the enum
                found.append(f"{line} lists a whole enum {sorted(map(str, names))} (schemas.symbols has it)")
    return found


def test_no_module_outside_app_wire_restates_a_wire_fact() -> None:
    found = [problem for where, tree in _sources() for problem in _restated(where, tree)]
    assert not found, "\n".join(found)


def test_the_scan_sees_a_restated_fact() -> None:
    source = (
        "MAGIC_BYTE = 0\n"
        "HEADER_SIZE: int = 5\n"
        'CHANGE_TYPES = ("RESTOCK", "SALE", "DAMAGE", "RETURN")\n'
        'if kind in ["RESTOCK", "DAMAGE"]: pass\n'
        'CARD, PAYPAL = "CARD", "PAYPAL"\n'
        'TRUTH = "truth"\n'
        'MIX = ("orders", "RESTOCK")\n'  # not all of one enum: not a restated enum
        "TYPES = (RESTOCK, SALE, DAMAGE, RETURN)\n"
        "ACCEPTED = (AUTHORIZED, CAPTURED)\n"  # a choice among the symbols, named: fine
    )
    found = _restated("x.py", ast.parse(source))
    assert sorted(problem.split()[0] for problem in found) == [f"x.py:{n}" for n in (1, 2, 3, 4, 5, 5, 5, 6, 8)]

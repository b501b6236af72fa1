"""Avro bodies written by code compiled for one record schema: fastavro's bytes at a third of its cost per record.

At 50,000 records a second, fastavro's ``schemaless_writer`` costs 6 to 7 us a record on these machines, most
of it per call and per field rather than per byte: it resolves the schema, makes an encoder, and resolves each
nullable field's union branch by testing the value against every branch. Our five schemas are fixed and use
few types, so ``compile_writer`` turns a record schema into one Python function that writes the fields in
order, with the varints of small numbers, string lengths and enum symbols looked up in tables and those of
other numbers memoised. It handles exactly these values:

- ``string``: a ``str`` (shorter than 16,384 UTF-8 bytes);
- ``long``, ``int`` and ``timestamp-millis``: an ``int`` within the 64-bit range;
- an ``enum``: one of its symbols;
- a union ``["null", X]`` of one of those: None, or a value of X as above.

Any other value raises one of ``UNHANDLED`` (a ``KeyError`` for a missing field or an unknown symbol, an
``IndexError`` for a long string, a ``TypeError`` or ``AttributeError`` for a value of another type, ...),
and the caller then writes that record with fastavro, which writes it or names what is wrong with it.
A schema with any other type raises ``UnsupportedSchema`` when compiled. ``tests/unit/app/test_avro_writer.py``
checks the bytes against fastavro's for generated records, edge values and the values it hands back.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

#: What a compiled writer raises for a value it does not handle; the caller writes that record with fastavro.
UNHANDLED = (KeyError, IndexError, TypeError, AttributeError, ValueError, OverflowError)

#: A compiled writer: the record's Avro body after ``prefix`` (the Confluent header), as bytes.
Writer = Callable[[Mapping[str, Any], bytes], bytes]

_TABLE_SIZE = 1 << 14
_LONG_MIN, _LONG_MAX = -(1 << 63), (1 << 63) - 1
#: How many varints of numbers beyond the table are remembered (about 6 MB); the memo starts over when full.
_MEMO_SIZE = 1 << 16
_NULL_BRANCH, _VALUE_BRANCH = b"\x00", b"\x02"


class UnsupportedSchema(ValueError):
    """The schema uses a type ``compile_writer`` does not write."""


def _varint(unsigned: int) -> bytes:
    """The base-128 varint of ``unsigned`` >= 0, least significant group first."""
    out = bytearray()
    while unsigned >= 0x80:
        out.append((unsigned & 0x7F) | 0x80)
        unsigned >>= 7
    out.append(unsigned)
    return bytes(out)


#: The Avro long (zigzag varint) of n, for 0 <= n < _TABLE_SIZE: string lengths, small counts and ids.
_SMALL_LONGS = tuple(_varint(n << 1) for n in range(_TABLE_SIZE))
#: The Avro longs of numbers outside the table that were written lately.
_MEMO: dict[int, bytes] = {}


def avro_long(n: int) -> bytes:
    """The Avro long of ``n``: its zigzag varint (remembered in the memo); TypeError or OverflowError otherwise."""
    if type(n) is not int:  # exactly int: a bool or a float is fastavro's to judge
        msg = f"expected an int, got {type(n).__name__}"
        raise TypeError(msg)
    if not _LONG_MIN <= n <= _LONG_MAX:
        msg = f"{n} is outside the range of an Avro long"
        raise OverflowError(msg)
    encoded = _SMALL_LONGS[n] if 0 <= n < _TABLE_SIZE else _varint((n << 1) ^ (n >> 63))
    if len(_MEMO) >= _MEMO_SIZE:
        _MEMO.clear()
    _MEMO[n] = encoded
    return encoded


def compile_writer(schema: Mapping[str, Any]) -> Writer:
    """A writer of records of ``schema``, a parsed .avsc record; UnsupportedSchema if it uses other types."""
    if schema.get("type") != "record":
        msg = f"schema {schema.get('name')!r}: expected a record schema"
        raise UnsupportedSchema(msg)
    lines: list[str] = []
    parts: list[str] = ["prefix"]
    names: dict[str, object] = {
        "SMALL": _SMALL_LONGS,
        "MEMO": _MEMO,
        "LONG": avro_long,
        "NULL": _NULL_BRANCH,
        "VALUE": _VALUE_BRANCH,
    }
    for index, field in enumerate(schema["fields"]):
        name, kind = repr(field["name"]), _kind(schema, field)
        if kind == "string":
            lines.append(f"    s{index} = v[{name}].encode()")
            parts += [f"SMALL[len(s{index})]", f"s{index}"]
        elif kind == "long":
            parts.append(f"(MEMO.get(v[{name}]) or LONG(v[{name}]))")
        elif kind == "enum":
            names[f"SYMBOLS{index}"] = {symbol: _SMALL_LONGS[at] for at, symbol in enumerate(field["type"]["symbols"])}
            parts.append(f"SYMBOLS{index}[v[{name}]]")
        elif kind == "null|string":
            lines += [
                f"    x{index} = v[{name}]",
                f"    s{index} = b'' if x{index} is None else x{index}.encode()",
                f"    p{index} = NULL if x{index} is None else VALUE + SMALL[len(s{index})]",
            ]
            parts += [f"p{index}", f"s{index}"]
        else:  # null|long: exactly None or an int, as fastavro's union branches accept
            lines += [
                f"    x{index} = v[{name}]",
                f"    p{index} = NULL if x{index} is None else VALUE + (MEMO.get(x{index}) or LONG(x{index}))"
                f" if type(x{index}) is int else LONG(x{index})",
            ]
            parts.append(f"p{index}")
    source = "\n".join(["def write(v, prefix):", *lines, f"    return b''.join(({', '.join(parts)},))"])
    exec(compile(source, f"<avro writer of {schema.get('name')}>", "exec"), names)  # our own source, from the schema
    writer: Writer = names["write"]  # type: ignore[assignment]
    return writer


def _kind(schema: Mapping[str, Any], field: Mapping[str, Any]) -> str:
    """string, long, enum, null|string or null|long; UnsupportedSchema for any other field type."""
    field_type = field["type"]
    if field_type in ("string", "long", "int"):
        return "string" if field_type == "string" else "long"
    if isinstance(field_type, Mapping):
        if field_type.get("type") == "enum":
            return "enum"
        if field_type.get("type") in ("long", "int") and field_type.get("logicalType") in (None, "timestamp-millis"):
            return "long"
    if isinstance(field_type, list) and len(field_type) == 2 and field_type[0] == "null":
        branch = field_type[1]
        if branch == "string":
            return "null|string"
        if branch in ("long", "int"):
            return "null|long"
    name = schema.get("name")
    msg = f"schema {name!r}, field {field['name']!r}: type {field_type!r} is not one compile_writer writes"
    raise UnsupportedSchema(msg)

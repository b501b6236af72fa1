"""Avro bodies read by code compiled for one record schema: fastavro's values at a fraction of its cost per record.

fastavro's ``schemaless_reader`` costs about 3 us a record on these machines, most of it per call and per field:
it parses the schema again, wraps the body in a file object, and dispatches every field through its generic
reader with its options. ``compile_reader`` turns a writer's record schema into one Python function that reads
the fields in order from the bytes themselves, with single-byte longs, string lengths, enum symbols and union
branches looked up in tables, varints of up to 3 bytes read inline, and the datetimes of recent timestamps
memoised: 0.6 to 1.2 us for one of our records (2 us when its timestamp is new). It returns what fastavro returns
with its default options (and the schema as both writer and reader, as confluent-kafka's AvroDeserializer
calls it): the same dict, field order and value types, including fastavro's leniencies:

- a varint may be longer than it needs to be, and the bits of a 10-byte one beyond 64 are dropped;
- an ``int`` is read as a ``long``, without a range check;
- an enum or union index counts from the end when negative (fastavro indexes a Python list with it);
- a ``boolean`` byte other than 0 is True;
- ``timestamp-millis`` on a ``long`` becomes an aware UTC datetime (OverflowError outside years 1 to 9999);
- bytes after the record are ignored.

Where fastavro raises, so does the compiled reader (an EOFError for a body that ends too soon, an IndexError
or KeyError for an index no branch or symbol has, a UnicodeDecodeError for a string that is not UTF-8, ...).
The one difference: a varint of more than 10 bytes raises here, where fastavro returns what its C shift by 64
or more happens to give; a caller that reads such a body with fastavro after the reader raises (as
``app.decoding`` does) gets fastavro's outcome in every case.

Readable types: null, boolean, int, long, float, double, bytes, string, enum, fixed, unions of readable types,
nested records, and names of enums, fixed and records defined earlier in the schema. Logical types other than
``timestamp-millis`` that fastavro converts (date, decimal, uuid, ...), arrays, maps and recursive records raise
``UnsupportedSchema`` when compiled; the caller then reads that schema with fastavro.
``tests/unit/app/test_avro_reader.py`` checks the values against fastavro's for generated records, edge values and
corrupt bodies.
"""

from __future__ import annotations

import struct
from collections.abc import Callable, Mapping
from datetime import UTC, datetime, timedelta
from typing import Any, NoReturn

from fastavro.read import LOGICAL_READERS

from app.avro_writer import UnsupportedSchema

#: A compiled reader: the record whose Avro body starts at ``offset`` of ``body``, as fastavro returns it.
Reader = Callable[[bytes, int], dict[str, Any]]

_PRIMITIVES = ("null", "boolean", "int", "long", "float", "double", "bytes", "string")
_NAMED = ("enum", "fixed", "record")
#: Longer varints do not fit 64 bits; fastavro's result for them is undefined behaviour of its C code.
_MAX_VARINT = 10
_UINT64 = (1 << 64) - 1
#: The long of each single-byte varint (the byte is below 0x80).
_ONE_BYTE_LONGS = tuple((byte >> 1) ^ -(byte & 1) for byte in range(0x80))
#: The string length of each single-byte varint; a negative length becomes one no body has, so the read fails.
_NO_BODY_IS_THIS_LONG = 1 << 62
_ONE_BYTE_LENGTHS = tuple(n if n >= 0 else _NO_BODY_IS_THIS_LONG for n in _ONE_BYTE_LONGS)
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
#: The varint size of the milliseconds from mid-1970 to late 2039, the timestamps this system writes.
_STAMP_SIZE = 6
#: The datetimes of timestamps read lately, by their varint of _STAMP_SIZE bytes: the records of a stream share
#: their milliseconds, and a dict lookup of 6 bytes costs a fraction of reading them and making a datetime.
_STAMPS: dict[bytes, datetime] = {}
#: The datetime of each second since the epoch read lately, and the timedelta of each millisecond of a second:
#: the datetime of a new timestamp is one of each added, which costs less than making its timedelta.
_SECONDS: dict[int, datetime] = {}
_MILLISECONDS = tuple(timedelta(milliseconds=millisecond) for millisecond in range(1000))
#: How many timestamps and seconds are remembered; a memo starts over when full.
_MEMO_SIZE = 1 << 14


def read_long(body: bytes, offset: int) -> tuple[int, int]:
    """The Avro long whose varint starts at ``offset``, and the offset after it; as fastavro reads it."""
    byte = body[offset]  # IndexError here or below when the body ends inside the varint
    unsigned, shift, end = byte & 0x7F, 7, offset + 1
    while byte >= 0x80:
        if end - offset == _MAX_VARINT:
            msg = f"varint at offset {offset} is longer than {_MAX_VARINT} bytes"
            raise ValueError(msg)
        byte = body[end]
        unsigned |= (byte & 0x7F) << shift
        shift, end = shift + 7, end + 1
    unsigned &= _UINT64  # fastavro accumulates in an unsigned 64-bit integer
    return (unsigned >> 1) ^ -(unsigned & 1), end


def _read_size(body: bytes, offset: int) -> tuple[int, int]:
    """The length of the bytes or string at ``offset``, and where they start; EOFError if it is negative."""
    size, start = read_long(body, offset)
    if size < 0:
        msg = f"negative length {size} at offset {offset}"
        raise EOFError(msg)
    return size, start


def _read_index(body: bytes, offset: int, choices: range) -> tuple[int, int]:
    """The enum or union index at ``offset`` as fastavro takes it (negative counts from the end), and its end."""
    index, end = read_long(body, offset)
    return choices[index], end  # IndexError outside -len..len-1, as fastavro's list lookup


def _ended_early(body: bytes, offset: int) -> NoReturn:
    """Raise EOFError: the record needs ``offset`` bytes of ``body``, which is shorter."""
    msg = f"the record needs {offset} bytes, the body has {len(body)}"
    raise EOFError(msg)


def _read_timestamp(body: bytes, offset: int) -> tuple[datetime, int]:
    """fastavro's datetime of the timestamp-millis at ``offset``, and the offset after it; remembered by its bytes.

    The same instant as fastavro's ``epoch + timedelta(microseconds=millis * 1000)``, made from remembered parts;
    OverflowError outside years 1 to 9999, as fastavro.
    """
    millis, end = read_long(body, offset)
    second, millisecond = divmod(millis, 1000)
    start = _SECONDS.get(second)
    if start is None:
        start = _remember(_SECONDS, second, _EPOCH + timedelta(0, second))
    moment = start + _MILLISECONDS[millisecond]
    if end - offset == _STAMP_SIZE:
        _remember(_STAMPS, body[offset:end], moment)
    return moment, end


def _remember(memo: dict[Any, datetime], key: object, moment: datetime) -> datetime:
    """``moment``, remembered under ``key`` in ``memo``, which starts over when full."""
    if len(memo) >= _MEMO_SIZE:
        memo.clear()
    memo[key] = moment
    return moment


class _Source:
    """The source of one reader function, and the constants it refers to, built field by field."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.lines: list[str] = []
        self.constants: dict[str, object] = {
            "LONGS": _ONE_BYTE_LONGS,
            "LENGTHS": _ONE_BYTE_LENGTHS,
            "LONG": read_long,
            "SIZE": _read_size,
            "INDEX": _read_index,
            "ENDED": _ended_early,
            "STAMPS": _STAMPS,
            "STAMP": _read_timestamp,
            "STAMP_SIZE": _STAMP_SIZE,
        }
        self.named: dict[str, Mapping[str, Any] | None] = {}  # full name -> schema; None while being read
        self._count = 0

    def variable(self, prefix: str) -> str:
        self._count += 1
        return f"{prefix}{self._count}"

    def constant(self, value: object) -> str:
        name = self.variable("K")
        self.constants[name] = value
        return name

    def emit(self, depth: int, *lines: str) -> None:
        self.lines += ["    " * depth + line for line in lines]

    def refuse(self, what: str) -> NoReturn:
        msg = f"schema {self.name!r}: {what} is not a type compile_reader reads"
        raise UnsupportedSchema(msg)


def compile_reader(schema: Mapping[str, Any]) -> Reader:
    """A reader of bodies written with ``schema``, a parsed .avsc record; UnsupportedSchema if it uses other types."""
    if not isinstance(schema, Mapping) or schema.get("type") != "record":
        name = schema.get("name") if isinstance(schema, Mapping) else None
        msg = f"schema {name!r}: expected a record schema"
        raise UnsupportedSchema(msg)
    source = _Source(str(schema.get("name")))
    _read_value(source, schema, "value", 1, "")
    source.emit(1, "if p > len(b):", "    ENDED(b, p)", "return value")
    text = "\n".join(["def read(b, p):", *source.lines])
    exec(compile(text, f"<avro reader of {source.name}>", "exec"), source.constants)  # our source, from the schema
    reader: Reader = source.constants["read"]  # type: ignore[assignment]
    return reader


def _read_value(source: _Source, schema: object, target: str, depth: int, namespace: str) -> None:
    """Emit the statements that read a value of ``schema`` at ``p`` into ``target`` and move ``p`` past it."""
    if isinstance(schema, str):
        if schema in _PRIMITIVES:
            _read_primitive(source, schema, target, depth)
        else:
            _read_value(source, _defined(source, schema, namespace), target, depth, namespace)
    elif isinstance(schema, list):
        _read_union(source, schema, target, depth, namespace)
    elif isinstance(schema, Mapping):
        kind = schema.get("type")
        logical = _logical(source, schema)
        if kind in _NAMED:
            namespace = _define(source, schema, namespace)
        if logical:  # a key of _STAMPS is a whole varint, so the bytes at p that equal it are that varint
            source.emit(
                depth,
                f"{target} = STAMPS.get(b[p:p + STAMP_SIZE])",
                f"if {target} is None: {target}, p = STAMP(b, p)",
                "else: p += STAMP_SIZE",
            )
        elif kind == "enum":
            _read_enum(source, schema, target, depth)
        elif kind == "fixed":
            _read_fixed(source, schema, target, depth)
        elif kind == "record":
            _read_record(source, schema, target, depth, namespace)
        elif isinstance(kind, str) and kind in _PRIMITIVES:
            _read_primitive(source, kind, target, depth)
        else:
            source.refuse(repr(kind))
    else:
        source.refuse(repr(schema))


def _logical(source: _Source, schema: Mapping[str, Any]) -> bool:
    """True for timestamp-millis on a long; False for no logical type or one fastavro ignores; refused otherwise."""
    logical = schema.get("logicalType")
    if logical is None:
        return False
    key = f"{schema.get('type')}-{logical}"
    if key == "long-timestamp-millis":
        return True
    if key in LOGICAL_READERS:
        source.refuse(f"logical type {key!r}")
    return False


def _read_primitive(source: _Source, kind: str, target: str, depth: int) -> None:
    if kind == "null":
        source.emit(depth, f"{target} = None")
    elif kind == "boolean":
        source.emit(depth, f"{target} = b[p] != 0", "p += 1")
    elif kind in ("int", "long"):
        source.emit(  # varints of up to 3 bytes inline: ids, prices, counts
            depth,
            "c = b[p]",
            f"if c < 128: {target} = LONGS[c]; p += 1",
            "else:",
            "    d = b[p + 1]",
            f"    if d < 128: n = (c & 127) | d << 7; {target} = (n >> 1) ^ -(n & 1); p += 2",
            "    else:",
            "        e = b[p + 2]",
            f"        if e < 128: n = (c & 127) | (d & 127) << 7 | e << 14; {target} = (n >> 1) ^ -(n & 1); p += 3",
            f"        else: {target}, p = LONG(b, p)",
        )
    elif kind in ("float", "double"):
        unpack = source.constant(struct.Struct("<f" if kind == "float" else "<d").unpack_from)
        source.emit(depth, f"{target} = {unpack}(b, p)[0]", f"p += {4 if kind == 'float' else 8}")
    else:  # bytes or string: a length, then that many bytes
        decode = ".decode()" if kind == "string" else ""
        source.emit(
            depth,
            "c = b[p]",
            "if c < 128: s = p + 1; e = s + LENGTHS[c]",
            "else: n, s = SIZE(b, p); e = s + n",
            f"{target} = b[s:e]{decode}",
            "p = e",
        )


def _read_enum(source: _Source, schema: Mapping[str, Any], target: str, depth: int) -> None:
    symbols = schema.get("symbols")
    if not isinstance(symbols, list) or not all(isinstance(symbol, str) for symbol in symbols):
        source.refuse(f"enum {schema.get('name')!r} without a list of symbols")
    by_byte = source.constant(_by_single_byte(symbols))
    every = source.constant(tuple(symbols))
    choices = source.constant(range(len(symbols)))
    source.emit(
        depth,
        "c = b[p]",
        f"if c < 128: {target} = {by_byte}[c]; p += 1",
        f"else: i, p = INDEX(b, p, {choices}); {target} = {every}[i]",
    )


def _read_fixed(source: _Source, schema: Mapping[str, Any], target: str, depth: int) -> None:
    size = schema.get("size")
    if type(size) is not int or size < 0:
        source.refuse(f"fixed {schema.get('name')!r} of size {size!r}")
    source.emit(depth, f"{target} = b[p:p + {size}]", f"p += {size}")


def _read_record(source: _Source, schema: Mapping[str, Any], target: str, depth: int, namespace: str) -> None:
    fields = schema.get("fields")
    if not isinstance(fields, list) or not all(isinstance(field, Mapping) for field in fields):
        source.refuse(f"record {schema.get('name')!r} without a list of fields")
    items = []
    for field in fields:
        name = field.get("name")
        if not isinstance(name, str) or "type" not in field:
            source.refuse(f"field {name!r} of record {schema.get('name')!r}")
        variable = source.variable("v")
        _read_value(source, field["type"], variable, depth, namespace)
        items.append(f"{name!r}: {variable}")  # repr: a field name is a str literal, whatever it contains
    source.emit(depth, f"{target} = {{{', '.join(items)}}}")
    source.named[_full_name(schema, namespace)] = schema  # complete: later fields may name it


def _read_union(source: _Source, branches: list[object], target: str, depth: int, namespace: str) -> None:
    if not branches:
        source.refuse("an empty union")
    by_byte = source.constant(_by_single_byte(list(range(len(branches)))))
    choices = source.constant(range(len(branches)))
    source.emit(depth, "c = b[p]", f"if c < 128: k = {by_byte}[c]; p += 1", f"else: k, p = INDEX(b, p, {choices})")
    for index, branch in enumerate(branches):
        last = index == len(branches) - 1
        source.emit(depth, "else:" if last else f"{'if' if index == 0 else 'elif'} k == {index}:")
        _read_value(source, branch, target, depth + 1, namespace)


def _by_single_byte(choices: list[Any]) -> dict[int, Any]:
    """The choice each single-byte varint picks, negative indexes counting from the end as in fastavro."""
    count = len(choices)
    return {byte: choices[index] for byte, index in enumerate(_ONE_BYTE_LONGS) if -count <= index < count}


def _full_name(schema: Mapping[str, Any], namespace: str) -> str:
    name = str(schema.get("name"))
    if "." in name:
        return name
    own = schema.get("namespace", namespace)
    return f"{own}.{name}" if own else name


def _define(source: _Source, schema: Mapping[str, Any], namespace: str) -> str:
    """Note the named type ``schema`` (a record only once read: it may not name itself); its namespace."""
    full = _full_name(schema, namespace)
    source.named[full] = None if schema.get("type") == "record" else schema
    return full.rpartition(".")[0]


def _defined(source: _Source, name: str, namespace: str) -> Mapping[str, Any]:
    """The schema of a named type defined earlier; refused for an unknown name or a record that names itself."""
    for full in (f"{namespace}.{name}" if namespace and "." not in name else name, name):
        schema = source.named.get(full)
        if schema is not None:
            return schema
        if full in source.named:
            source.refuse(f"recursive record {full!r}")
    source.refuse(f"the unknown name {name!r}")

"""Typed reads of decoded Avro value dicts: each raises InvalidValue naming the field that is wrong."""

from __future__ import annotations

from collections.abc import Callable, Mapping

from app.exceptions import DatagenError


class InvalidValue(DatagenError):
    """A decoded value dict that is no valid business event: a field is missing, of the wrong type or out of range."""


def integer(value: Mapping[str, object], name: str, least: int | None = None) -> int:
    """The int field ``name`` of ``value``, at least ``least`` when given."""
    field = value.get(name)
    if isinstance(field, bool) or not isinstance(field, int):
        msg = f"{name}={field!r}: expected an integer"
        raise InvalidValue(msg)
    if least is not None and field < least:
        msg = f"{name}={field}: expected >= {least}"
        raise InvalidValue(msg)
    return field


#: The longest string field of any event: ids, SKUs, currencies and search terms are far shorter.
MAX_TEXT = 256


def text(value: Mapping[str, object], name: str) -> str:
    """The non-empty string field ``name`` of ``value``, at most MAX_TEXT characters."""
    field = value.get(name)
    if isinstance(field, str) and len(field) > MAX_TEXT:
        msg = f"{name}: {len(field)} characters, expected at most {MAX_TEXT}"
        raise InvalidValue(msg)
    if not isinstance(field, str) or not field:
        shown = repr(field) if not isinstance(field, list | dict) else type(field).__name__
        msg = f"{name}={shown[:80]}: expected a non-empty string"
        raise InvalidValue(msg)
    return field


def optional_text(value: Mapping[str, object], name: str) -> str | None:
    """The string field ``name`` of ``value``, or None when it is null or absent."""
    field = value.get(name)
    if field is None:
        return None
    return text(value, name)


def choice(value: Mapping[str, object], name: str, symbols: tuple[str, ...]) -> str:
    """The enum field ``name`` of ``value``: one of ``symbols``."""
    field = value.get(name)
    if not isinstance(field, str) or field not in symbols:
        msg = f"{name}={field!r}: expected one of {', '.join(symbols)}"
        raise InvalidValue(msg)
    return field


def reason_invalid(read: Callable[[Mapping[str, object]], object], value: Mapping[str, object]) -> str | None:
    """What ``read`` finds wrong with ``value``, or None when it reads it: errors as data for the edge."""
    try:
        read(value)
    except InvalidValue as invalid:
        return str(invalid)
    return None

"""The rules every text entering the service obeys, checked at the edge, the same on both
databases (one checker for JSON bodies, query parameters, rosters, boundary files and OGC
properties; pydantic models use ``check_text`` as a validator).

A text is refused (``TextRuleError``, a ``ValueError`` naming the field and why) when it

- is not valid Unicode: a lone surrogate (``"\\udc00"`` in a JSON escape) cannot be encoded
  as UTF-8, so every answer carrying it would fail;
- holds a control character (Unicode category Cc: C0, DEL, C1; NUL above all, which
  PostgreSQL cannot store and SQLite would keep). Tab, line feed and carriage return are
  allowed only in free text (``multiline=True``: the free-form strings of a JSON body or of
  OGC ``properties``), never in a name, code, phone or address;
- is longer than its field's limit: the column length of the storage model
  (``limits_of(Member)["name"]`` is 100, as ``String(100)`` says), ``ITEM_MAX`` for one item
  of a list field (skills, intentions, roles), and ``TEXT_MAX`` for any other string.

Lengths count characters (code points), as both databases' ``varchar(n)`` do.
"""

from __future__ import annotations

from collections.abc import Mapping
from functools import cache
from typing import Any

from sqlalchemy import String
from sqlalchemy.orm import DeclarativeBase

TEXT_MAX = 10_000  # any string with no column of its own (JSON properties, free text)
ITEM_MAX = 100  # one item of a list field: a skill, an intention, a role
LIST_MAX = 50  # items of a list field
FREE_TEXT_CONTROLS = frozenset("\t\n\r")


class TextRuleError(ValueError):
    """A text broke a rule: ``field`` names it (``name``, ``[2].address``), ``reason`` says
    why; ``row`` is the file row when it came from a file."""

    def __init__(self, field: str, reason: str, row: int | None = None) -> None:
        where = f"row {row}: " if row is not None else ""
        super().__init__(f"{where}{field} {reason}")
        self.field = field
        self.reason = reason
        self.row = row


def text_problem(value: str, max_length: int | None = TEXT_MAX, *,
                 multiline: bool = False) -> str | None:
    """Why ``value`` breaks the rules ("holds a NUL character"), or None when it is fine."""
    if max_length is not None and len(value) > max_length:
        return f"is {len(value):,} characters long; at most {max_length:,} are allowed"
    if value.isprintable():  # the common case: no control, surrogate or separator at all
        return None
    for position, ch in enumerate(value):
        code = ord(ch)
        if 0xD800 <= code <= 0xDFFF:
            return (f"holds a lone surrogate U+{code:04X} at character {position + 1}: "
                    "not valid Unicode")
        if code < 0x20 or 0x7F <= code <= 0x9F:
            if multiline and ch in FREE_TEXT_CONTROLS:
                continue
            what = "a NUL character" if code == 0 else f"the control character U+{code:04X}"
            return f"holds {what} at character {position + 1}"
    return None


def check_text(value: str, field: str, max_length: int | None = TEXT_MAX, *,
               multiline: bool = False, row: int | None = None) -> str:
    """``value`` unchanged when it obeys the rules, else ``TextRuleError`` naming ``field``."""
    reason = text_problem(value, max_length, multiline=multiline)
    if reason is not None:
        raise TextRuleError(field, reason, row)
    return value


def check_fields(values: Mapping[str, Any], limits: Mapping[str, int], *,
                 row: int | None = None, list_fields: tuple[str, ...] = ()) -> None:
    """Check every string of a flat record (a roster row, a boundary feature's properties,
    a JSON object): a field with a limit against it, ``list_fields`` item by item against
    ``ITEM_MAX`` (and at most ``LIST_MAX`` items), any other against ``TEXT_MAX``."""
    for name, value in values.items():
        field = str(name)
        check_text(field, "a field name", 200, row=row)
        if field in list_fields and isinstance(value, list | tuple):
            if len(value) > LIST_MAX:
                raise TextRuleError(field, f"has {len(value):,} items; at most {LIST_MAX} "
                                    "are allowed", row)
            for i, item in enumerate(value):
                if isinstance(item, str):
                    check_text(item, f"{field}[{i}]", ITEM_MAX, row=row)
        elif isinstance(value, str):
            check_text(value, field, limits.get(field, TEXT_MAX), row=row)


def first_bad_text(value: Any, path: str = "") -> tuple[str, str] | None:
    """(where, why) of the first string (key or value) in decoded JSON that breaks the rules
    as free text (``multiline``, ``TEXT_MAX``), or None. ``where`` is ``name``,
    ``items[2].address`` or ``body``."""
    if isinstance(value, str):
        reason = text_problem(value, TEXT_MAX, multiline=True)
        return (path or "body", reason) if reason else None
    if isinstance(value, dict):
        for key, item in value.items():
            key_reason = text_problem(key, 200)
            if key_reason:
                return (f"{path or 'body'} key {_printable(key)!r}", key_reason)
            found = first_bad_text(item, f"{path}.{key}" if path else key)
            if found is not None:
                return found
    elif isinstance(value, list):
        for i, item in enumerate(value):
            if (found := first_bad_text(item, f"{path}[{i}]")) is not None:
                return found
    return None


def _printable(text: str) -> str:
    """``text`` with what cannot be shown or encoded replaced, cut to 40 characters."""
    return "".join(ch if ch.isprintable() else "\ufffd" for ch in text[:40])


@cache
def limits_of(model: type[DeclarativeBase]) -> Mapping[str, int]:
    """The maximum length of every ``String(n)`` column of ``model``, by attribute name."""
    limits: dict[str, int] = {}
    for attr in model.__mapper__.column_attrs:
        for column in attr.columns:
            if isinstance(column.type, String) and column.type.length:
                limits[attr.key] = column.type.length
    return limits

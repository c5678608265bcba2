"""OGC API - Features Part 3 (filtering) over units: queryables, simple property filters,
``sortby`` and CQL2 filters, turned into SQLAlchemy conditions on both backends.

Queryables (``QUERYABLES``): ``code``, ``name``, ``parent_code``, ``leader``, ``phone``,
``address`` (text), ``level``, ``households``, ``version`` (integers) and ``geometry``.

- Simple property filters: ``?code=...``, ``?name=...``, ``?parent_code=...`` (any text or
  integer queryable). ``*`` in a text value matches any run of characters (``name=阳光*``),
  nothing else is special; an integer must be a whole number.
- ``sortby``: comma-separated queryables, each optionally prefixed ``+`` (ascending, the
  default) or ``-`` (descending); the unit code always breaks ties, so paging is stable.
  Nulls sort first ascending and last descending on both backends.
- ``filter`` in CQL2-text (``filter-lang=cql2-text``, the default) or CQL2-JSON
  (``cql2-json``), parsed by the ``cql2`` package (the cql2-rs parser): ``and``, ``or``,
  ``not``, ``=``, ``<>``, ``<``, ``<=``, ``>``, ``>=``, ``LIKE`` (``%``, ``_``, ``\\`` escapes;
  case-sensitive on both backends), ``BETWEEN``, ``IN``, ``IS NULL``, and ``S_INTERSECTS``,
  ``S_WITHIN``, ``S_CONTAINS``, ``S_DISJOINT`` of the geometry with a ``BBOX(...)`` or a
  WKT/GeoJSON geometry in ``filter-crs`` (default CRS84). A comparison with null (an unknown
  value) is false, as in SQL. Anything else is 400 ``invalid-input`` on ``filter`` naming it.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import cql2
from shapely.geometry import box, shape
from shapely.geometry.base import BaseGeometry
from sqlalchemy import ColumnElement, and_, false, not_, nulls_first, nulls_last, or_
from sqlalchemy.orm import Session

from gridsvc.services.errors import InvalidInput
from gridsvc.spatial import ogc_crs
from gridsvc.storage import units as q
from gridsvc.storage.models import Unit

TEXT = ("code", "name", "parent_code", "leader", "phone", "address")
INTEGER = ("level", "households", "version")
QUERYABLES = (*TEXT, *INTEGER, "geometry")
FILTER_LANGS = ("cql2-text", "cql2-json")
_COMPARE = {"=": "__eq__", "<>": "__ne__", "<": "__lt__", "<=": "__le__", ">": "__gt__",
            ">=": "__ge__"}
_SPATIAL = ("s_intersects", "s_within", "s_contains", "s_disjoint")


@dataclass(frozen=True)
class Query:
    """What a client asked of a collection's items, beyond paging and bbox."""

    properties: Mapping[str, str] = field(default_factory=dict)  # simple filters
    filter: str | None = None
    filter_lang: str = "cql2-text"
    filter_crs: str = ogc_crs.CRS84
    sortby: str | None = None


def columns(parent: Any) -> dict[str, Any]:
    """Each text and integer queryable's column (``parent``: the aliased parent unit)."""
    return {"code": Unit.code, "name": Unit.name, "parent_code": parent.code,
            "leader": Unit.leader_name, "phone": Unit.leader_phone, "address": Unit.address,
            "level": Unit.level, "households": Unit.households, "version": Unit.version}


def queryables_schema(title: str, geometry: str) -> dict[str, Any]:
    """The JSON Schema of the queryables (``/collections/{id}/queryables``)."""
    props: dict[str, Any] = {key: {"type": "string", "title": key} for key in TEXT}
    props |= {key: {"type": "integer", "title": key} for key in INTEGER}
    props["geometry"] = {"format": f"geometry-{geometry.lower()}", "title": "geometry",
                         "x-ogc-role": "primary-geometry"}
    props["code"]["x-ogc-role"] = "id"
    return {"$schema": "https://json-schema.org/draft/2020-12/schema", "type": "object",
            "title": title, "properties": props, "additionalProperties": False}


def conditions(session: Session, parent: Any, query: Query) -> list[ColumnElement[bool]]:
    """The SQL conditions of the simple filters and the CQL2 filter."""
    cols = columns(parent)
    out: list[ColumnElement[bool]] = []
    for key, value in query.properties.items():
        if key in TEXT:
            out.append(_like(cols[key], _wildcards(value)))
        else:
            out.append(cols[key] == _whole(value, key))
    if query.filter is not None and query.filter.strip():
        out.append(_Translator(session, cols, query.filter_crs).node(_parse(query)))
    return out


def order_by(parent: Any, sortby: str | None) -> list[Any]:
    """The ORDER BY of ``sortby`` (the unit code last, always)."""
    cols = columns(parent)
    out: list[Any] = []
    for raw in (sortby or "").split(","):
        item = raw.strip()
        if not item:
            continue
        descending = item.startswith("-")
        key = item.lstrip("+-").strip()
        if key not in cols:
            raise InvalidInput(f"sortby: {key!r} is not a queryable; sort by "
                               f"{', '.join(cols)} (prefix - for descending)", field="sortby")
        out.append(nulls_last(cols[key].desc()) if descending else nulls_first(cols[key].asc()))
    return [*out, Unit.code]


INT_RANGE = 2**31  # the integer columns are 32-bit on PostgreSQL


def _whole(value: Any, key: str) -> int:
    try:
        number = int(str(value).strip())
    except ValueError:
        number = INT_RANGE
    if not -INT_RANGE < number < INT_RANGE:
        raise InvalidInput(f"{key} must be a whole number between {-INT_RANGE + 1} and "
                           f"{INT_RANGE - 1}, got {value!r}", field=key)
    return number


def _wildcards(value: str) -> list[str | None]:
    """A simple filter's value as LIKE parts: None for ``*``, text otherwise."""
    parts: list[str | None] = []
    for i, piece in enumerate(value.split("*")):
        if i:
            parts.append(None)
        if piece:
            parts.append(piece)
    return parts


def _cql_like(pattern: str) -> list[str | None]:
    """A CQL2 LIKE pattern as parts: None any run (``%``), "" one character (``_``)."""
    parts: list[str | None] = []
    escaped = False
    for char in pattern:
        if escaped:
            parts.append(char)
            escaped = False
        elif char == "\\":
            escaped = True
        elif char == "%":
            parts.append(None)
        elif char == "_":
            parts.append("")
        else:
            parts.append(char)
    if escaped:
        parts.append("\\")
    return parts


def _like(column: Any, parts: list[str | None]) -> ColumnElement[bool]:
    return q.like_filter(column, parts)


def _parse(query: Query) -> Any:
    if query.filter_lang not in FILTER_LANGS:
        raise InvalidInput(f"filter-lang must be one of {', '.join(FILTER_LANGS)}, got "
                           f"{query.filter_lang!r}", field="filter-lang")
    text = query.filter or ""
    try:
        if query.filter_lang == "cql2-json":
            json.loads(text)  # a plain JSON error reads better than the parser's
            expr = cql2.parse_json(text)
        else:
            expr = cql2.parse_text(text)
        return expr.to_json()
    except (ValueError, cql2.ParseError, cql2.ValidationError) as exc:
        detail = " ".join(str(exc).split())[:300]
        raise InvalidInput(f"filter is not valid {query.filter_lang}: {detail}",
                           field="filter") from None


class _Translator:
    def __init__(self, session: Session, cols: dict[str, Any], crs: str) -> None:
        self.session, self.cols, self.crs = session, cols, crs

    def refuse(self, what: str) -> InvalidInput:
        return InvalidInput(f"filter: {what}; see /collections/{{id}}/queryables and the "
                            "README for what filters support", field="filter")

    def node(self, expr: Any) -> ColumnElement[bool]:
        if isinstance(expr, bool):
            return and_(True) if expr else false()
        if not isinstance(expr, dict) or "op" not in expr:
            raise self.refuse(f"{json.dumps(expr, ensure_ascii=False)[:80]} is not a condition")
        op, args = str(expr["op"]).lower(), list(expr.get("args") or [])
        if op in ("and", "or"):
            parts = [self.node(a) for a in args]
            return and_(*parts) if op == "and" else or_(*parts)
        if op == "not" and len(args) == 1:
            return not_(self.node(args[0]))
        if op in _COMPARE and len(args) == 2:
            column, key = self.column(args[0])
            return getattr(column, _COMPARE[op])(self.literal(args[1], key))
        if op == "like" and len(args) == 2:
            column, key = self.column(args[0])
            if key not in TEXT or not isinstance(args[1], str):
                raise self.refuse(f"LIKE needs a text queryable and a text pattern ({key})")
            return _like(column, _cql_like(args[1]))
        if op == "between" and len(args) == 3:
            column, key = self.column(args[0])
            return column.between(self.literal(args[1], key), self.literal(args[2], key))
        if op == "in" and len(args) == 2 and isinstance(args[1], list):
            column, key = self.column(args[0])
            return column.in_([self.literal(v, key) for v in args[1]])
        if op == "isnull" and len(args) == 1:
            column, _key = self.column(args[0])
            return column.is_(None)
        if op in _SPATIAL and len(args) == 2:
            geoms = [a for a in args if not _is_geometry_property(a)]
            if len(geoms) != 1 or not any(_is_geometry_property(a) for a in args):
                raise self.refuse(f"{op.upper()} compares the property geometry with one "
                                  "BBOX or geometry literal")
            other = self.geometry(geoms[0])
            if op != "s_intersects" and not _is_geometry_property(args[0]):
                op = {"s_within": "s_contains", "s_contains": "s_within"}.get(op, op)
            return q.spatial_filter(self.session, op.removeprefix("s_"), other)
        raise self.refuse(f"the operator {op!r} with {len(args)} arguments is not supported")

    def column(self, arg: Any) -> tuple[Any, str]:
        key = arg.get("property") if isinstance(arg, dict) else None
        if key not in self.cols:
            raise self.refuse(f"{json.dumps(arg, ensure_ascii=False)[:80]} is not a queryable "
                              f"(left of the operator); the queryables are "
                              f"{', '.join(QUERYABLES)}")
        return self.cols[key], key

    def literal(self, value: Any, key: str) -> Any:
        if key in TEXT and isinstance(value, str):
            return value
        if key in INTEGER and isinstance(value, int | float) and not isinstance(value, bool) \
                and float(value).is_integer() and abs(value) < INT_RANGE:
            return int(value)
        kind = "text" if key in TEXT else "a whole number"
        raise self.refuse(f"{key} is compared with {kind}, not "
                          f"{json.dumps(value, ensure_ascii=False)[:60]}")

    def geometry(self, value: Any) -> BaseGeometry:
        try:
            if isinstance(value, dict) and "bbox" in value:
                values = [float(v) for v in value["bbox"]]
                if len(values) == 6:
                    values = [values[0], values[1], values[3], values[4]]
                x0, y0, x1, y1 = values
                geom = box(*ogc_crs.bbox_to_crs84((x0, y0, x1, y1), self.crs))
            else:
                geom = ogc_crs.to_crs84(shape(value), self.crs)
        except ogc_crs.UnsupportedCrs as exc:
            raise self.refuse(str(exc)) from None
        except (TypeError, ValueError, KeyError, AttributeError, IndexError) as exc:
            raise self.refuse(f"not a geometry: {str(exc)[:100]}") from None
        if geom.is_empty:
            raise self.refuse("an empty geometry")
        return geom


def _is_geometry_property(arg: Any) -> bool:
    return isinstance(arg, dict) and arg.get("property") in ("geometry", "geom")

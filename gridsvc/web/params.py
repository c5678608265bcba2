"""Reading request parameters; a bad value is an ``InvalidInput`` naming the parameter."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from flask import Flask, Request, request
from werkzeug.exceptions import NotFound
from werkzeug.routing import IntegerConverter

from gridsvc.services.errors import InvalidInput

TRUE = {"1", "true", "yes", "on"}
FALSE = {"0", "false", "no", "off", ""}

# Coordinate systems a bbox may be given in: storage is wgs84 and cgcs2000 is the same datum
# for this use. gcj02 and bd09 bboxes need shifting and are refused until lookups bring that.
BBOX_CRS = {
    "wgs84": "wgs84",
    "cgcs2000": "cgcs2000",
    "epsg:4326": "wgs84",
    "epsg:4490": "cgcs2000",
    "http://www.opengis.net/def/crs/ogc/1.3/crs84": "wgs84",
    "http://www.opengis.net/def/crs/epsg/0/4326": "wgs84",
    "http://www.opengis.net/def/crs/epsg/0/4490": "cgcs2000",
}


INT_ARG_MAX = 2**63 - 1


def int_arg(name: str, default: int, args: Mapping[str, str] | None = None) -> int:
    raw = (request.args if args is None else args).get(name, "").strip()
    if raw == "":
        return default
    try:
        value = int(raw)
    except ValueError:
        raise InvalidInput(f"{name} must be a whole number, got {raw!r}", field=name) from None
    if abs(value) > INT_ARG_MAX:  # past what SQL's bigint holds (an OFFSET of 10**30)
        raise InvalidInput(f"{name} {raw!r} is out of range", field=name)
    return value


def bool_arg(name: str, default: bool = False, args: Mapping[str, str] | None = None) -> bool:
    raw = (request.args if args is None else args).get(name)
    if raw is None:
        return default
    value = raw.strip().lower()
    if value in TRUE:
        return True
    if value in FALSE:
        return False
    raise InvalidInput(f"{name} must be 1/true or 0/false, got {raw!r}", field=name)


def text_arg(name: str, args: Mapping[str, str] | None = None) -> str | None:
    value = (request.args if args is None else args).get(name, "").strip()
    return value or None


def bbox_arg() -> tuple[float, float, float, float] | None:
    """``bbox=minlon,minlat,maxlon,maxlat`` in wgs84 (or cgcs2000), from ``bbox-crs``."""
    crs_raw = text_arg("bbox-crs") or text_arg("coordsys")
    if crs_raw is not None and crs_raw.lower() not in BBOX_CRS:
        raise InvalidInput(
            f"bbox-crs {crs_raw!r} is not supported yet: send the bbox in wgs84 or cgcs2000 "
            "(gcj02 and bd09 bboxes are refused rather than shifted)",
            field="bbox-crs",
        )
    raw = text_arg("bbox")
    if raw is None:
        return None
    parts = raw.split(",")
    try:
        minx, miny, maxx, maxy = (float(p) for p in parts)
    except ValueError:
        raise InvalidInput(
            f"bbox must be four numbers minlon,minlat,maxlon,maxlat (wgs84), got {raw!r}",
            field="bbox",
        ) from None
    if not (-180 <= minx <= maxx <= 180 and -90 <= miny <= maxy <= 90):
        raise InvalidInput(
            f"bbox {raw!r} is not minlon,minlat,maxlon,maxlat with lon in -180..180, "
            "lat in -90..90 and min <= max (wgs84)",
            field="bbox",
        )
    return minx, miny, maxx, maxy


def json_object_field(name: str, args: Mapping[str, str]) -> dict[str, str] | None:
    """A form field holding a JSON object of strings, e.g. ``map={"code": "编码"}``."""
    raw = args.get(name, "").strip()
    if not raw:
        return None
    try:
        value = json.loads(raw)
    except (ValueError, RecursionError) as exc:  # a 4,300+ digit number, deep nesting
        raise InvalidInput(f"{name} is not valid JSON: {exc}", field=name) from None
    if not isinstance(value, dict) or not all(
        isinstance(k, str) and isinstance(v, str) for k, v in value.items()
    ):
        raise InvalidInput(
            f'{name} must be a JSON object of strings, e.g. {{"code": "编码"}}', field=name
        )
    return value


# --- hostile input that would otherwise reach the database or the JSON decoder ----------------

ROW_ID_MAX = 2**31 - 1  # ids are SQL integers (PostgreSQL's int4)


class RowIdConverter(IntegerConverter):
    """``<int:...>`` in routes: an id larger than any row can have is 404, like any unknown id,
    instead of an integer overflow in the database (500), or, past 4,300 digits, a ValueError
    from ``int()``. (A ``max`` would make Werkzeug answer 405 for the PUT of such an id.)"""

    def to_python(self, value: str) -> int:
        number = int(value) if len(value) <= len(str(ROW_ID_MAX)) else ROW_ID_MAX + 1
        if number > ROW_ID_MAX:
            raise NotFound(f"no row has the id {value[:20]}: ids go up to {ROW_ID_MAX}")
        return number


class GridsvcRequest(Request):
    """Flask's request, where a JSON body nested too deeply to decode (a RecursionError: 500)
    or with a NUL character in any string is refused (400 naming where): no text here may hold
    one, and PostgreSQL cannot store or compare it."""

    def get_json(self, force: bool = False, silent: bool = False, cache: bool = True) -> Any:
        try:
            value = super().get_json(force=force, silent=silent, cache=cache)
            where = _nul_at(value, "")
        except RecursionError:
            raise InvalidInput("the JSON body is nested too deeply", field="body") from None
        if where is not None:
            raise InvalidInput(f"{where} holds a NUL character", field=where)
        return value


def _nul_at(value: Any, path: str) -> str | None:
    """Where (``name``, ``[2].address``) the first string holding a NUL character is, or None."""
    if isinstance(value, str):
        return (path or "body") if "\x00" in value else None
    if isinstance(value, dict):
        for key, item in value.items():
            where = _nul_at(key, path) or _nul_at(item, f"{path}.{key}" if path else key)
            if where is not None:
                return where.replace("\x00", "")
    if isinstance(value, list):
        for i, item in enumerate(value):
            if (where := _nul_at(item, f"{path}[{i}]")) is not None:
                return where
    return None


def refuse_nul_characters() -> None:
    """Before every request: a query parameter or path segment holding a NUL character is
    refused (400 naming it); no text here may hold one, and PostgreSQL cannot store or compare
    it (a 500 otherwise)."""
    values = [*request.args.items(multi=True), *(request.view_args or {}).items()]
    for name, value in values:
        if "\x00" in name + (value if isinstance(value, str) else ""):
            field = name.replace("\x00", "")
            raise InvalidInput(f"{field} holds a NUL character", field=field)


def install(app: Flask) -> None:
    """Use ``RowIdConverter`` for ``<int:...>``, ``GridsvcRequest`` and
    ``refuse_nul_characters``; call before the blueprints are registered."""
    app.url_map.converters["int"] = RowIdConverter
    app.request_class = GridsvcRequest
    app.before_request(refuse_nul_characters)

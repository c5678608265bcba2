"""Reading request parameters; a bad value is an ``InvalidInput`` naming the parameter."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from flask import Flask, Request, request
from werkzeug.exceptions import NotFound
from werkzeug.routing import IntegerConverter

from gridsvc.services.errors import InvalidInput
from gridsvc.validation.text_rules import TEXT_MAX, first_bad_text, text_problem

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
    or with a string (key or value) that breaks ``gridsvc.validation.text_rules`` (a lone
    surrogate, a control character, longer than ``TEXT_MAX``) is refused: 400 naming where."""

    def get_json(self, force: bool = False, silent: bool = False, cache: bool = True) -> Any:
        try:
            value = super().get_json(force=force, silent=silent, cache=cache)
            found = first_bad_text(value)
        except RecursionError:
            raise InvalidInput("the JSON body is nested too deeply", field="body") from None
        if found is not None:
            where, reason = found
            raise InvalidInput(f"{where} {reason}", field=where)
        return value


def refuse_bad_text() -> None:
    """Before every request: a query parameter or path segment that breaks the text rules
    (a NUL or other control character, longer than ``TEXT_MAX``) is refused, 400 naming it;
    PostgreSQL cannot store or compare a NUL (a 500 otherwise). A path that matches no route
    is checked whole (``field`` ``path``), so it is 400 too rather than 404."""
    if request.view_args is None:  # no route matched: no segments to name
        reason = text_problem(request.path, None)
        if reason is not None:
            raise InvalidInput(f"the path {reason}", field="path")
    values = [*request.args.items(multi=True), *(request.view_args or {}).items()]
    for name, value in values:
        for text, what in ((name, "the parameter name"), (value, None)):
            if not isinstance(text, str):
                continue
            reason = text_problem(text, TEXT_MAX)
            if reason is not None:
                field = "".join(ch if ch.isprintable() else "\ufffd" for ch in name[:100])
                raise InvalidInput(f"{what or field} {reason}", field=field)


def install(app: Flask) -> None:
    """Use ``RowIdConverter`` for ``<int:...>``, ``GridsvcRequest`` and ``refuse_bad_text``;
    call before the blueprints are registered."""
    app.url_map.converters["int"] = RowIdConverter
    app.request_class = GridsvcRequest
    app.before_request(refuse_bad_text)

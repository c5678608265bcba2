"""Reading request parameters; a bad value is an ``InvalidInput`` naming the parameter."""

from __future__ import annotations

import json
from collections.abc import Mapping

from flask import request

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


def int_arg(name: str, default: int, args: Mapping[str, str] | None = None) -> int:
    raw = (request.args if args is None else args).get(name, "").strip()
    if raw == "":
        return default
    try:
        return int(raw)
    except ValueError:
        raise InvalidInput(f"{name} must be a whole number, got {raw!r}", field=name) from None


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
    except json.JSONDecodeError as exc:
        raise InvalidInput(f"{name} is not valid JSON: {exc}", field=name) from None
    if not isinstance(value, dict) or not all(
        isinstance(k, str) and isinstance(v, str) for k, v in value.items()
    ):
        raise InvalidInput(
            f'{name} must be a JSON object of strings, e.g. {{"code": "编码"}}', field=name
        )
    return value

"""Rendering tree views as GeoJSON (RFC 7946): wgs84 coordinates rounded to 7 decimals
(about 1 cm), each feature's ``id`` the unit code, and content negotiation between JSON and
GeoJSON."""

from __future__ import annotations

from typing import Any, cast

import numpy as np
import orjson
import shapely
from flask import Response, current_app, request
from shapely.geometry import mapping
from shapely.geometry.base import BaseGeometry

from gridsvc.services.errors import InvalidInput
from gridsvc.services.tree import UnitView

GEOJSON = "application/geo+json"
JSON = "application/json"
DECIMALS = 7


def geometry(geom: BaseGeometry | None) -> dict[str, Any] | None:
    if geom is None or geom.is_empty:
        return None
    rounded = shapely.transform(geom, lambda coords: np.round(coords, DECIMALS))
    return mapping(rounded)


def feature(view: UnitView, extra: dict[str, Any] | None = None) -> dict[str, Any]:
    """A unit as a Feature; a household's service area is the ``service_area`` property."""
    properties = dict(view.props)
    if view.service_area is not None:
        properties["service_area"] = geometry(view.service_area)
    properties.update(extra or {})
    return {
        "type": "Feature",
        "id": view.props["code"],
        "geometry": geometry(view.geometry),
        "properties": properties,
    }


def feature_collection(
    views: list[UnitView],
    *,
    matched: int | None = None,
    links: list[dict[str, str]] | None = None,
) -> dict[str, Any]:
    collection: dict[str, Any] = {
        "type": "FeatureCollection",
        "features": [feature(v) for v in views],
        "numberMatched": len(views) if matched is None else matched,
        "numberReturned": len(views),
    }
    if links:
        collection["links"] = links
    return collection


def plain(view: UnitView, with_geometry: bool) -> dict[str, Any]:
    """A unit as plain JSON: its properties, plus geometry and service area when asked for."""
    data = dict(view.props)
    if with_geometry:
        data["geometry"] = geometry(view.geometry)
        if view.service_area is not None:
            data["service_area"] = geometry(view.service_area)
    return data


def wants_geojson() -> bool:
    """``?f=geojson``/``?f=json`` decides; otherwise the Accept header, JSON by default."""
    f = request.args.get("f", "").strip().lower()
    if f in ("geojson", "json"):
        return f == "geojson"
    if f:
        raise InvalidInput(f"f must be json or geojson, got {f!r}", field="f")
    return request.accept_mimetypes.best_match([JSON, GEOJSON], default=JSON) == GEOJSON


def json_response(data: Any, status: int = 200, mimetype: str = JSON) -> Response:
    response = cast(Response, current_app.json.response(data))  # an app.response_class
    response.status_code = status
    response.mimetype = mimetype
    return response


def json_bytes(body: bytes, status: int = 200, mimetype: str = JSON) -> Response:
    """A response whose body is JSON encoded already (e.g. assembled by the service)."""
    return Response(body, status=status, mimetype=mimetype)


def fast_json_response(data: Any, status: int = 200, mimetype: str = JSON) -> Response:
    """``json_response`` encoded by orjson, several times faster, for the hot endpoints; the
    data must be plain JSON types (str keys; no dates, no Decimal)."""
    return json_bytes(orjson.dumps(data), status, mimetype)


def negotiated(data: Any, geojson: bool) -> Response:
    """A response whose format followed the request's Accept header or ``f``."""
    response = json_response(data, mimetype=GEOJSON if geojson else JSON)
    response.vary.add("Accept")
    return response

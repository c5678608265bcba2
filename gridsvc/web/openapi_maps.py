"""OpenAPI paths and schemas of the map layer API (listed in openapi.RESOURCE_DOCS).

The HTML pages under /maps/ are not part of the API document; gridsvc/web/maps.py lists them.
"""

from __future__ import annotations

from typing import Any

from gridsvc.maps.layers import DEFAULT_LIMIT, MAX_LIMIT, MAX_ZOOM, ONLY, VIEWS
from gridsvc.web.openapi import GEOJSON, NULLABLE_STR, READ_NOTE, _json, _ok, _param, _problems

LAYER_FEATURE = {
    "type": "object",
    "required": ["type", "id", "geometry", "properties"],
    "properties": {
        "type": {"const": "Feature"},
        "id": {"type": "string", "description": "The unit code"},
        "geometry": {"type": "object", "description": "wgs84, simplified for the zoom (polygon "
                     "levels below zoom 16), coordinates rounded to 6 decimals; a point on the "
                     "polygon with points=1"},
        "properties": {"type": "object", "description":
                       "view coverage: code, name, level, level_name, leader, households, "
                       "members, members_per_100, needs_confirmation, gaps (area levels); view "
                       "counts: code, name, members; view names: code, name",
                       "properties": {"code": {"type": "string"}, "name": {"type": "string"},
                                      "leader": NULLABLE_STR,
                                      "members": {"type": "integer", "minimum": 0}}},
    },
}

LAYER = {
    "type": "object",
    "required": ["type", "level", "zoom", "minZoom", "numberMatched", "numberReturned",
                 "truncated", "features"],
    "properties": {
        "type": {"const": "FeatureCollection"},
        "level": {"type": "integer", "description": "The level served (counts may aggregate "
                  "to a higher level below the asked level's minimum zoom)"},
        "zoom": {"type": "integer"},
        "minZoom": {"type": "integer", "description": "Below this zoom the level is not "
                    "served: no features"},
        "numberMatched": {"type": "integer", "minimum": 0},
        "numberReturned": {"type": "integer", "minimum": 0},
        "truncated": {"type": "boolean", "description": "More matched than limit"},
        "features": {"type": "array", "items": {"$ref": "#/components/schemas/LayerFeature"}},
    },
}

PATHS: dict[str, Any] = {
    "/api/v1/layers/{level}": {"get": {
        "tags": ["maps"],
        "summary": "One level's units in a bbox, simplified for the map's zoom",
        "description": "What the map pages fetch as the view moves. Polygons are simplified "
                       "per zoom band with shapely.coverage_simplify over the whole level, so "
                       "neighbours' shared edges stay matched. Micro-grids are served from zoom "
                       "15, grids from 13, 党员中心户 points from 16. No member's personal data "
                       "(leader is the unit's posted contact). " + READ_NOTE + " The map "
                       "pages send the token as the gridsvc_token cookie (POST /session).",
        "parameters": [
            _param("level", "Level number or key (street, community, grid, building, "
                   "household)", {"type": "string"}, where="path"),
            _param("zoom", "The map's zoom", {"type": "integer", "minimum": 0,
                                              "maximum": MAX_ZOOM}, required=True),
            _param("bbox", "minlon,minlat,maxlon,maxlat (wgs84); default: everywhere",
                   {"type": "string"}),
            _param("unit", "Only units at or below this unit code (default: the token's "
                   "subtree)", {"type": "string"}),
            _param("view", "Properties to send", {"type": "string", "enum": list(VIEWS),
                                                   "default": "coverage"}),
            _param("only", "no-leader: only units with no leader (secretary, group leader)",
                   {"type": "string", "enum": list(ONLY)}),
            _param("points", "1: a point on each polygon instead of the polygon",
                   {"type": "boolean"}),
            _param("limit", "At most this many features", {"type": "integer", "minimum": 1,
                   "maximum": MAX_LIMIT, "default": DEFAULT_LIMIT}),
        ],
        "responses": {"200": _ok("The features", **{GEOJSON: _json("Layer")}),
                      **_problems(400, 401, 403, 404)},
    }},
}

SCHEMAS: dict[str, Any] = {"Layer": LAYER, "LayerFeature": LAYER_FEATURE}

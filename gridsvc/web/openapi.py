"""The OpenAPI 3.1 document of every ``/api/v1`` route, served at ``/api/v1/openapi.json``.

tests/test_openapi.py checks that its paths equal the app's routes and that real responses
validate against its schemas, so the two cannot drift apart. Built on each call (it is small).
"""

from __future__ import annotations

import importlib
from typing import Any

from gridsvc.web.openapi_edge import add_edge_answers

PROBLEM = "application/problem+json"
GEOJSON = "application/geo+json"
JSON = "application/json"


def _ref(name: str) -> dict[str, str]:
    return {"$ref": f"#/components/schemas/{name}"}


def _content(media: str, schema: dict[str, Any]) -> dict[str, Any]:
    return {media: {"schema": schema}}


def _ok(description: str, **media: dict[str, Any]) -> dict[str, Any]:
    return {"description": description, "content": dict(media)}


def _json(schema: str) -> dict[str, Any]:
    return {"schema": _ref(schema)}


def _param(name: str, description: str, schema: dict[str, Any], where: str = "query",
           required: bool = False) -> dict[str, Any]:
    return {"name": name, "in": where, "description": description,
            "required": required or where == "path", "schema": schema}


def _problems(*statuses: int) -> dict[str, Any]:
    names = {400: "BadRequest", 401: "Unauthorized", 403: "Forbidden", 404: "NotFound",
             413: "PayloadTooLarge",
             422: "ValidationFailed", 429: "TooManyRequests", 503: "Unavailable"}
    return {str(s): {"$ref": f"#/components/responses/{names[s]}"} for s in statuses}


NULLABLE_STR = {"type": ["string", "null"]}
CODE = _param("code", "The unit's code", {"type": "string"}, where="path")
FORMAT = _param("f", "Response format; overrides the Accept header",
                {"type": "string", "enum": ["json", "geojson"]})
WITH_GEOMETRY = _param("geometry", "Include geometry (wgs84 GeoJSON) in JSON responses",
                       {"type": "string", "enum": ["0", "1", "true", "false"]})
MAX_LEVEL = _param("max_level", "Deepest level to include: number or level key",
                   {"type": "string"})
UNIT_QUERY = _param("unit", "Limit to the subtree under this unit code (default: the token's "
                    "subtree)", {"type": "string"})
# Every route of the tree, boundaries, coverage and maps reads within the token's subtree.
READ_NOTE = ("Needs a token that may read units (admin, planner, staff); a planner's or "
             "staff token answers within its subtree only, and a unit outside it is 404.")
EDIT_NOTE = ("Needs a token that may edit boundaries (admin, planner); every feature must lie "
             "in a planner's subtree, else 403 naming them (`features`: row, code, layer) and "
             "nothing is stored. A new top-level unit needs a city-wide token.")

GEOMETRY = {
    "type": "object",
    "description": "A GeoJSON geometry in wgs84 (RFC 7946), coordinates rounded to 7 decimals",
    "required": ["type", "coordinates"],
    "properties": {
        "type": {"enum": ["Point", "MultiPoint", "LineString", "MultiLineString", "Polygon",
                          "MultiPolygon"]},
        "coordinates": {"type": "array"},
    },
}

# What names a unit and its place in the hierarchy, shared by every schema that lists units.
UNIT_IDENTITY_REQUIRED = ["code", "name", "level", "level_key", "level_name", "parent_code"]
UNIT_IDENTITY = {
    "code": {"type": "string"},
    "name": {"type": "string"},
    "level": {"type": "integer", "minimum": 1},
    "level_key": {"type": "string"},
    "level_name": {"type": "string"},
    "parent_code": NULLABLE_STR,
}

UNIT = {
    "type": "object",
    "required": [*UNIT_IDENTITY_REQUIRED, "version"],
    "properties": {
        **UNIT_IDENTITY,
        "leader": NULLABLE_STR,
        "phone": NULLABLE_STR,
        "households": {"type": ["integer", "null"]},
        "address": NULLABLE_STR,
        "properties": {"type": "object"},
        "version": {"type": "integer"},
        "updated_at": {"type": ["string", "null"], "format": "date-time"},
        "geometry": {"oneOf": [_ref("Geometry"), {"type": "null"}],
                     "description": "Only with ?geometry=1"},
        "service_area": {"oneOf": [_ref("Geometry"), {"type": "null"}],
                         "description": "Households only, with ?geometry=1"},
    },
}

TREE_POSITION = {
    "ancestors": {
        "type": "array",
        "description": "Root first",
        "items": {
            "type": "object",
            "required": ["code", "name", "level", "level_key"],
            "properties": {"code": {"type": "string"}, "name": {"type": "string"},
                           "level": {"type": "integer"}, "level_key": {"type": "string"}},
        },
    },
    "children": {"type": "integer", "description": "Number of direct children"},
    "descendants": {"type": "object", "description": "Units below, counted by level key",
                    "additionalProperties": {"type": "integer"}},
}

LINK = {
    "type": "object",
    "required": ["href", "rel"],
    "properties": {"href": {"type": "string"}, "rel": {"type": "string"},
                   "type": {"type": "string"}, "title": {"type": "string"}},
}

def unit_feature(properties: dict[str, Any]) -> dict[str, Any]:
    """A GeoJSON Feature schema of one unit (id = its code) with these ``properties``."""
    return {
        "type": "object",
        "required": ["type", "id", "geometry", "properties"],
        "properties": {
            "type": {"const": "Feature"},
            "id": {"type": "string", "description": "The unit code"},
            "geometry": {"oneOf": [_ref("Geometry"), {"type": "null"}]},
            "properties": properties,
        },
    }


FEATURE = unit_feature({"allOf": [_ref("Unit")], "description":
                        "The unit; households add service_area as a GeoJSON geometry"})


def feature_collection(feature: str, **extra: Any) -> dict[str, Any]:
    """A FeatureCollection schema whose features are ``feature``, plus ``extra`` members."""
    return {
        "type": "object",
        "required": ["type", "features", "numberMatched", "numberReturned"],
        "properties": {
            "type": {"const": "FeatureCollection"},
            "features": {"type": "array", "items": _ref(feature)},
            "numberMatched": {"type": "integer"},
            "numberReturned": {"type": "integer"},
            "links": {"type": "array", "items": _ref("Link")},
            **extra,
        },
    }


FEATURE_COLLECTION = feature_collection("Feature")


def plain_feature_collection(properties: dict[str, Any]) -> dict[str, Any]:
    """An unpaged FeatureCollection whose features carry ``properties`` (a schema)."""
    return {
        "type": "object",
        "required": ["type", "features"],
        "properties": {
            "type": {"const": "FeatureCollection"},
            "features": {"type": "array", "items": {
                "type": "object",
                "required": ["type", "geometry", "properties"],
                "properties": {"type": {"const": "Feature"}, "geometry": _ref("Geometry"),
                               "properties": properties},
            }},
        },
    }

UNIT_PAGE = {
    "type": "object",
    "required": ["items", "total", "limit", "offset", "links"],
    "properties": {
        "items": {"type": "array", "items": _ref("Unit")},
        "total": {"type": "integer"},
        "limit": {"type": "integer"},
        "offset": {"type": "integer"},
        "links": {
            "type": "object",
            "required": ["self", "next", "prev"],
            "properties": {"self": {"type": "string"}, "next": NULLABLE_STR,
                           "prev": NULLABLE_STR},
        },
    },
}

PROBLEM_SCHEMA = {
    "type": "object",
    "description": "RFC 9457 problem details; extension members such as field, code or "
                   "report (the validation report) may follow",
    "required": ["type", "title", "status", "detail", "instance"],
    "properties": {
        "type": {"type": "string", "description": "/problems/<slug>, a page describing it"},
        "title": {"type": "string"},
        "status": {"type": "integer"},
        "detail": {"type": "string"},
        "instance": {"type": "string"},
        "field": {"type": "string", "description": "The parameter or field at fault"},
        "code": {"type": "string"},
        "report": _ref("Report"),
        "setting": {"type": "string", "description": "413, 429: the variable that sets the "
                                                     "limit passed, e.g. GRIDSVC_MAX_JSON_MB"},
        "limit_bytes": {"type": "integer", "description": "payload-too-large: the limit"},
        "limit": {"type": "integer", "description": "archive-too-large: the setting's value"},
        "entry": {"type": "string", "description": "archive-too-large: the zip entry at fault"},
        "rate": {"type": "string", "description": "rate-limited: e.g. '120 per 1 minute'"},
        "retry_after": {"type": "integer", "description": "rate-limited: seconds to wait"},
    },
}

LEVELS = {
    "type": "object",
    "required": ["levels"],
    "properties": {"levels": {"type": "array", "items": {
        "type": "object",
        "required": ["level", "key", "name", "geometry"],
        "properties": {"level": {"type": "integer"}, "key": {"type": "string"},
                       "name": {"type": "string"}, "geometry": {"enum": ["polygon", "point"]}},
    }}},
}

def _paths() -> dict[str, Any]:
    fc = _json("FeatureCollection")
    return {
        "/api/v1/levels": {"get": {
            "summary": "The levels of the hierarchy (configurable names)",
            "operationId": "levels",
            "responses": {"200": _ok("The levels", **{JSON: _json("Levels")})},
        }},
        "/api/v1/openapi.json": {"get": {
            "summary": "This document", "operationId": "openapi",
            "responses": {"200": _ok("OpenAPI 3.1", **{JSON: {"schema": {"type": "object"}}})},
        }},
        "/api/v1/units": {"get": {
            "summary": "List units, filtered and paged, ordered by code",
            "description": READ_NOTE + " `parent` may name a unit above the subtree's root "
                           "(its children are then limited to the subtree).",
            "operationId": "listUnits",
            "parameters": [
                _param("level", "Level number or key (e.g. 2 or community)",
                       {"type": "string"}),
                _param("parent", "Only the children of this unit code", {"type": "string"}),
                _param("bbox", "minlon,minlat,maxlon,maxlat (wgs84); units intersecting it",
                       {"type": "string"}),
                _param("bbox-crs", "CRS of bbox: wgs84 (default) or cgcs2000; gcj02 and "
                       "bd09 are refused for now", {"type": "string"}),
                _param("q", "Name contains, or code starts with, this text",
                       {"type": "string"}),
                _param("limit", "Page size", {"type": "integer", "minimum": 1,
                                              "maximum": 1000, "default": 100}),
                _param("offset", "Items to skip", {"type": "integer", "minimum": 0,
                                                   "default": 0}),
                FORMAT, WITH_GEOMETRY,
            ],
            "responses": {
                "200": _ok("A page of units", **{JSON: _json("UnitPage"), GEOJSON: fc}),
                **_problems(400, 401, 403, 404),
            },
        }},
        "/api/v1/units/{code}": {"get": {
            "summary": "One unit with its ancestors and counts below it",
            "description": READ_NOTE + " The ancestors are listed even above the subtree "
                           "(code, name and level only).",
            "operationId": "getUnit",
            "parameters": [CODE, FORMAT, WITH_GEOMETRY],
            "responses": {
                "200": _ok("The unit", **{JSON: _json("UnitDetail"),
                                          GEOJSON: _json("UnitDetailFeature")}),
                **_problems(400, 401, 403, 404),
            },
        }},
        "/api/v1/units/{code}/children": {"get": {
            "summary": "The unit's direct children, ordered by code",
            "description": READ_NOTE + " A unit above the subtree's root lists only its "
                           "children inside the subtree.",
            "operationId": "getChildren",
            "parameters": [CODE, FORMAT, WITH_GEOMETRY],
            "responses": {
                "200": _ok("The children", **{JSON: _json("UnitList"), GEOJSON: fc}),
                **_problems(400, 401, 403, 404),
            },
        }},
        "/api/v1/units/{code}/subtree": {"get": {
            "summary": "The unit and everything below it, parents first",
            "description": READ_NOTE,
            "operationId": "getSubtree",
            "parameters": [CODE, MAX_LEVEL],
            "responses": {"200": _ok("The subtree", **{GEOJSON: fc}),
                          **_problems(400, 401, 403, 404)},
        }},
        "/api/v1/tree/subtree": {"get": {
            "summary": "The whole tree (a scoped token's subtree), parents first",
            "description": READ_NOTE,
            "operationId": "getTree",
            "parameters": [MAX_LEVEL],
            "responses": {"200": _ok("The tree", **{GEOJSON: fc}), **_problems(400, 401, 403)},
        }},
    }


def _problem_response(description: str, retry_after: bool = False) -> dict[str, Any]:
    response = {"description": description, "content": _content(PROBLEM, _ref("Problem"))}
    if retry_after:
        response["headers"] = {"Retry-After": {"description": "Seconds to wait before retrying",
                                               "schema": {"type": "integer", "minimum": 1}}}
    return response


# Resources documented in modules of their own: each has ``PATHS`` and ``SCHEMAS`` dicts
# (and may use the helpers above). Add a module here when adding a blueprint.
RESOURCE_DOCS: list[str] = [
    "gridsvc.web.openapi_boundaries", "gridsvc.web.openapi_coverage",
    "gridsvc.web.openapi_lookup", "gridsvc.web.openapi_members", "gridsvc.web.openapi_editor",
    "gridsvc.web.openapi_maps", "gridsvc.web.openapi_audit", "gridsvc.web.openapi_loop",
]


def openapi_document() -> dict[str, Any]:
    doc = _base_document()
    for name in RESOURCE_DOCS:
        module = importlib.import_module(name)
        doc["paths"].update(module.PATHS)
        doc["components"]["schemas"].update(module.SCHEMAS)
    doc["components"]["securitySchemes"] = {"bearerToken": {
        "type": "http", "scheme": "bearer",
        "description": "An API token made by 'gridsvc token create' (role admin, planner, "
                       "staff or member; planner and staff tokens are scoped to a subtree). "
                       "A browser signed in at /session sends it as the gridsvc_token cookie "
                       "instead; with the cookie, any method but GET and HEAD also needs the "
                       "page's CSRF token as X-CSRF-Token (or form field csrf_token).",
    }}
    for operations in doc["paths"].values():
        for operation in operations.values():
            if "401" in operation.get("responses", {}):  # the endpoints that need a token
                operation.setdefault("security", [{"bearerToken": []}])
    return add_edge_answers(doc)  # 400, 413, 429, 503 where they may come


def _base_document() -> dict[str, Any]:
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "gridsvc",
            "version": "1",
            "description": "The five-level organisation tree (street, community, grid, "
                           "building, household) as JSON and GeoJSON, and boundary import, "
                           "validation and export. Coordinates are wgs84. Errors are "
                           "application/problem+json with type /problems/<slug>.",
        },
        "jsonSchemaDialect": "https://json-schema.org/draft/2020-12/schema",
        "paths": _paths(),
        "components": {
            "schemas": {
                "Geometry": GEOMETRY,
                "Unit": UNIT,
                "UnitDetail": {"allOf": [_ref("Unit")], "type": "object",
                               "required": ["ancestors", "children", "descendants"],
                               "properties": TREE_POSITION},
                "UnitDetailFeature": {"allOf": [_ref("Feature")], "type": "object",
                                      "properties": {"properties": {
                                          "type": "object",
                                          "required": ["ancestors", "children", "descendants"],
                                          "properties": TREE_POSITION}}},
                "UnitPage": UNIT_PAGE,
                "UnitList": {"type": "object", "required": ["items"],
                             "properties": {"items": {"type": "array", "items": _ref("Unit")}}},
                "Link": LINK,
                "Feature": FEATURE,
                "FeatureCollection": FEATURE_COLLECTION,
                "Problem": PROBLEM_SCHEMA,
                "Levels": LEVELS,
            },
            "responses": {
                "BadRequest": _problem_response("A parameter or field is invalid; "
                                                "`field` names it"),
                "NotFound": _problem_response("No unit with that code (or none in the "
                                              "token's subtree)"),
                "Unauthorized": _problem_response(
                    "No token, or one that is unknown, revoked or expired "
                    "(/problems/unauthorized; WWW-Authenticate: Bearer)"),
                "Forbidden": _problem_response(
                    "The token's role may not do this, or the change reaches outside its "
                    "subtree (/problems/forbidden)"),
                "PayloadTooLarge": _problem_response(
                    "The body exceeds GRIDSVC_MAX_UPLOAD_MB (multipart upload) or "
                    "GRIDSVC_MAX_JSON_MB (any other body), or an uploaded zip would unpack "
                    "past GRIDSVC_ZIP_MAX_* (/problems/archive-too-large)"),
                "TooManyRequests": _problem_response(
                    "More requests from this client than its rate limit allows: "
                    "GRIDSVC_LOOKUP_RATE_LIMIT, GRIDSVC_REGISTRATION_RATE_LIMIT or "
                    "GRIDSVC_MEMBERS_RATE_LIMIT, named in `setting` (/problems/rate-limited)",
                    retry_after=True),
                "Unavailable": _problem_response(
                    "The database cannot be reached or is busy "
                    "(/problems/database-unavailable)", retry_after=True),
                "ValidationFailed": _problem_response("The file has validation errors; "
                                                      "`report` lists them; nothing stored"),
            },
        },
    }

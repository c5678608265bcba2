"""OpenAPI paths and schemas of the planner's boundary edits (gridsvc.web.editor), listed in
openapi.RESOURCE_DOCS."""

from __future__ import annotations

from typing import Any

from gridsvc.web.openapi import CODE, JSON, _json, _ok, _problems, _ref, plain_feature_collection
from gridsvc.web.openapi_members import _problem

PLANNER_NOTE = (" Needs a token that may edit boundaries (admin, planner); the unit must lie "
                "in a planner's subtree (403 otherwise).")

GEOMETRY_BODY = {
    "required": True,
    "description": "The new geometry in wgs84 (RFC 7946): a GeoJSON Polygon or MultiPolygon "
                   "(a Point for a 党员中心户), or a Feature holding one.",
    "content": {JSON: {"schema": {"oneOf": [
        _ref("Geometry"),
        {"type": "object", "required": ["type", "geometry"],
         "properties": {"type": {"const": "Feature"}, "geometry": _ref("Geometry")}},
    ]}}},
}

IF_MATCH = {
    "name": "If-Match", "in": "header", "required": True,
    "description": "The unit's ETag as loaded (\"<code>-<version>\", from GET "
                   "/api/v1/units/{code}); '*' is not accepted.",
    "schema": {"type": "string"},
}

PROBLEM_FEATURES = {
    "type": "object",
    "description": "The report's problems that have a place (overlap, gap, outside part, or "
                   "a point), as GeoJSON features in wgs84; properties are the problem's fields",
    **plain_feature_collection(_ref("ReportProblem")),
}

EDIT_CHECK = {
    "type": "object",
    "required": ["code", "version", "ok", "report", "moves", "problem_features"],
    "properties": {
        "code": {"type": "string"},
        "version": {"type": "integer", "description": "The stored version now; if it differs "
                                                      "from the one you loaded, a save will "
                                                      "get 412"},
        "ok": {"type": "boolean", "description": "No errors: a save would be accepted"},
        "report": _ref("Report"),
        "moves": {"type": "array", "items": _ref("Move"),
                  "description": "Members (masked name, id) and 党员中心户 whose chain would "
                                 "change"},
        "problem_features": PROBLEM_FEATURES,
    },
}

EDIT_SAVED = {
    "type": "object",
    "required": ["unit", "version", "revision", "report", "moves"],
    "properties": {
        "unit": _ref("Unit"),
        "version": {"type": "integer", "description": "The new version (also in the ETag)"},
        "revision": {"type": ["integer", "null"],
                     "description": "The boundary revision after the change; null when the "
                                    "geometry was unchanged"},
        "report": _ref("Report"),
        "moves": {"type": "array", "items": _ref("Move"),
                  "description": "Members and 党员中心户 whose chain changed"},
    },
}

PATHS: dict[str, Any] = {
    "/api/v1/units/{code}/geometry/check": {"post": {
        "summary": "Check a new geometry for a unit: failing rules and who would move",
        "description": "The same rules as a boundary import (overlapping siblings, outside "
                       "the parent, children left outside, gaps), against the stored tree. "
                       "Never stores." + PLANNER_NOTE,
        "operationId": "checkUnitGeometry",
        "parameters": [CODE],
        "requestBody": GEOMETRY_BODY,
        "responses": {
            "200": _ok("The report and the preview; ok is false when a rule fails",
                       **{JSON: _json("EditCheck")}),
            **_problems(400, 401, 403, 404),
        },
    }},
    "/api/v1/units/{code}/geometry": {"put": {
        "summary": "Store a new geometry for a unit, unless someone else saved it first",
        "description": "Validated like the check; members and 党员中心户 are reassigned in the "
                       "same transaction. The response's ETag is the new version."
                       + PLANNER_NOTE,
        "operationId": "saveUnitGeometry",
        "parameters": [CODE, IF_MATCH],
        "requestBody": GEOMETRY_BODY,
        "responses": {
            "200": {**_ok("Stored: the unit with its new version and the moves applied",
                          **{JSON: _json("EditSaved")}),
                    "headers": {"ETag": {"description": "\"<code>-<version>\"",
                                         "schema": {"type": "string"}}}},
            **_problems(400, 401, 403, 404, 422),
            "412": _problem("The unit changed since it was loaded: another planner saved "
                            "first; nothing stored (/problems/precondition-failed)"),
            "428": _problem("If-Match is missing (/problems/precondition-required)"),
        },
    }},
}

SCHEMAS: dict[str, Any] = {"EditCheck": EDIT_CHECK, "EditSaved": EDIT_SAVED}

"""OpenAPI paths and schemas of boundary files: validate, import and export (listed in
openapi.RESOURCE_DOCS)."""

from __future__ import annotations

from typing import Any

from gridsvc.web.openapi import (
    EDIT_NOTE,
    GEOJSON,
    JSON,
    NULLABLE_STR,
    READ_NOTE,
    UNIT_QUERY,
    WITH_GEOMETRY,
    _json,
    _ok,
    _param,
    _problems,
    _ref,
    plain_feature_collection,
)

REPORT_PROBLEM = {
    "type": "object",
    "required": ["severity", "rule", "message"],
    "properties": {
        "severity": {"enum": ["error", "warning", "info"]},
        "rule": {"type": "string", "description": "Stable rule id, e.g. overlapping-siblings"},
        "message": {"type": "string"},
        "code": {"type": "string"},
        "row": {"type": "integer", "description": "1-based feature number in its layer"},
        "layer": {"type": "string"},
        "field": {"type": "string"},
        "location": {
            "type": "object",
            "required": ["lon", "lat", "coordsys"],
            "properties": {"lon": {"type": "number"}, "lat": {"type": "number"},
                           "coordsys": {"const": "wgs84"}},
        },
        "area_m2": {"type": "number"},
        "other_code": {"type": "string"},
        "geometry_wkt": {"type": "string", "description": "Only with geometry=1"},
    },
}

REPORT = {
    "type": "object",
    "required": ["ok", "features", "errors", "warnings", "repaired", "problems"],
    "properties": {
        "ok": {"type": "boolean"},
        "features": {"type": "integer"},
        "errors": {"type": "integer"},
        "warnings": {"type": "integer"},
        "repaired": {"type": "integer"},
        "problems": {"type": "array", "items": _ref("ReportProblem")},
    },
}

IMPORT_OUTCOME = {
    "type": "object",
    "required": ["stored", "dry_run", "created", "updated", "unchanged", "revision", "report"],
    "properties": {
        "stored": {"type": "boolean"},
        "dry_run": {"type": "boolean"},
        "created": {"type": "integer"},
        "updated": {"type": "integer"},
        "unchanged": {"type": "integer"},
        "revision": {"type": ["integer", "null"],
                     "description": "The boundary revision after a change, else null"},
        "report": _ref("Report"),
        "moves": {"type": "array", "items": _ref("Move"),
                  "description": "Members and households whose chain changes (on a dry run: "
                                 "would change)"},
    },
}

MOVE = {
    "type": "object",
    "required": ["subject", "id", "label", "from", "to", "fallback"],
    "properties": {
        "subject": {"enum": ["member", "household"]},
        "id": {"type": "integer"},
        "label": {"type": "string", "description": "Masked member name, or household name"},
        "from": {"type": "array", "items": {"type": "string"},
                 "description": "Chain of unit codes before, root first"},
        "to": {"type": "array", "items": {"type": "string"}},
        "from_household": NULLABLE_STR,
        "to_household": NULLABLE_STR,
        "fallback": {"type": "boolean"},
        "distance_m": {"type": "number"},
    },
}


UPLOAD = {
    "required": True,
    "content": {"multipart/form-data": {"schema": {
        "type": "object",
        "required": ["file"],
        "properties": {
            "file": {"type": "string", "contentMediaType": "application/octet-stream",
                     "description": ".geojson, .json, .gpkg or .zip (a zipped Shapefile)"},
            "encoding": {"type": "string", "description": "Attribute encoding, e.g. gbk"},
            "crs": {"type": "string", "description": "CRS when the file declares none, "
                                                     "e.g. EPSG:4527"},
            "repair": {"type": "string", "enum": ["0", "1", "true", "false"]},
            "map": {"type": "string", "description":
                    'JSON object {schema_field: column}, e.g. {"code": "编码"}'},
            "dry_run": {"type": "string", "enum": ["0", "1", "true", "false"],
                        "description": "Import only: validate without storing"},
            "geometry": {"type": "string", "enum": ["0", "1", "true", "false"],
                         "description": "Add each problem's shape (WKT) to the report"},
        },
    }}},
}

BINARY = {"type": "string", "contentMediaType": "application/octet-stream"}

BOUNDARY_FILE = {
    "type": "object",
    "description": "A boundary file in the interchange schema of boundaries/SCHEMA.md, "
                   "wgs84; it imports back unchanged",
    **plain_feature_collection({
        "type": "object", "required": ["code", "name", "level"],
        "properties": {"code": {"type": "string"}, "name": {"type": "string"},
                       "level": {"type": ["integer", "string"]}, "parent_code": NULLABLE_STR},
    }),
}


PATHS: dict[str, Any] = {
    "/api/v1/boundaries/validate": {
        "post": {
            "summary": "Validate an uploaded boundary file against the stored tree; "
                       "never stores",
            "description": READ_NOTE + " Every feature must lie in the token's subtree, "
                           "else 403 naming them.",
            "operationId": "validateUpload",
            "requestBody": UPLOAD,
            "responses": {"200": _ok("The report; ok is false when there are errors",
                                     **{JSON: _json("Report")}),
                          **_problems(400, 401, 403, 413)},
        },
        "get": {
            "summary": "Validate the stored tree or a subtree",
            "description": READ_NOTE,
            "operationId": "validateStored",
            "parameters": [UNIT_QUERY, WITH_GEOMETRY],
            "responses": {"200": _ok("The report", **{JSON: _json("Report")}),
                          **_problems(400, 401, 403, 404)},
        },
    },
    "/api/v1/boundaries/import": {"post": {
        "summary": "Validate and import a boundary file in one transaction",
        "description": "All or nothing. Re-importing the same file changes nothing. "
                       + EDIT_NOTE,
        "operationId": "importUpload",
        "requestBody": UPLOAD,
        "responses": {
            "201": _ok("Units were created or updated", **{JSON: _json("ImportOutcome")}),
            "200": _ok("Nothing changed, or a dry run", **{JSON: _json("ImportOutcome")}),
            **_problems(400, 401, 403, 413, 422),
        },
    }},
    "/api/v1/boundaries/export": {"get": {
        "summary": "Download the tree or a subtree as a boundary file",
        "description": READ_NOTE,
        "operationId": "export",
        "parameters": [
            UNIT_QUERY,
            _param("format", "geojson (default), gpkg or shp (a zipped Shapefile)",
                   {"type": "string", "enum": ["geojson", "gpkg", "shp"]}),
        ],
        "responses": {
            "200": _ok("The file, as an attachment", **{
                GEOJSON: _json("BoundaryFile"),
                "application/geopackage+sqlite3": {"schema": BINARY},
                "application/zip": {"schema": BINARY},
            }),
            **_problems(400, 401, 403, 404),
        },
    }},
}

SCHEMAS: dict[str, Any] = {
    "ReportProblem": REPORT_PROBLEM,
    "Report": REPORT,
    "ImportOutcome": IMPORT_OUTCOME,
    "Move": MOVE,
    "BoundaryFile": BOUNDARY_FILE,
}

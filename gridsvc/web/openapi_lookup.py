"""OpenAPI paths and schemas of the lookup API and the gazetteer import (listed in
openapi.RESOURCE_DOCS)."""

from __future__ import annotations

from typing import Any

from gridsvc.spatial.coordsys import COORDSYS
from gridsvc.web.openapi import (
    JSON,
    NULLABLE_STR,
    PROBLEM,
    _json,
    _ok,
    _param,
    _problems,
    _ref,
)


def _problem(description: str) -> dict[str, Any]:
    return {"description": description, "content": {PROBLEM: {"schema": _ref("Problem")}}}


POINT = {
    "type": "object",
    "required": ["lon", "lat", "coordsys"],
    "properties": {"lon": {"type": "number"}, "lat": {"type": "number"},
                   "coordsys": {"const": "wgs84"}},
}

CHAIN_ENTRY = {
    "type": "object",
    "description": "A unit with its public contact (the leader's name and phone, posted in "
                   "the building); never any member's data",
    "required": ["level", "level_key", "level_name", "code", "name", "contact"],
    "properties": {
        "level": {"type": "integer", "minimum": 1},
        "level_key": {"type": "string"},
        "level_name": {"type": "string"},
        "code": {"type": "string"},
        "name": {"type": "string"},
        "contact": {"type": ["object", "null"], "required": ["name", "phone"],
                    "properties": {"name": NULLABLE_STR, "phone": NULLABLE_STR},
                    "description": "null where the caller may not have it: every contact in "
                                   "a public batch, a 党员中心户 head's unless the token may "
                                   "read the members of its subtree"},
    },
}

RULE = {"enum": ["area", "unit", "building", "grid"], "description":
        "The household rule that chose it: area (its service area covers the point), unit "
        "(it covers the address's 单元), building (nearest in the building), grid (nearest in "
        "the grid within GRIDSVC_HOUSEHOLD_RADIUS_M)"}

MATCH = {
    "type": "object",
    "required": ["method", "coordsys", "score", "level", "fallback", "distance_m"],
    "properties": {
        "method": {"enum": ["point", "address"]},
        "coordsys": {"enum": list(COORDSYS), "description": "The system the input was in"},
        "score": {"type": "number", "minimum": 0, "maximum": 1},
        "level": {"type": "string", "description": "point, or the address match level "
                                                   "(building or door)"},
        "address": {"type": "string", "description": "The gazetteer address matched"},
        "fallback": {"const": False, "description": "Lookups never fall back to a nearby "
                                                    "unit"},
        "distance_m": {"type": "number"},
    },
}

LOOKUP_RESULT = {
    "type": "object",
    "required": ["chain", "household", "point", "match"],
    "properties": {
        "chain": {"type": "array", "items": _ref("ChainEntry"),
                  "description": "Root first: street, community, grid, building"},
        "household": {"oneOf": [
            {"allOf": [_ref("ChainEntry")], "type": "object", "required": ["rule"],
             "properties": {"rule": RULE}},
            {"type": "null"}], "description": "The responsible 党员中心户, or null (a gap)"},
        "point": POINT,
        "match": MATCH,
    },
}

COMPACT_RESULT = {
    "type": "object",
    "required": ["chain", "household", "point", "match"],
    "properties": {
        "chain": {"type": "array", "items": {"type": "string"},
                  "description": "Unit codes, root first; described in the response's units"},
        "household": {"oneOf": [
            {"type": "object", "required": ["code", "rule"],
             "properties": {"code": {"type": "string"}, "rule": RULE}},
            {"type": "null"}]},
        "point": POINT,
        "match": MATCH,
    },
}

BATCH_ITEM = {
    "oneOf": [
        {"type": "object", "required": ["lon", "lat", "coordsys"],
         "properties": {"lon": {"type": "number"}, "lat": {"type": "number"},
                        "coordsys": {"enum": list(COORDSYS)}}},
        {"type": "object", "required": ["address"],
         "properties": {"address": {"type": "string"},
                        "district": {"type": "string",
                                     "description": "Fills in a missing district"}}},
    ],
}

BATCH_ANSWER = {
    "type": "object",
    "required": ["results"],
    "properties": {
        "results": {"type": "array", "description": "One per item, in order", "items": {
            "oneOf": [
                {"type": "object", "required": ["index", "result"],
                 "properties": {"index": {"type": "integer"},
                                "result": {"oneOf": [_ref("LookupResult"),
                                                     _ref("CompactLookupResult")]}}},
                {"type": "object", "required": ["index", "problem"],
                 "properties": {"index": {"type": "integer"},
                                "problem": {"type": "object",
                                            "required": ["type", "title", "status", "detail"],
                                            "description": "A problem document, as the "
                                            "single lookup would answer"}}},
            ]}},
        "units": {"type": "object", "additionalProperties": _ref("ChainEntry"),
                  "description": "compact=1 only: code -> unit, for every code named"},
    },
}

def _column(description: str, items: dict[str, Any]) -> dict[str, Any]:
    return {"type": "array", "items": items, "description": description}


NUMBER = {"type": "number"}

BATCH_COLUMNS = {
    "type": "object",
    "description": "format=columns: the same content as the results form, as parallel arrays",
    "required": ["format", "count", "columns", "units", "levels", "problems"],
    "properties": {
        "format": {"const": "columns"},
        "count": {"type": "integer", "description": "Items in the request"},
        "columns": {
            "type": "object",
            "description": "One position per located item, in item order; every array has "
                           "the same length",
            "required": ["index", "unit", "household", "rule", "lon", "lat", "coordsys",
                         "method", "score", "level", "address", "fallback", "distance_m"],
            "properties": {
                "index": _column("The item's position in the request", {"type": "integer"}),
                "unit": _column("The micro-grid's code: the chain's last entry (follow "
                                "parent in units for the rest)", {"type": "string"}),
                "household": _column("The responsible 党员中心户's code, or null (a gap)",
                                     NULLABLE_STR),
                "rule": _column("The household rule, or null", {"oneOf": [RULE,
                                                                          {"type": "null"}]}),
                "lon": _column("The wgs84 point used, 7 decimals", NUMBER),
                "lat": _column("The wgs84 point used, 7 decimals", NUMBER),
                "coordsys": _column("The system the input was in", {"enum": list(COORDSYS)}),
                "method": _column("point or address", {"enum": ["point", "address"]}),
                "score": _column("As match.score", NUMBER),
                "level": _column("As match.level", {"type": "string"}),
                "address": _column("The gazetteer address matched; null for points",
                                   NULLABLE_STR),
                "fallback": _column("As match.fallback (never true for lookups)",
                                    {"type": "boolean"}),
                "distance_m": _column("As match.distance_m", NUMBER),
            },
        },
        "problems": {"type": "array", "description": "The items that failed, in item order",
                     "items": {"type": "object", "required": ["index", "problem"],
                               "properties": {"index": {"type": "integer"},
                                              "problem": {"type": "object"}}}},
        "units": {
            "type": "object",
            "description": "Every unit the located items name (micro-grids, households and "
                           "their ancestors), each once, as a table",
            "required": ["fields", "rows"],
            "properties": {
                "fields": {"const": ["code", "parent", "level", "name", "leader", "phone"],
                           "description": "parent: the parent's code, null for a root (follow "
                                          "it up from unit for the chain); level: see levels; "
                                          "leader and phone: the public contact, null "
                                          "where the caller may not have it"},
                "rows": {"type": "array", "items": {
                    "type": "array", "minItems": 6, "maxItems": 6,
                    "prefixItems": [{"type": "string"}, NULLABLE_STR, {"type": "integer"},
                                    {"type": "string"}, NULLABLE_STR, NULLABLE_STR]}},
            },
        },
        "levels": {"type": "array", "description": "The levels of the hierarchy, as "
                                                   "/api/v1/levels lists them",
                   "items": {"type": "object", "required": ["level", "key", "name"]}},
    },
}


GAZETTEER_IMPORT = {
    "type": "object",
    "required": ["stored", "rejected", "problems"],
    "properties": {
        "stored": {"type": "integer", "description": "Entries stored; they replace the "
                                                     "entries of an earlier upload of the "
                                                     "same file name. 0: nothing changed"},
        "rejected": {"type": "integer", "description": "Rows with problems, not stored"},
        "problems": {"type": "array", "items": _ref("ReportProblem")},
    },
}

NOT_COVERED_OR_UNRESOLVED = _problem(
    "Not covered (/problems/not-covered, with `nearest` {code, name, distance_m, fallback} or "
    "null) or address not resolved (/problems/address-not-resolved, with `match_status` and "
    "`candidates`)")

PATHS: dict[str, Any] = {
    "/api/v1/lookup": {"get": {
        "summary": "Which grid do I report to: the chain of units for a point or an address",
        "description": "Give either lon, lat and coordsys, or address. A point in no "
                       "micro-grid is never assigned: it is a 404 naming the nearest.",
        "operationId": "lookup",
        "parameters": [
            _param("lon", "Longitude, in coordsys", {"type": "number"}),
            _param("lat", "Latitude, in coordsys", {"type": "number"}),
            _param("coordsys", "Required with lon/lat", {"enum": list(COORDSYS)}),
            _param("address", "A home address, e.g. 崇川区桃坞路96号彩虹名邸3栋2单元301",
                   {"type": "string"}),
            _param("district", "With address: the district when the address lacks it",
                   {"type": "string"}),
        ],
        "responses": {
            "200": _ok("The chain, household, point and match",
                       **{JSON: _json("LookupResult")}),
            **_problems(400, 429),
            "404": NOT_COVERED_OR_UNRESOLVED,
        },
    }},
    "/api/v1/lookup/batch": {"post": {
        "summary": "Many lookups at once; one bad item never fails the batch",
        "description": "A JSON list of at most GRIDSVC_BATCH_LIMIT items (default 10,000). "
                       "Points are converted and located together (hundreds of thousands "
                       "a second); addresses are matched one by one. format=columns answers "
                       "parallel arrays, the fastest form for big point batches.",
        "operationId": "lookupBatch",
        "parameters": [
            _param("compact", "Chains as lists of codes, households as {code, rule}, and each "
                   "unit described once in units (format=results only)",
                   {"type": "string", "enum": ["0", "1", "true", "false"]}),
            _param("format", "results (default): one entry per item; columns: parallel arrays "
                   "per located item (index, unit, household, rule, lon, lat, coordsys, "
                   "method, score, level, address, fallback, distance_m), the failed items in "
                   "problems, and each unit named once in the units table (code, parent, "
                   "level, name, leader, phone)",
                   {"type": "string", "enum": ["results", "columns"]}),
        ],
        "requestBody": {"required": True, "content": {JSON: {"schema": {
            "type": "array", "items": BATCH_ITEM,
            "description": "At most GRIDSVC_BATCH_LIMIT items (default 10,000)"}}}},
        "responses": {
            "200": _ok("One answer per item", **{JSON: {"schema": {"oneOf": [
                _ref("LookupBatch"), _ref("LookupBatchColumns")]}}}),
            **_problems(400, 413, 429),
        },
    }},
    "/api/v1/gazetteer/import": {"post": {
        "summary": "Admin: import standard addresses (CSV or GeoJSON points)",
        "description": "Columns address, lon, lat, coordsys (GeoJSON points default to "
                       "wgs84), optional district and unit_code. The address list is "
                       "city-wide: needs an admin token.",
        "operationId": "importGazetteer",
        "requestBody": {"required": True, "content": {"multipart/form-data": {"schema": {
            "type": "object", "required": ["file"],
            "properties": {"file": {"type": "string",
                                    "contentMediaType": "application/octet-stream",
                                    "description": ".csv (UTF-8 or GB18030) or .geojson"}},
        }}}},
        "responses": {
            "200": _ok("The report", **{JSON: _json("GazetteerImport")}),
            **_problems(400, 401, 403, 413),
        },
    }},
}

SCHEMAS: dict[str, Any] = {
    "ChainEntry": CHAIN_ENTRY,
    "LookupResult": LOOKUP_RESULT,
    "CompactLookupResult": COMPACT_RESULT,
    "LookupBatch": BATCH_ANSWER,
    "LookupBatchColumns": BATCH_COLUMNS,
    "GazetteerImport": GAZETTEER_IMPORT,
}

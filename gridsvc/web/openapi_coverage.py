"""OpenAPI paths and schemas of the coverage API (listed in openapi.RESOURCE_DOCS)."""

from __future__ import annotations

from typing import Any

from gridsvc.services.coverage import COUNTS, SORTS
from gridsvc.web.openapi import (
    GEOJSON,
    JSON,
    NULLABLE_STR,
    READ_NOTE,
    UNIT_IDENTITY,
    UNIT_IDENTITY_REQUIRED,
    _json,
    _ok,
    _param,
    _problems,
    _ref,
    feature_collection,
    unit_feature,
)

_COUNT_DOCS = {
    "assigned": "Members with status assigned whose building lies in the subtree",
    "needs_confirmation": "Members with status needs-confirmation whose (tentative) building "
                          "lies in the subtree",
    "buildings": "Micro-grids (building units) in the subtree",
    "grids": "Grids (the level above the micro-grid) in the subtree",
    "buildings_households_unknown": "Micro-grids with no households figure",
    "buildings_without_leader": "Buildings with no Party group leader (楼栋党小组组长)",
    "grids_without_secretary": "Grids with no branch secretary (支部书记)",
    "buildings_without_member": "Micro-grids with no assigned member",
    "buildings_without_household": "Buildings with no 党员中心户 unit under them",
    "homes_without_household": "Assigned members' homes with no responsible 党员中心户",
}

FIGURES = {
    "households": {"type": ["integer", "null"], "minimum": 0,
                   "description": "Sum of the micro-grids' households; null when none below "
                                  "has a figure"},
    "members": {"type": "integer", "minimum": 0, "description": "Resident members (= assigned)"},
    "members_per_100": {"type": ["number", "null"], "minimum": 0, "description":
                        "Assigned members per 100 households over micro-grids with a known "
                        "households figure, one decimal; null when those households are 0"},
    **{name: {"type": "integer", "minimum": 0, "description": _COUNT_DOCS[name]}
       for name in COUNTS},
    "gaps": {"type": "integer", "minimum": 0,
             "description": "Sum of the five *_without_* figures"},
}

COVERAGE_ITEM = {
    "type": "object",
    "description": "A unit of levels street..building with its figures (counts only, no "
                   "personal data); each figure covers the unit's whole subtree",
    "required": [*UNIT_IDENTITY_REQUIRED, *FIGURES],
    "properties": {
        **UNIT_IDENTITY,
        **FIGURES,
    },
}

SUMMARY = {
    "type": "object",
    "description": "The figures of all matched units together (not only this page)",
    "required": list(FIGURES),
    "properties": FIGURES,
}

COVERAGE_FEATURE = unit_feature({"allOf": [_ref("CoverageItem")], "type": "object", "properties": {
    "role": {"enum": ["unit", "child"],
             "description": "With ?unit=: the unit itself or one of its children"}}})

COVERAGE_COLLECTION = feature_collection("CoverageFeature", summary=_ref("CoverageSummary"))

UNIT_COVERAGE = {
    "type": "object",
    "required": ["unit", "children"],
    "properties": {
        "unit": _ref("CoverageItem"),
        "children": {"type": "array", "items": _ref("CoverageItem"),
                     "description": "Direct children (area levels only), by code"},
    },
}

COVERAGE_PAGE = {
    "type": "object",
    "required": ["items", "total", "limit", "offset", "summary", "links"],
    "properties": {
        "items": {"type": "array", "items": _ref("CoverageItem")},
        "total": {"type": "integer"},
        "limit": {"type": "integer"},
        "offset": {"type": "integer"},
        "summary": _ref("CoverageSummary"),
        "links": {
            "type": "object",
            "required": ["self", "next", "prev"],
            "properties": {"self": {"type": "string"}, "next": NULLABLE_STR,
                           "prev": NULLABLE_STR},
        },
    },
}


def _parameters() -> list[dict[str, Any]]:
    text = {"type": "string"}
    return [
        _param("unit", "A unit code: its figures and each child's. Not combinable with "
               "level, parent, sort or order", text),
        _param("level", "Level number or key (street, community, grid, building) to list; "
               "default 1 when unit is not given either", text),
        _param("parent", "With level: only units under this unit code", text),
        _param("sort", "code (default, ascending), members_per_100 (lowest first) or gaps "
               "(most first); nulls last, ties by code", {"enum": list(SORTS)}),
        _param("order", "Override the sort's default direction", {"enum": ["asc", "desc"]}),
        _param("limit", "Page size", {"type": "integer", "minimum": 1, "maximum": 1000,
                                      "default": 100}),
        _param("offset", "Items to skip", {"type": "integer", "minimum": 0, "default": 0}),
        _param("f", "Response format; overrides the Accept header",
               {"type": "string", "enum": ["json", "geojson"]}),
    ]


PATHS: dict[str, Any] = {
    "/api/v1/coverage": {"get": {
        "summary": "Coverage figures of a unit and its children, or of every unit of a level",
        "description": "Households, resident members, members per 100 households and the "
                       "gaps (no leader, no secretary, no member, no 党员中心户), aggregated "
                       "up the tree: counts, never personal data. GeoJSON (wgs84) gives the "
                       "units' polygons with the figures as properties, for coverage maps. "
                       + READ_NOTE + " Without unit and level, a scoped token lists the "
                       "level of its subtree's root.",
        "operationId": "getCoverage",
        "parameters": _parameters(),
        "responses": {
            "200": _ok("With unit: UnitCoverage; otherwise a CoveragePage", **{
                JSON: {"schema": {"oneOf": [_ref("UnitCoverage"), _ref("CoveragePage")]}},
                GEOJSON: _json("CoverageFeatureCollection"),
            }),
            **_problems(400, 401, 403, 404),
        },
    }},
}

SCHEMAS: dict[str, Any] = {
    "CoverageItem": COVERAGE_ITEM,
    "CoverageSummary": SUMMARY,
    "UnitCoverage": UNIT_COVERAGE,
    "CoveragePage": COVERAGE_PAGE,
    "CoverageFeature": COVERAGE_FEATURE,
    "CoverageFeatureCollection": COVERAGE_COLLECTION,
}

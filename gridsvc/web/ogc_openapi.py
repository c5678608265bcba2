"""The OpenAPI 3.0 document of the OGC API - Features routes (``GET /ogc/api``, the landing
page's ``service-desc``). Hand-written and compact; tests/test_ogc_api.py keeps its paths equal
to the blueprint's routes. The main /api/v1 document (gridsvc/web/openapi.py) does not list
these routes."""

from __future__ import annotations

from typing import Any

from gridsvc.services.ogc_features import CRS84, DEFAULT_LIMIT, MAX_LIMIT, PROPERTIES, SUPPORTED_CRS
from gridsvc.services.ogc_filter import INTEGER, TEXT
from gridsvc.web.openapi_edge import add_edge_answers

OPENAPI_MEDIA = "application/vnd.oai.openapi+json;version=3.0"
GEOJSON = "application/geo+json"
JSON = "application/json"
HTML = "text/html"
PROBLEM = "application/problem+json"
MERGE_PATCH = "application/merge-patch+json"
SCHEMA_MEDIA = "application/schema+json"


def _ref(kind: str, name: str) -> dict[str, str]:
    return {"$ref": f"#/components/{kind}/{name}"}


def _problem(description: str) -> dict[str, Any]:
    return {"description": description,
            "content": {PROBLEM: {"schema": _ref("schemas", "Problem")}}}


def _ok(description: str, media: str, schema: dict[str, Any]) -> dict[str, Any]:
    return {"description": description,
            "content": {media: {"schema": schema}, HTML: {"schema": {"type": "string"}}}}


def _errors(*codes: int) -> dict[str, Any]:
    texts = {
        400: "a parameter or the body is not acceptable (`field` names it)",
        401: "no token, or not a live one", 403: "the token may not do this here",
        404: "no such collection or feature (or outside the token's subtree)",
        409: "the code exists already, or the unit still has child units",
        412: "If-Match or properties.version names an older version of the unit",
        415: "the body is not JSON", 422: "the change breaks validation rules (`report`)",
        428: "neither If-Match nor properties.version was sent",
    }
    return {str(code): _problem(texts[code]) for code in codes}


def _feature_schema(properties: dict[str, Any], required: list[str]) -> dict[str, Any]:
    return {"type": "object", "required": ["type", "geometry", "properties"], "properties": {
        "type": {"type": "string", "enum": ["Feature"]},
        "id": {"type": "string"},
        "geometry": {"type": "object", "description": "GeoJSON Point, Polygon or "
                     "MultiPolygon in CRS84 (lon, lat)"},
        "properties": {"type": "object", "required": required, "properties": properties},
    }}


def ogc_openapi_document(server_url: str, collection_ids: list[str]) -> dict[str, Any]:
    """The document for a server at ``server_url`` (the /ogc landing page's URL)."""
    nullable_text = {"type": "string", "nullable": True}
    unit_properties: dict[str, Any] = {
        "code": {"type": "string"}, "name": {"type": "string"},
        "level": {"type": "integer"}, "parent_code": nullable_text,
        "leader": nullable_text, "phone": nullable_text,
        "households": {"type": "integer", "nullable": True}, "address": nullable_text,
        "version": {"type": "integer"},
    }
    collection_id = {"name": "collectionId", "in": "path", "required": True,
                     "description": "a hierarchy level's key",
                     "schema": {"type": "string", "enum": collection_ids}}
    feature_id = {"name": "featureId", "in": "path", "required": True,
                  "description": "the unit code", "schema": {"type": "string"}}
    f_param = {"name": "f", "in": "query", "required": False,
               "schema": {"type": "string", "enum": ["json", "html"]}}
    if_match = {"name": "If-Match", "in": "header", "required": False,
                "description": "the ETag read with the feature", "schema": {"type": "string"}}
    crs_values = {"type": "string", "enum": list(SUPPORTED_CRS), "default": CRS84}
    crs_param = {"name": "crs", "in": "query", "required": False, "schema": crs_values,
                 "description": "the CRS of the answer's geometry (axis order of the CRS: "
                                "CRS84 lon, lat; EPSG:4326/4490 lat, lon; Gauss-Krüger "
                                "northing, easting)"}
    content_crs = {"name": "Content-Crs", "in": "header", "required": False,
                   "description": "the CRS of the body's geometry, as <uri> (CRS84 when "
                                  "absent); the answer's geometry is in it too",
                   "schema": {"type": "string"}}
    crs_header = {"Content-Crs": {"description": "the CRS of the geometry, as <uri>",
                                  "schema": {"type": "string"}}}
    etag = {"ETag": {"schema": {"type": "string"}}, **crs_header}
    simple_filters = [{"name": key, "in": "query", "required": False,
                       "description": "features whose property equals this (* matches any "
                                      "run of characters)" if key in TEXT else
                                      "features whose property equals this",
                       "schema": {"type": "string"} if key in TEXT else {"type": "integer"}}
                      for key in (*TEXT, *INTEGER)]
    json_schema = {"description": "a JSON Schema", "content": {
        SCHEMA_MEDIA: {"schema": {"type": "object"}}}}
    read: dict[str, Any] = {"security": [{"bearer": []}, {"basic": []}]}
    feature_body = {"required": True, "content": {
        GEOJSON: {"schema": _ref("schemas", "FeatureIn")},
        JSON: {"schema": _ref("schemas", "FeatureIn")}}}
    written = {"description": "stored; the body is the feature as stored, with `revision` and "
               "`moves` (members and households whose chain changed)", "headers": etag,
               "content": {GEOJSON: {"schema": _ref("schemas", "Feature")}}}
    paths: dict[str, Any] = {
        "/": {"get": {"summary": "Landing page", "operationId": "getLandingPage",
                      "parameters": [f_param],
                      "responses": {"200": _ok("links to the API", JSON,
                                               _ref("schemas", "Links"))}}},
        "/conformance": {"get": {"summary": "Conformance classes", "parameters": [f_param],
                                 "operationId": "getConformanceDeclaration",
                                 "responses": {"200": _ok("conformsTo", JSON, {
                                     "type": "object", "properties": {"conformsTo": {
                                         "type": "array", "items": {"type": "string"}}}})}}},
        "/api": {"get": {"summary": "This document", "operationId": "getAPI",
                         "parameters": [f_param],
                         "responses": {"200": {"description": "OpenAPI 3.0",
                                               "content": {OPENAPI_MEDIA: {}, HTML: {}}}}}},
        "/collections": {"get": {
            "summary": "The collections: one per hierarchy level", **read,
            "operationId": "getCollections", "parameters": [f_param],
            "responses": {"200": _ok("collections", JSON, _ref("schemas", "Collections")),
                          **_errors(401, 403)}}},
        "/collections/{collectionId}": {"get": {
            "summary": "One collection", **read, "operationId": "describeCollection",
            "parameters": [collection_id, f_param],
            "responses": {"200": _ok("the collection", JSON, _ref("schemas", "Collection")),
                          **_errors(401, 403, 404)}}},
        "/collections/{collectionId}/items": {
            "get": {"summary": "Features of a level in the token's subtree, ordered by code",
                    **read, "operationId": "getFeatures", "parameters": [
                        collection_id, f_param,
                        {"name": "limit", "in": "query", "required": False, "style": "form",
                         "explode": False, "schema": {"type": "integer", "minimum": 1,
                                                      "maximum": MAX_LIMIT,
                                                      "default": DEFAULT_LIMIT}},
                        {"name": "offset", "in": "query", "required": False,
                         "schema": {"type": "integer", "minimum": 0, "default": 0}},
                        {"name": "bbox", "in": "query", "required": False, "style": "form",
                         "explode": False, "schema": {"type": "array", "minItems": 4,
                                                      "maxItems": 6,
                                                      "items": {"type": "number"}}},
                        {"name": "bbox-crs", "in": "query", "required": False,
                         "description": "the CRS of bbox (its axis order)",
                         "schema": crs_values}, crs_param,
                        *simple_filters,
                        {"name": "filter", "in": "query", "required": False,
                         "description": "CQL2 (text or JSON, see filter-lang): comparisons, "
                                        "LIKE, BETWEEN, IN, IS NULL, S_INTERSECTS/S_WITHIN/"
                                        "S_CONTAINS/S_DISJOINT with a BBOX or a geometry",
                         "schema": {"type": "string"}},
                        {"name": "filter-lang", "in": "query", "required": False,
                         "schema": {"type": "string", "enum": ["cql2-text", "cql2-json"],
                                    "default": "cql2-text"}},
                        {"name": "filter-crs", "in": "query", "required": False,
                         "description": "the CRS of the filter's geometries",
                         "schema": crs_values},
                        {"name": "sortby", "in": "query", "required": False,
                         "description": "queryables, comma-separated, - for descending",
                         "schema": {"type": "string"}},
                        {"name": "datetime", "in": "query", "required": False,
                         "description": "accepted and ignored: units carry no time",
                         "schema": {"type": "string"}}],
                    "responses": {"200": {**_ok("a page of features", GEOJSON,
                                                _ref("schemas", "FeatureCollection")),
                                          "headers": crs_header},
                                  **_errors(400, 401, 403, 404)}},
            "post": {"summary": "Create a unit (Part 4)", **read, "operationId": "createFeature",
                     "parameters": [collection_id, content_crs],
                     "requestBody": feature_body,
                     "responses": {"201": {**written, "headers": {
                         **etag, "Location": {"schema": {"type": "string"}}}},
                         **_errors(400, 401, 403, 404, 409, 415, 422)}},
        },
        "/collections/{collectionId}/queryables": {"get": {
            "summary": "What the collection's features can be filtered by (Part 3)", **read,
            "operationId": "getQueryables", "parameters": [collection_id],
            "responses": {"200": json_schema, **_errors(401, 403, 404)}}},
        "/collections/{collectionId}/schema": {"get": {
            "summary": "The features' properties and their types (Part 5)", **read,
            "operationId": "getSchema", "parameters": [collection_id],
            "responses": {"200": json_schema, **_errors(401, 403, 404)}}},
        "/collections/{collectionId}/items/{featureId}": {
            "get": {"summary": "One feature", **read, "operationId": "getFeature",
                    "parameters": [collection_id, feature_id, f_param, crs_param],
                    "responses": {"200": {**_ok("the feature", GEOJSON,
                                                _ref("schemas", "Feature")), "headers": etag},
                                  "304": {"description": "If-None-Match names its ETag"},
                                  **_errors(400, 401, 403, 404)}},
            "put": {"summary": "Replace a unit (Part 4)", **read, "operationId": "replaceFeature",
                    "parameters": [collection_id, feature_id, if_match, content_crs],
                    "requestBody": feature_body,
                    "responses": {"200": written,
                                  **_errors(400, 401, 403, 404, 412, 415, 422, 428)}},
            "patch": {"summary": "Update a unit: a merge patch of geometry and properties",
                      **read, "operationId": "updateFeature",
                      "parameters": [collection_id, feature_id, if_match, content_crs],
                      "requestBody": {"required": True, "content": {
                          MERGE_PATCH: {"schema": {"type": "object"}},
                          JSON: {"schema": {"type": "object"}}}},
                      "responses": {"200": written,
                                    **_errors(400, 401, 403, 404, 412, 415, 422, 428)}},
            "delete": {"summary": "Delete a unit without child units", **read,
                       "operationId": "deleteFeature",
                       "parameters": [collection_id, feature_id, if_match],
                       "responses": {"200": {"description": "deleted: `moves` lists the "
                                             "members reassigned",
                                             "content": {JSON: {"schema": {"type": "object"}}}},
                                     **_errors(401, 403, 404, 409, 412, 428)}},
        },
    }
    link = {"type": "object", "required": ["href", "rel"], "properties": {
        "href": {"type": "string"}, "rel": {"type": "string"}, "type": {"type": "string"},
        "title": {"type": "string"}}}
    links = {"type": "array", "items": _ref("schemas", "Link")}
    collection = {"type": "object", "required": ["id", "links"], "properties": {
        "id": {"type": "string"}, "title": {"type": "string"},
        "description": {"type": "string"}, "itemType": {"type": "string"},
        "extent": {"type": "object"}, "crs": {"type": "array", "items": {"type": "string"}},
        "storageCrs": {"type": "string"},
        "links": links}}
    return add_edge_answers({
        "openapi": "3.0.3",
        "info": {"title": "gridsvc OGC API - Features", "version": "1.0.0",
                 "description": "The organisation tree as OGC API - Features (Part 1 core, "
                                "GeoJSON, HTML; Part 2 CRS; Part 3 filtering; Part 4 create, "
                                "replace, update, delete). "
                                "Features are units, ids their codes; one collection per "
                                "hierarchy level. Reads and writes need a bearer token and "
                                "are limited to its subtree."},
        "servers": [{"url": server_url.rstrip("/")}],
        "paths": paths,
        "components": {
            "securitySchemes": {
                "bearer": {"type": "http", "scheme": "bearer"},
                "basic": {"type": "http", "scheme": "basic", "description":
                          "the token as the password, any user name; over HTTPS (or "
                          "GRIDSVC_ALLOW_BASIC_HTTP, or from this host to this host)"}},
            "schemas": {
                "Link": link,
                "Links": {"type": "object", "properties": {"links": links}},
                "Collection": collection,
                "Collections": {"type": "object", "properties": {
                    "links": links, "collections": {"type": "array", "items": collection}}},
                "Feature": _feature_schema(unit_properties, list(PROPERTIES)),
                "FeatureIn": _feature_schema(unit_properties, []),
                "FeatureCollection": {"type": "object", "required": ["type", "features"],
                                      "properties": {
                    "type": {"type": "string", "enum": ["FeatureCollection"]},
                    "features": {"type": "array", "items": _ref("schemas", "Feature")},
                    "numberMatched": {"type": "integer"},
                    "numberReturned": {"type": "integer"},
                    "timeStamp": {"type": "string", "format": "date-time"},
                    "links": links}},
                "Problem": {"type": "object", "properties": {
                    "type": {"type": "string"}, "title": {"type": "string"},
                    "status": {"type": "integer"}, "detail": {"type": "string"},
                    "instance": {"type": "string"}}},
            },
        },
    }, "/ogc")

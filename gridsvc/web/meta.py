"""Service-level pages: the landing page, health, the levels, the OpenAPI document and the
pages that describe each problem type."""

from __future__ import annotations

from html import escape
from typing import Any

from flask import Blueprint, Response, current_app, url_for

from gridsvc.access import system_principal
from gridsvc.services import tree
from gridsvc.services.errors import NotFound
from gridsvc.web import current_services
from gridsvc.web.geojson import GEOJSON, JSON, json_response
from gridsvc.web.openapi import openapi_document
from gridsvc.web.problems import PROBLEM_TYPES, database_unavailable

bp = Blueprint("meta", __name__)


@bp.get("/")
def landing() -> Response:
    def link(endpoint: str, rel: str, title: str, media: str = JSON, **args: Any) -> dict:
        return {"href": url_for(endpoint, **args), "rel": rel, "type": media, "title": title}

    return json_response({
        "title": "gridsvc",
        "description": "Grid-based Party organisation: the five-level tree of streets, "
                       "communities, grids, buildings and 党员中心户 households.",
        "links": [
            link("meta.landing", "self", "This page"),
            link("meta.openapi", "service-desc", "The API as OpenAPI 3.1"),
            link("meta.levels", "levels", "The levels of the hierarchy"),
            link("units.list_units", "items", "Units (filter by level, parent, bbox, q)"),
            link("units.whole_tree", "tree", "The whole tree as GeoJSON", GEOJSON),
            link("boundaries.validate_stored", "validate", "Validate the stored boundaries"),
            link("boundaries.export", "export", "Export the boundaries", GEOJSON),
            link("ogc.landing", "ogc-api-features", "The tree as OGC API - Features (QGIS, GDAL)"),
            link("meta.health", "health", "Health check"),
        ],
    })


@bp.get("/healthz")
def health() -> Response:
    svc = current_services()
    try:
        units = tree.list_units(svc, limit=1, viewer=system_principal("health check")).total
    except Exception:
        current_app.logger.exception("health check failed")
        return database_unavailable("the database does not answer")
    return json_response({"status": "ok", "database": svc.db.backend, "units": units})


@bp.get("/api/v1/levels")
def levels() -> Response:
    return json_response({"levels": current_services().hierarchy.as_list()})


@bp.get("/api/v1/openapi.json")
def openapi() -> Response:
    return json_response(openapi_document())


@bp.get("/problems/<slug>")
def problem_page(slug: str) -> Response:
    if slug not in PROBLEM_TYPES:
        raise NotFound(f"no problem type {slug!r}", slug=slug)
    title, text = PROBLEM_TYPES[slug]
    html = (
        f"<!doctype html><html lang='en'><meta charset='utf-8'><title>{escape(title)}</title>"
        f"<h1>{escape(title)}</h1><p>{escape(text)}</p>"
        f"<p>Responses of this type have <code>type</code> = "
        f"<code>/problems/{escape(slug)}</code> and are sent as "
        "<code>application/problem+json</code> (RFC 9457).</p></html>"
    )
    return Response(html, mimetype="text/html")

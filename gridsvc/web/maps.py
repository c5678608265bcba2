"""Map pages (``/maps/...``) and the layer data they fetch (``/api/v1/layers/{level}``).

- ``GET /maps/coverage?unit=CODE``: the coverage map of a subtree;
- ``GET /maps/distribution?unit=CODE``: member counts per micro-grid, or with ``detail=1``
  (a token that may read members: staff, admin) every member's home (personal data);
- ``GET /maps/validation?unit=CODE``: the problems of the stored tree; ``POST`` a boundary file
  (multipart ``file``, as ``/api/v1/boundaries/validate``) for the problems of that file;
- ``GET /api/v1/layers/{level}?bbox=&zoom=&unit=&view=&only=&points=&limit=``: one level's
  units in a wgs84 bbox, simplified for the zoom (GeoJSON; ``maps/layers.py``).

All need a token that may read units (admin, planner, staff) and show the token's subtree:
``unit`` defaults to its scope root (the whole tree for city-wide tokens) and a unit outside
it is 404. A browser signs in at ``/session`` (the token in a cookie, see
``gridsvc.web.session``); a page asked for without it links there.

The layer cache lives in ``app.extensions["gridsvc.layers"]``, one per process.
"""

from __future__ import annotations

from typing import Any

import folium
from flask import Blueprint, Response, current_app, request, url_for
from flask.blueprints import BlueprintSetupState

from gridsvc.access import Permission, Principal
from gridsvc.maps.coverage import coverage_map
from gridsvc.maps.distribution import distribution_map
from gridsvc.maps.layers import DEFAULT_LIMIT, LayerStore
from gridsvc.maps.validation import uploaded_records, validation_map
from gridsvc.services import boundaries, scope
from gridsvc.services.errors import InvalidInput
from gridsvc.web import csrf, current_services
from gridsvc.web.audit import checks_only, personal_read
from gridsvc.web.auth import page_csrf_token, require
from gridsvc.web.boundaries import _saved_upload
from gridsvc.web.geojson import GEOJSON
from gridsvc.web.params import bbox_arg, bool_arg, int_arg, json_object_field, text_arg
from gridsvc.web.session import require_page

bp = Blueprint("maps", __name__)
HTML = "text/html; charset=utf-8"


@bp.record_once
def _setup(state: BlueprintSetupState) -> None:
    app = state.app
    app.extensions["gridsvc.layers"] = LayerStore(app.extensions["gridsvc"])


def layer_store() -> LayerStore:
    return current_app.extensions["gridsvc.layers"]


def _page(m: folium.Map) -> Response:
    """The rendered map page; for a browser signed in by cookie it holds the CSRF token
    (``<meta name="csrf-token">``) and is never stored by a shared cache."""
    return csrf.map_page(m, page_csrf_token())


def _unit(viewer: Principal) -> str | None:
    """The ``unit`` parameter within the viewer's subtree (404 outside it), or their scope
    root (None: the whole tree)."""
    code = text_arg("unit")
    if scope.city_wide(viewer):
        return code  # the map code answers 404 for an unknown unit
    with current_services().db.session() as session:
        return scope.root_code(session, viewer, code)


@bp.get("/maps/coverage")
def coverage_page() -> Response:
    viewer = require_page(Permission.READ_UNITS)
    inline = request.args.get("inline")
    return _page(coverage_map(layer_store(), _unit(viewer),
                              inline=None if inline is None else bool_arg("inline")))


@bp.get("/maps/distribution")
@personal_read  # with detail=1 (counts only without it)
def distribution_page() -> Response:
    viewer = require_page(Permission.READ_UNITS)
    detail = bool_arg("detail")
    if detail:
        require_page(Permission.READ_MEMBERS)
    inline = request.args.get("inline")
    m = distribution_map(layer_store(), _unit(viewer), detail=detail,
                         inline=None if inline is None else bool_arg("inline"))
    response = _page(m)
    if detail:
        response.headers["Cache-Control"] = "no-store"  # personal data
    return response


@bp.get("/maps/validation")
def validation_page() -> Response:
    viewer = require_page(Permission.READ_UNITS)
    unit = _unit(viewer)
    report = boundaries.validate_stored(current_services(), unit, viewer=viewer)
    return _page(validation_map(layer_store(), report, unit=unit,
                                action=url_for("maps.validate_upload_page"),
                                csrf_token=page_csrf_token()))


@bp.post("/maps/validation")
@checks_only
def validate_upload_page() -> Response:
    viewer = require_page(Permission.READ_UNITS)
    form = request.form
    options: dict[str, Any] = {"encoding": text_arg("encoding", form), "field_map":
               json_object_field("map", form), "crs": text_arg("crs", form)}
    with _saved_upload() as path:
        try:
            outcome = boundaries.import_file(current_services(), path, dry_run=True,
                                             repair=bool_arg("repair", args=form),
                                             viewer=viewer, **options)
            uploaded = uploaded_records(
                path, zip_limits=boundaries.zip_limits(current_services().settings), **options)
        except InvalidInput as exc:  # name the file as uploaded, not its temporary folder
            raise InvalidInput(exc.detail.replace(f"{path.parent}/", ""), **exc.extra) from None
        name = path.name
    return _page(validation_map(layer_store(), outcome.report, uploaded=uploaded,
                                title=name, action=url_for("maps.validate_upload_page"),
                                csrf_token=page_csrf_token()))


@bp.get("/api/v1/layers/<level>")
def layer(level: str) -> Response:
    viewer = require(Permission.READ_UNITS)
    zoom = int_arg("zoom", -1)
    if zoom < 0:
        raise InvalidInput("give the map's zoom, e.g. zoom=15", field="zoom")
    page = layer_store().layer(
        level, zoom=zoom, bbox=bbox_arg(), unit=_unit(viewer),
        view=text_arg("view") or "coverage", only=text_arg("only"),
        as_points=bool_arg("points"), limit=int_arg("limit", DEFAULT_LIMIT))
    return Response(page.geojson(), mimetype=GEOJSON)

"""The planner's boundary editor: the ``/maps/editor`` page and the edit API behind it.

``POST /api/v1/units/<code>/geometry/check`` validates a new geometry (a GeoJSON geometry or
Feature, wgs84) and previews the members and 党员中心户 that would change chain; it never
stores. ``PUT /api/v1/units/<code>/geometry`` stores it when ``If-Match`` carries the unit's
current ETag (``"<code>-<version>"``, from ``GET /api/v1/units/<code>``): 428 without it, 412
when another planner saved first, 422 with the report when a rule fails. Both need a token
that may edit boundaries (planner, admin), and the unit must lie in the token's subtree (403
otherwise). The page itself holds no data: it sends the planner's token typed into it with
every call (kept in the tab's sessionStorage), or, for a browser signed in at ``/session``,
the cookie with the page's CSRF token (``gridsvc.web.csrf``).
"""

from __future__ import annotations

from typing import Any

import folium
import shapely
from branca.element import JavascriptLink, MacroElement
from flask import Blueprint, Response, abort, render_template, request, url_for
from folium.plugins import Draw
from folium.template import Template

from gridsvc.access import Permission
from gridsvc.maps.assets import figure_of
from gridsvc.maps.basemap import new_map
from gridsvc.maps.safe_html import RawHtml, script_json
from gridsvc.services import editing
from gridsvc.services.errors import InvalidInput
from gridsvc.validation.report import Report
from gridsvc.web import csrf, current_services
from gridsvc.web.audit import checks_only
from gridsvc.web.auth import page_csrf_token, require
from gridsvc.web.geojson import geometry, json_response, plain
from gridsvc.web.problems import problem_response
from gridsvc.web.units import if_match_version, unit_etag

bp = Blueprint("editor", __name__)
CHINA_CENTRE = (35.0, 105.0)  # wgs84 lat, lon: the view until a unit is loaded


class _StartEditor(MacroElement):
    """Starts editor.js on the rendered map and its editable feature group."""

    _template = Template("""
        {% macro script(this, kwargs) %}
        GridEditor.start({map: {{ this._parent.get_name() }},
                          drawn: {{ this.drawn.get_name() }},
                          unit: {{ this.unit_json }}});
        {% endmacro %}
    """)

    def __init__(self, drawn: folium.FeatureGroup, unit: str) -> None:
        super().__init__()
        self._name = "StartEditor"
        self.drawn = drawn
        self.unit_json = script_json(unit)  # from the URL: inert for JS and for Jinja


def editor_map(unit: str) -> folium.Map:
    """The editor page as a folium map: base map, Leaflet.draw on one feature group, the
    panel of templates/editor.html and static/editor/editor.js; assets served locally."""
    m = new_map(current_services().settings, location=CHINA_CENTRE, zoom_start=4,
                control_scale=True)
    drawn = folium.FeatureGroup(name="edited unit", control=False)
    drawn.add_to(m)
    Draw(
        feature_group=drawn, show_geometry_on_click=False, position="topleft",
        draw_options={"polyline": False, "circle": False, "circlemarker": False,
                      "marker": False, "polygon": {"allowIntersection": False}},
        edit_options={"remove": False, "poly": {"allowIntersection": False}},
    ).add_to(m)
    m.add_child(_StartEditor(drawn, unit))
    root = figure_of(m)
    root.title = "边界编辑 · gridsvc"
    root.header.add_child(JavascriptLink(url_for("static", filename="editor/editor.js")),
                          name="gridsvc_editor_js")
    root.html.add_child(RawHtml(render_template("editor.html")), name="gridsvc_editor_panel")
    return m


@bp.get("/maps/editor")
def editor_page() -> Response:
    """The editor; ``?unit=CODE`` opens that unit."""
    return csrf.map_page(editor_map(request.args.get("unit", "").strip()), page_csrf_token())


def _geometry_body() -> Any:
    data = request.get_json(silent=True)
    if data is None:
        raise InvalidInput("send a JSON body: a GeoJSON geometry or Feature (wgs84)",
                           field="geometry")
    return editing.geometry_from_geojson(data)


def problem_features(report: Report) -> dict[str, Any]:
    """The report's problems that have a place, as a FeatureCollection to draw (wgs84)."""
    features = []
    for p in report.problems:
        if p.geometry_wkt:
            geom = shapely.from_wkt(p.geometry_wkt)
        elif p.location:
            geom = shapely.Point(p.location)
        else:
            continue
        props = {k: v for k, v in p.as_dict().items() if k != "location"}
        features.append({"type": "Feature", "geometry": geometry(geom), "properties": props})
    return {"type": "FeatureCollection", "features": features}


@bp.post("/api/v1/units/<code>/geometry/check")
@checks_only
def check_geometry(code: str) -> Response:
    viewer = require(Permission.EDIT_BOUNDARIES)
    result = editing.check_edit(current_services(), code, geometry=_geometry_body(),
                                viewer=viewer)
    report = result.outcome.report
    return json_response({
        "code": code,
        "version": result.version,
        "ok": report.ok,
        "report": report.as_dict(),
        "moves": [m.as_dict() for m in result.outcome.moves],
        "problem_features": problem_features(report),
    })


def _expected_version(code: str) -> int:
    """The version named by If-Match: 428 when it is missing or '*', 412 when it names no
    version of this unit."""
    version = if_match_version(code)
    if version is None:
        abort(problem_response(
            428, "precondition-required",
            f"send If-Match with the ETag of unit {code} as you loaded it (from GET "
            f"/api/v1/units/{code}), so a save cannot overwrite someone else's",
        ))
    return version


@bp.put("/api/v1/units/<code>/geometry")
def save_geometry(code: str) -> Response:
    viewer = require(Permission.EDIT_BOUNDARIES)
    expected = _expected_version(code)
    result = editing.save_edit(current_services(), code, expected, geometry=_geometry_body(),
                               viewer=viewer)
    assert result.unit is not None
    report = result.outcome.report
    response = json_response({
        "unit": plain(result.unit, True),
        "version": result.version,
        "revision": result.outcome.revision,
        "report": report.as_dict(),
        "moves": [m.as_dict() for m in result.outcome.moves],
    })
    response.set_etag(unit_etag(code, result.version))
    return response

"""The coverage API: figures per unit and per level (definitions in services/coverage.py).

``GET /api/v1/coverage?unit=CODE`` gives the unit and each of its children;
``GET /api/v1/coverage?level=grid[&parent=CODE]`` a sorted, paged list of one level (the
streets when neither is given). GeoJSON with ``?f=geojson`` or Accept application/geo+json:
the units with their figures as properties. Figures are counts, never personal data, but
they describe a subtree: a token that may read units (admin, planner, staff) is needed, and a
scoped token reads its subtree only (a unit outside it is 404; with neither unit nor level the
list starts at the level of the token's scope root).
"""

from __future__ import annotations

from typing import Any

from flask import Blueprint, Response

from gridsvc.access import Permission
from gridsvc.services import coverage
from gridsvc.services.errors import InvalidInput
from gridsvc.services.tree import UnitView
from gridsvc.storage import units as q
from gridsvc.web import current_services
from gridsvc.web.auth import require
from gridsvc.web.geojson import GEOJSON, feature, negotiated, wants_geojson
from gridsvc.web.params import int_arg, text_arg
from gridsvc.web.units import _page_links

bp = Blueprint("coverage", __name__, url_prefix="/api/v1")


def _features(items: list[dict[str, Any]], roles: list[str] | None = None) -> list[dict]:
    """The items as GeoJSON features (wgs84 geometry read from the database)."""
    svc = current_services()
    with svc.db.session() as session:
        found = q.units_by_codes(session, [item["code"] for item in items])
        units = [found[item["code"]] for item in items if item["code"] in found]
        geoms = dict(zip([u.code for u in units], q.geometries(units), strict=True))
    return [
        feature(UnitView(item, geoms.get(item["code"])), {"role": role} if role else None)
        for item, role in zip(items, roles or [""] * len(items), strict=True)
    ]


@bp.get("/coverage")
def get_coverage() -> Response:
    viewer = require(Permission.READ_UNITS)
    geojson = wants_geojson()
    svc = current_services()
    unit = text_arg("unit")
    if unit is not None:
        for name in ("level", "parent", "sort", "order"):
            if text_arg(name) is not None:
                raise InvalidInput(f"{name} lists a level; give either unit or level",
                                   field=name)
        result = coverage.unit_coverage(svc, unit, viewer)
        if geojson:
            items = [result.unit, *result.children]
            roles = ["unit"] + ["child"] * len(result.children)
            return negotiated({"type": "FeatureCollection",
                               "features": _features(items, roles),
                               "numberMatched": len(items), "numberReturned": len(items)},
                              True)
        return negotiated({"unit": result.unit, "children": result.children}, False)

    page = coverage.level_coverage(
        svc, text_arg("level"), parent=text_arg("parent"),
        sort=text_arg("sort") or "code", order=text_arg("order"),
        limit=int_arg("limit", 100), offset=int_arg("offset", 0), viewer=viewer,
    )
    if geojson:
        links = [{"href": href, "rel": rel, "type": GEOJSON}
                 # (the ignore below: links are str here)
                 for rel, href in _page_links(page, f="geojson").items() if href]  # type: ignore[arg-type]
        return negotiated({"type": "FeatureCollection", "features": _features(page.items),
                           "numberMatched": page.total, "numberReturned": len(page.items),
                           "links": links, "summary": page.summary}, True)
    return negotiated({"items": page.items, "total": page.total, "limit": page.limit,
                       "offset": page.offset, "summary": page.summary,
                       # (the ignore below: links are str here)
                       "links": _page_links(page)}, False)  # type: ignore[arg-type]

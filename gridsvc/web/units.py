"""The tree API: units with filters, one unit with its ancestors, children and subtrees.

JSON by default; GeoJSON (application/geo+json) when ``?f=geojson`` or the Accept header
prefers it. Subtrees are always FeatureCollections. The whole tree is ``/api/v1/tree/subtree``
(not ``/units/subtree``, which would shadow a unit coded "subtree").

Every route needs a token that may read units (admin, planner, staff) and answers within the
token's subtree (see ``gridsvc.services.tree``): the whole tree of a scoped token is its
subtree, and a unit outside it is 404, as if it did not exist.
"""

from __future__ import annotations

import re
from typing import Any

from flask import Blueprint, Response, request, url_for

from gridsvc.access import Permission
from gridsvc.services import tree
from gridsvc.services.errors import InvalidInput, VersionConflict
from gridsvc.services.tree import UnitPage
from gridsvc.web import current_services
from gridsvc.web.auth import require
from gridsvc.web.geojson import (
    GEOJSON,
    feature,
    feature_collection,
    json_response,
    negotiated,
    plain,
    wants_geojson,
)
from gridsvc.web.params import bbox_arg, bool_arg, int_arg, text_arg

bp = Blueprint("units", __name__, url_prefix="/api/v1")


def _page_links(page: UnitPage, **extra: str) -> dict[str, str | None]:
    """URLs of this page and its neighbours, keeping every other query parameter."""

    def at(offset: int) -> str:
        args: dict[str, Any] = request.args.to_dict() | extra | {
            "offset": str(offset), "limit": str(page.limit)}
        return url_for(request.endpoint or "", **(request.view_args or {}), **args)

    has_next = page.offset + page.limit < page.total
    return {
        "self": at(page.offset),
        "next": at(page.offset + page.limit) if has_next else None,
        "prev": at(max(0, page.offset - page.limit)) if page.offset > 0 else None,
    }


def unit_etag(code: str, version: int) -> str:
    """The unit's entity tag (unquoted): its code and version. PUTs that change a unit send
    it back in If-Match (gridsvc.web.editor), so a stale copy cannot overwrite a newer one."""
    return f"{code}-{version}"


def if_match_version(code: str, what: str | None = None) -> int | None:
    """The version of the record tagged ``code`` (tags are ``"<code>-<version>"``; for a
    unit its code, for a member ``member-<id>``) that ``If-Match`` names; None without
    If-Match or with '*'. ``VersionConflict`` (412) when it names none: another record's tag,
    an empty tag (``""``, which Werkzeug reads as None) or a number too long to be a
    version. ``what`` names the record in the message (default ``unit <code>``)."""
    if not request.headers.get("If-Match", "").strip():
        return None
    tags = request.if_match
    if tags.star_tag:
        return None
    for tag in tags.as_set():
        found = re.fullmatch(rf"{re.escape(code)}-(\d{{1,9}})", tag or "")
        if found:
            return int(found[1])
    shown = request.headers.get("If-Match", "")[:100]
    raise VersionConflict(f"If-Match {shown} names no version of {what or 'unit ' + code}; "
                          f"read it again for its ETag", code=code)


@bp.get("/units")
def list_units() -> Response:
    viewer = require(Permission.READ_UNITS)
    geojson = wants_geojson()
    page = tree.list_units(
        current_services(),
        level=text_arg("level"),
        parent=text_arg("parent"),
        bbox=bbox_arg(),
        search=text_arg("q"),
        limit=int_arg("limit", 100),
        offset=int_arg("offset", 0),
        with_geometry=geojson or bool_arg("geometry"),
        viewer=viewer,
    )
    if geojson:
        links = [
            {"href": href, "rel": rel, "type": GEOJSON}
            for rel, href in _page_links(page, f="geojson").items()
            if href
        ]
        return negotiated(feature_collection(page.items, matched=page.total, links=links), True)
    with_geometry = bool_arg("geometry")
    body = {
        "items": [plain(v, with_geometry) for v in page.items],
        "total": page.total,
        "limit": page.limit,
        "offset": page.offset,
        "links": _page_links(page),
    }
    return negotiated(body, False)


@bp.get("/units/<code>")
def get_unit(code: str) -> Response:
    viewer = require(Permission.READ_UNITS)
    geojson = wants_geojson()
    with_geometry = geojson or bool_arg("geometry")
    detail = tree.get_unit(current_services(), code, with_geometry=with_geometry,
                           viewer=viewer)
    extra: dict[str, Any] = {
        "ancestors": detail.ancestors,
        "children": detail.children,
        "descendants": detail.descendants,
    }
    if geojson:
        response = negotiated(feature(detail.unit, extra), True)
    else:
        response = negotiated(plain(detail.unit, with_geometry) | extra, False)
    response.set_etag(unit_etag(code, detail.unit.props["version"]))
    return response


@bp.get("/units/<code>/children")
def children(code: str) -> Response:
    viewer = require(Permission.READ_UNITS)
    geojson = wants_geojson()
    with_geometry = geojson or bool_arg("geometry")
    views = tree.children(current_services(), code, with_geometry=with_geometry, viewer=viewer)
    if geojson:
        return negotiated(feature_collection(views), True)
    return negotiated({"items": [plain(v, with_geometry) for v in views]}, False)


def _subtree(code: str | None) -> Response:
    viewer = require(Permission.READ_UNITS)
    svc = current_services()
    try:
        max_level = tree.resolve_level(svc.hierarchy, text_arg("max_level"))
    except InvalidInput as exc:  # the resolver names "level"; here the parameter is max_level
        raise InvalidInput(exc.detail, field="max_level") from None
    views = tree.subtree(svc, code, max_level=max_level, viewer=viewer)
    return json_response(feature_collection(views), mimetype=GEOJSON)


@bp.get("/units/<code>/subtree")
def unit_subtree(code: str) -> Response:
    return _subtree(code)


@bp.get("/tree/subtree")
def whole_tree() -> Response:
    return _subtree(None)

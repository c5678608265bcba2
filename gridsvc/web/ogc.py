"""OGC API - Features at ``/ogc``: Part 1 (core, GeoJSON, HTML, OpenAPI 3.0), Part 2 (CRS)
and Part 4 (create, replace, update, delete) over the organisation tree.

One collection per hierarchy level (id = level key), features are units (id = unit code),
geometry in CRS84 unless ``crs`` asks for another of ``ogc_features.SUPPORTED_CRS`` (``crs``
on items and single items, ``bbox-crs``, ``Content-Crs`` on writes; every answer holding
geometry names its CRS in a ``Content-Crs: <uri>`` header). JSON (GeoJSON for features) or
HTML, by ``f=json|html`` or the Accept header. The landing page, conformance and the OpenAPI
document (``/ogc/api``) are public; every other read needs ``read-units`` and sees only the
token's subtree, writes need ``edit-boundaries`` and a unit (and parent) inside it. Writes run
the import's validation (``gridsvc.services.ogc_features``); replace, update and delete need
the version read, in ``If-Match`` or (replace, update) ``properties.version``.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from flask import Blueprint, Response, abort, request, url_for

from gridsvc.access import Permission
from gridsvc.hierarchy import Level
from gridsvc.services import ogc_features as ogc
from gridsvc.services import ogc_filter
from gridsvc.services.errors import InvalidInput
from gridsvc.services.tree import UnitView
from gridsvc.web import current_services
from gridsvc.web import ogc_html as html
from gridsvc.web.audit import set_target
from gridsvc.web.auth import require
from gridsvc.web.geojson import GEOJSON, JSON, geometry, json_response
from gridsvc.web.ogc_openapi import MERGE_PATCH, OPENAPI_MEDIA, ogc_openapi_document
from gridsvc.web.params import int_arg
from gridsvc.web.problems import problem_response
from gridsvc.web.units import if_match_version, unit_etag

bp = Blueprint("ogc", __name__, url_prefix="/ogc")

HTML = "text/html"
OGC_REL = "http://www.opengis.net/def/rel/ogc/1.0/"
CONFORMANCE = [
    "http://www.opengis.net/spec/ogcapi-features-1/1.0/conf/core",
    "http://www.opengis.net/spec/ogcapi-features-1/1.0/conf/geojson",
    "http://www.opengis.net/spec/ogcapi-features-1/1.0/conf/html",
    "http://www.opengis.net/spec/ogcapi-features-1/1.0/conf/oas30",
    "http://www.opengis.net/spec/ogcapi-features-2/1.0/conf/crs",
    "http://www.opengis.net/spec/ogcapi-features-3/1.0/conf/queryables",
    "http://www.opengis.net/spec/ogcapi-features-3/1.0/conf/queryables-query-parameters",
    "http://www.opengis.net/spec/ogcapi-features-3/1.0/conf/filter",
    "http://www.opengis.net/spec/ogcapi-features-3/1.0/conf/features-filter",
    "http://www.opengis.net/spec/cql2/1.0/conf/cql2-text",
    "http://www.opengis.net/spec/cql2/1.0/conf/cql2-json",
    "http://www.opengis.net/spec/cql2/1.0/conf/basic-cql2",
    "http://www.opengis.net/spec/cql2/1.0/conf/advanced-comparison-operators",
    "http://www.opengis.net/spec/cql2/1.0/conf/basic-spatial-functions",
    "http://www.opengis.net/spec/cql2/1.0/conf/basic-spatial-functions-plus",
    "http://www.opengis.net/spec/ogcapi-features-5/1.0/conf/schemas",
    "http://www.opengis.net/spec/ogcapi-features-4/1.0/conf/create-replace-delete",
    "http://www.opengis.net/spec/ogcapi-features-4/1.0/conf/update",
    "http://www.opengis.net/spec/ogcapi-features-4/1.0/conf/optimistic-locking-etags",
    "http://www.opengis.net/spec/ogcapi-features-4/1.0/conf/features",
]
FILTER_PARAMS = {"filter", "filter-lang", "filter-crs", "sortby"}
SIMPLE_FILTERS = set(ogc_filter.TEXT) | set(ogc_filter.INTEGER)
ITEMS_PARAMS = {"f", "limit", "offset", "bbox", "bbox-crs", "datetime", "crs",
                *FILTER_PARAMS, *SIMPLE_FILTERS}
SCHEMA_MEDIA = "application/schema+json"
ITEM_PARAMS = {"f", "crs"}
BODY_TYPES = {JSON, GEOJSON, MERGE_PATCH, ""}


# -- formats and links -------------------------------------------------------------------------

def _wants_html() -> bool:
    """``f=html``/``f=json`` decides, else the Accept header (JSON when it does not care)."""
    f = request.args.get("f", "").strip().lower()
    if f in ("json", "geojson"):
        return False
    if f == "html":
        return True
    if f:
        raise InvalidInput(f"f must be json or html, got {f!r}", field="f")
    return request.accept_mimetypes.best_match([JSON, GEOJSON, HTML], default=JSON) == HTML


def _url(endpoint: str, fmt: str | None = None, **args: Any) -> str:
    if fmt:
        args["f"] = fmt
    return url_for(endpoint, _external=True, **args)


def _link(href: str, rel: str, media: str, title: str) -> dict[str, str]:
    return {"href": href, "rel": rel, "type": media, "title": title}


def _self_links(endpoint: str, media: str, title: str, **args: Any) -> list[dict[str, str]]:
    """``self`` in the format of this response and ``alternate`` in the other."""
    as_html = _wants_html()
    json_link = _link(_url(endpoint, "json", **args), "self", media, title + " as JSON")
    html_link = _link(_url(endpoint, "html", **args), "self", HTML, title + " as HTML")
    if as_html:
        json_link["rel"] = "alternate"
        return [html_link, json_link]
    html_link["rel"] = "alternate"
    return [json_link, html_link]


def _respond(data: dict[str, Any], media: str, title: str, body_html: str) -> Response:
    if _wants_html():
        home = _link(_url("ogc.landing", "html"), "home", HTML, "OGC API home")
        page = html.page(title, body_html, [home, *data.get("links", [])])
        response = Response(page, mimetype=HTML)
    else:
        response = json_response(data, mimetype=media)
    response.vary.add("Accept")
    return response


def _crs_arg() -> str:
    """The ``crs`` query parameter as a canonical URI (CRS84 when absent)."""
    return ogc.crs_of(request.args.get("crs"), "crs")


def _with_crs(response: Response, crs: str) -> Response:
    response.headers["Content-Crs"] = f"<{crs}>"
    return response


def _refuse_unknown_args(allowed: set[str], what: str) -> None:
    unknown = sorted(set(request.args) - allowed)
    if unknown:
        raise InvalidInput(f"unknown query parameter {unknown[0]!r}; {what} take "
                           f"{', '.join(sorted(allowed))}", field=unknown[0])


def _feature(view: UnitView, level: Level, links: bool = False) -> dict[str, Any]:
    code = view.props["code"]
    data: dict[str, Any] = {"type": "Feature", "id": code, "geometry": geometry(view.geometry),
                            "properties": ogc.feature_properties(view)}
    if links:
        args = {"collection_id": level.key, "feature_id": code}
        data["links"] = [*_self_links("ogc.get_item", GEOJSON, f"feature {code}", **args),
                         _link(_url("ogc.collection", "json", collection_id=level.key),
                               "collection", JSON, f"collection {level.key}")]
    return data


# -- Part 1 ------------------------------------------------------------------------------------

@bp.get("/")
@bp.get("")
def landing() -> Response:
    """The landing page: links to the API document, conformance and the collections."""
    links = [
        *_self_links("ogc.landing", JSON, "This landing page"),
        _link(_url("ogc.api", "json"), "service-desc", OPENAPI_MEDIA,
              "The API definition (OpenAPI 3.0)"),
        _link(_url("ogc.api", "html"), "service-doc", HTML, "The API documentation"),
        _link(_url("ogc.conformance", "json"), "conformance", JSON, "Conformance classes"),
        _link(_url("ogc.conformance", "json"), OGC_REL + "conformance", JSON,
              "Conformance classes"),
        _link(_url("ogc.collections", "json"), "data", JSON, "The collections"),
        _link(_url("ogc.collections", "json"), OGC_REL + "data", JSON, "The collections"),
    ]
    data: dict[str, Any] = {"title": "gridsvc OGC API - Features",
            "description": "The organisation tree (streets, communities, grids, buildings, "
                           "党员中心户) as OGC API - Features: one collection per level.",
            "links": links}
    return _respond(data, JSON, data["title"],
                    html.paragraph(data["description"]) + html.link_list(links))


@bp.get("/conformance")
def conformance() -> Response:
    data = {"links": _self_links("ogc.conformance", JSON, "Conformance"),
            "conformsTo": CONFORMANCE}
    return _respond(data, JSON, "Conformance classes",
                    html.table(["class"], ([html.cell(c)] for c in CONFORMANCE)))


@bp.get("/api")
def api() -> Response:
    """The OpenAPI 3.0 document of these routes (HTML: a list of its operations)."""
    keys = [lv.key for lv in current_services().hierarchy.levels]
    doc = ogc_openapi_document(_url("ogc.landing"), keys)
    if _wants_html():
        rows = ([html.cell(method.upper()), html.cell("/ogc" + path.rstrip("/")),
                 html.cell(op.get("summary"))]
                for path, item in doc["paths"].items() for method, op in item.items())
        body = html.paragraph(doc["info"]["description"]) + html.table(
            ["method", "path", "what"], rows)
        links = [_link(_url("ogc.api", "json"), "service-desc", OPENAPI_MEDIA, "OpenAPI 3.0")]
        response = Response(html.page("API", body, links), mimetype=HTML)
    else:
        response = json_response(doc, mimetype=OPENAPI_MEDIA)
    response.vary.add("Accept")
    return response


def _collection(info: ogc.CollectionInfo) -> dict[str, Any]:
    key = info.level.key
    data: dict[str, Any] = {
        "id": key, "title": info.level.name,
        "description": f"level {info.level.level} of the organisation tree "
                       f"({info.level.geometry}s): {info.count} in this token's subtree",
        "itemType": "feature",
        "crs": list(ogc.SUPPORTED_CRS), "storageCrs": ogc.CRS84,
        "links": [
            _link(_url("ogc.collection", "json", collection_id=key), "self", JSON, key),
            _link(_url("ogc.collection", "html", collection_id=key), "alternate", HTML, key),
            _link(_url("ogc.items", "json", collection_id=key), "items", GEOJSON,
                  f"{key} features"),
            _link(_url("ogc.items", "html", collection_id=key), "items", HTML,
                  f"{key} features as HTML"),
            _link(_url("ogc.queryables", None, collection_id=key), OGC_REL + "queryables",
                  SCHEMA_MEDIA, f"what {key} features can be filtered by"),
            _link(_url("ogc.schema", None, collection_id=key), "describedby", SCHEMA_MEDIA,
                  f"the schema of {key} features"),
            _link(_url("ogc.schema", None, collection_id=key), OGC_REL + "schema",
                  SCHEMA_MEDIA, f"the schema of {key} features"),
        ],
    }
    if info.bbox is not None:
        data["extent"] = {"spatial": {"bbox": [list(info.bbox)], "crs": ogc.CRS84}}
    return data


@bp.get("/collections")
def collections() -> Response:
    viewer = require(Permission.READ_UNITS)
    infos = ogc.collections(current_services(), viewer)
    data = {"links": _self_links("ogc.collections", JSON, "Collections"),
            "collections": [_collection(i) for i in infos]}
    rows = ([html.link_cell(_url("ogc.collection", "html", collection_id=i.level.key),
                            i.level.key), html.cell(i.level.name), html.cell(i.count),
             html.cell(", ".join(f"{v:.6f}" for v in i.bbox) if i.bbox else "")]
            for i in infos)
    return _respond(data, JSON, "Collections",
                    html.table(["id", "title", "features", "bbox (CRS84)"], rows))


@bp.get("/collections/<collection_id>")
def collection(collection_id: str) -> Response:
    viewer = require(Permission.READ_UNITS)
    svc = current_services()
    level = ogc.collection_level(svc, collection_id)
    [info] = [i for i in ogc.collections(svc, viewer) if i.level == level]
    data = _collection(info)
    data["links"][:2] = _self_links("ogc.collection", JSON, collection_id,
                                    collection_id=collection_id)
    body = html.properties_table({"id": level.key, "title": level.name, "level": level.level,
                                  "geometry": level.geometry, "features": info.count,
                                  "bbox (CRS84)": info.bbox})
    return _respond(data, JSON, f"Collection {level.key}", body)


def _bbox(crs: str) -> tuple[float, float, float, float] | None:
    """The ``bbox`` in ``crs`` (the ``bbox-crs``) axis order: lower corner, upper corner."""
    raw = request.args.get("bbox", "").strip()
    if not raw:
        return None
    try:
        values = [float(v) for v in raw.split(",")]
    except ValueError:
        values = []
    if len(values) == 6:  # minlon,minlat,minz,maxlon,maxlat,maxz: heights do not matter here
        values = [values[0], values[1], values[3], values[4]]
    if crs == ogc.CRS84:
        ranges_ok = len(values) == 4 and (-180 <= values[0] <= values[2] <= 180
                                          and -90 <= values[1] <= values[3] <= 90)
        if not ranges_ok:
            raise InvalidInput(f"bbox must be minlon,minlat,maxlon,maxlat in CRS84 with min <= "
                               f"max, got {raw!r}", field="bbox")
    elif crs in ogc.GEOGRAPHIC_CRS:
        ranges_ok = len(values) == 4 and (-90 <= values[0] <= values[2] <= 90
                                          and -180 <= values[1] <= values[3] <= 180)
        if not ranges_ok:
            raise InvalidInput(f"bbox must be minlat,minlon,maxlat,maxlon in {crs} (its axis "
                               f"order) with min <= max, got {raw!r}", field="bbox")
    elif len(values) != 4 or not all(math.isfinite(v) for v in values) or not (
            values[0] <= values[2] and values[1] <= values[3]):
        raise InvalidInput(f"bbox must be the lower and the upper corner in the axis order of "
                           f"bbox-crs {crs} (4 numbers, min <= max), got {raw!r}", field="bbox")
    return values[0], values[1], values[2], values[3]


def _page_links(level: Level, page: ogc.FeaturePage) -> list[dict[str, str]]:
    args = {k: v for k, v in request.args.items() if k != "f"} | {"limit": str(page.limit)}

    def at(offset: int, fmt: str) -> str:
        return _url("ogc.items", fmt, collection_id=level.key, **(args | {"offset": offset}))

    links = [_link(at(page.offset, "json"), "self", GEOJSON, "this page as GeoJSON"),
             _link(at(page.offset, "html"), "alternate", HTML, "this page as HTML")]
    if _wants_html():
        links[0]["rel"], links[1]["rel"] = "alternate", "self"
        links.reverse()
    fmt, media = ("html", HTML) if _wants_html() else ("json", GEOJSON)
    if page.offset + page.limit < page.matched:
        links.append(_link(at(page.offset + page.limit, fmt), "next", media, "next page"))
    if page.offset > 0:
        links.append(_link(at(max(0, page.offset - page.limit), fmt), "prev", media,
                           "previous page"))
    links.append(_link(_url("ogc.collection", "json", collection_id=level.key), "collection",
                       JSON, f"collection {level.key}"))
    return links


@bp.get("/collections/<collection_id>/items")
def items(collection_id: str) -> Response:
    viewer = require(Permission.READ_UNITS)
    svc = current_services()
    level = ogc.collection_level(svc, collection_id)
    _refuse_unknown_args(ITEMS_PARAMS, "items")
    crs = _crs_arg()
    bbox_crs = ogc.crs_of(request.args.get("bbox-crs"), "bbox-crs")
    query = ogc_filter.Query(
        properties={k: v for k, v in request.args.items() if k in SIMPLE_FILTERS},
        filter=request.args.get("filter"),
        filter_lang=request.args.get("filter-lang", "cql2-text").strip().lower(),
        filter_crs=ogc.crs_of(request.args.get("filter-crs"), "filter-crs"),
        sortby=request.args.get("sortby"))
    page = ogc.items(svc, level, viewer=viewer, bbox=_bbox(bbox_crs), bbox_crs=bbox_crs,
                     crs=crs, limit=int_arg("limit", ogc.DEFAULT_LIMIT),
                     offset=int_arg("offset", 0), query=query)
    data = {
        "type": "FeatureCollection",
        "timeStamp": datetime.now(UTC).isoformat(timespec="seconds").replace("+00:00", "Z"),
        "numberMatched": page.matched, "numberReturned": len(page.items),
        "features": [_feature(v, level) for v in page.items],
        "links": _page_links(level, page),
    }
    header = ["code", *ogc.PROPERTIES[1:]]
    rows = ([html.link_cell(_url("ogc.get_item", "html", collection_id=level.key,
                                 feature_id=v.props["code"]), v.props["code"]),
             *(html.cell(v.props[k]) for k in ogc.PROPERTIES[1:])] for v in page.items)
    body = html.paragraph(f"{page.offset + 1 if page.items else 0}–"
                          f"{page.offset + len(page.items)} of {page.matched}")
    return _with_crs(_respond(data, GEOJSON, f"{level.name} ({level.key})",
                              body + html.table(header, rows)), crs)


@bp.get("/collections/<collection_id>/queryables")
def queryables(collection_id: str) -> Response:
    """Part 3: the properties ``filter`` and the simple filters may name (JSON Schema)."""
    require(Permission.READ_UNITS)
    level = ogc.collection_level(current_services(), collection_id)
    data = ogc_filter.queryables_schema(f"{level.name} ({level.key})", _geometry_kind(level))
    data["$id"] = _url("ogc.queryables", None, collection_id=level.key)
    return json_response(data, mimetype=SCHEMA_MEDIA)


@bp.get("/collections/<collection_id>/schema")
def schema(collection_id: str) -> Response:
    """Part 5: the features' properties with their real types (GDAL reads field types from
    it instead of guessing from the first page)."""
    require(Permission.READ_UNITS)
    level = ogc.collection_level(current_services(), collection_id)
    data = ogc.feature_schema(f"{level.name} ({level.key})", _geometry_kind(level))
    data["$id"] = _url("ogc.schema", None, collection_id=level.key)
    return json_response(data, mimetype=SCHEMA_MEDIA)


def _geometry_kind(level: Level) -> str:
    return "point" if level.geometry == "point" else "multipolygon"


@bp.get("/collections/<collection_id>/items/<feature_id>")
def get_item(collection_id: str, feature_id: str) -> Response:
    viewer = require(Permission.READ_UNITS)
    svc = current_services()
    level = ogc.collection_level(svc, collection_id)
    _refuse_unknown_args(ITEM_PARAMS, "single features")
    crs = _crs_arg()
    view = ogc.item(svc, level, feature_id, viewer=viewer, crs=crs)
    data = _feature(view, level, links=True)
    geom = view.geometry
    extra = {"geometry": geom.geom_type if geom is not None else None,
             f"bbox ({crs.rsplit('/', 1)[-1]})":
                 ", ".join(f"{v:.6f}" for v in geom.bounds) if geom else None}
    response = _respond(data, GEOJSON, f"{view.props['name']} ({feature_id})",
                        html.properties_table(data["properties"] | extra))
    response.set_etag(unit_etag(feature_id, view.props["version"]))
    _with_crs(response, crs)
    response.make_conditional(request)  # turns itself into a 304 when the ETag matches
    return response


# -- Part 4 ------------------------------------------------------------------------------------

def _body() -> Any:
    """The request's JSON body (None when it is not JSON); 415 for another media type."""
    if request.mimetype not in BODY_TYPES:
        patch = f" or {MERGE_PATCH}" if request.method == "PATCH" else ""
        abort(problem_response(415, "unsupported-media-type",
                               f"send the body as {GEOJSON} or {JSON}{patch}, not "
                               f"{request.mimetype}"))
    return request.get_json(force=True, silent=True)


def _content_crs() -> str:
    """The CRS of a write's geometry: the ``Content-Crs`` header (CRS84 when absent)."""
    return ogc.crs_of(request.headers.get("Content-Crs"), "Content-Crs")


def _written(result: ogc.WriteOutcome, level: Level, status: int = 200,
             crs: str = ogc.CRS84) -> Response:
    """The stored feature, its geometry in the CRS the write was sent in."""
    code = result.unit.props["code"]
    data = _feature(ogc.in_crs(result.unit, crs), level, links=True) | {
        "revision": result.outcome.revision,
        "moves": [m.as_dict() for m in result.outcome.moves],
    }
    response = _with_crs(json_response(data, status=status, mimetype=GEOJSON), crs)
    response.set_etag(unit_etag(code, result.version))
    set_target(f"unit:{code}", moves=len(result.outcome.moves))
    return response


@bp.post("/collections/<collection_id>/items")
def create_item(collection_id: str) -> Response:
    viewer = require(Permission.EDIT_BOUNDARIES)
    svc = current_services()
    level = ogc.collection_level(svc, collection_id)
    data = _body()
    body = data if isinstance(data, dict) else {}
    props: dict[str, Any] = body["properties"] if isinstance(body.get("properties"), dict) else {}
    code = props.get("code") or body.get("id")
    if code:
        set_target(f"unit:{code}")
    crs = _content_crs()
    result = ogc.create(svc, level, data, viewer=viewer, content_crs=crs)
    response = _written(result, level, status=201, crs=crs)
    response.headers["Location"] = _url("ogc.get_item", collection_id=level.key,
                                        feature_id=result.unit.props["code"])
    return response


@bp.put("/collections/<collection_id>/items/<feature_id>")
def replace_item(collection_id: str, feature_id: str) -> Response:
    return _rewrite(ogc.replace, collection_id, feature_id)


@bp.patch("/collections/<collection_id>/items/<feature_id>")
def update_item(collection_id: str, feature_id: str) -> Response:
    return _rewrite(ogc.update, collection_id, feature_id)


def _rewrite(write: Callable[..., Any], collection_id: str, feature_id: str) -> Response:
    """A replace (PUT) or update (PATCH) of one feature."""
    viewer = require(Permission.EDIT_BOUNDARIES)
    svc = current_services()
    level = ogc.collection_level(svc, collection_id)
    data = _body()
    crs = _content_crs()
    result = write(svc, level, feature_id, data, if_match=if_match_version(feature_id),
                   viewer=viewer, content_crs=crs)
    return _written(result, level, crs=crs)


@bp.delete("/collections/<collection_id>/items/<feature_id>")
def delete_item(collection_id: str, feature_id: str) -> Response:
    viewer = require(Permission.EDIT_BOUNDARIES)
    svc = current_services()
    level = ogc.collection_level(svc, collection_id)
    outcome = ogc.delete(svc, level, feature_id, if_match=if_match_version(feature_id),
                         viewer=viewer)
    return json_response(outcome.as_dict())

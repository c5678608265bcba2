"""OGC API - Features over the organisation tree: one collection per hierarchy level.

Framework-free: ``gridsvc.web.ogc`` renders what these functions return. A collection's id is
its level key (street, community, grid, building, household with the default hierarchy); a
feature's id is the unit code. Reads are scoped to the viewer's subtree: a unit outside it is
not listed and reads as missing. Writes (Part 4) build one ``BoundaryRecord`` and run it
through ``boundaries.import_records``, so a created, replaced or updated unit is validated by
exactly the rules of a file import (codes, level, parent, containment, sibling overlaps...)
and moves members and 党员中心户 as an import does; deletes go to ``unit_delete``.

Optimistic locking: replace, update and delete need the version the caller read, from
``If-Match`` (the web layer parses it) or, for replace and update, the feature's ``version``
property (clients such as OWSLib cannot send If-Match); without either they raise
``PreconditionRequired`` (428), with a stale one ``VersionConflict`` (412).

Coordinate reference systems (Part 2, ``gridsvc.spatial.ogc_crs``): reads return geometries in
the ``crs`` asked for, a ``bbox`` may be given in another ``bbox_crs``, and writes take their
geometry in ``content_crs``; all default to CRS84 (the storage's lon/lat). ``crs_of`` turns a
client's CRS name into the canonical URI, an unsupported one into ``InvalidInput`` listing
the supported ones (``supported`` in the problem).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import geopandas as gpd
from shapely.geometry import mapping
from shapely.geometry.base import BaseGeometry
from sqlalchemy import ColumnElement, func, select
from sqlalchemy.orm import Session
from sqlalchemy.orm.exc import StaleDataError

from gridsvc.access import Principal, system_principal
from gridsvc.hierarchy import Level
from gridsvc.io.records import BoundaryRecord
from gridsvc.services import authz, ogc_filter, scope, unit_delete
from gridsvc.services.authz import Action, UnitResource
from gridsvc.services.boundaries import ImportOutcome, import_records
from gridsvc.services.context import Services
from gridsvc.services.editing import geometry_from_geojson
from gridsvc.services.errors import (
    Conflict,
    Forbidden,
    InvalidInput,
    NotFound,
    ServiceError,
    ValidationFailed,
    VersionConflict,
    refuse_unknown,
)
from gridsvc.services.ogc_filter import Query
from gridsvc.services.tree import UnitView, unit_props
from gridsvc.spatial import ogc_crs
from gridsvc.spatial.crs import CHINA_LONLAT_BOX, outside_china
from gridsvc.storage import units as q
from gridsvc.storage.models import Unit
from gridsvc.validation.report import Problem, Report

CRS84 = ogc_crs.CRS84
SUPPORTED_CRS = ogc_crs.SUPPORTED
GEOGRAPHIC_CRS = tuple(f"{ogc_crs.EPSG_URI}{code}" for code in ogc_crs.GEOGRAPHIC_EPSG)
DEFAULT_LIMIT = 100
MAX_LIMIT = 1000
# The properties of a feature, in this order; the unit's public contact included.
PROPERTIES = ("code", "name", "level", "parent_code", "leader", "phone", "households",
              "address", "version")
# Properties a write may set, with their JSON type; code, level and version are checked only.
WRITABLE: dict[str, type] = {"name": str, "parent_code": str, "leader": str, "phone": str,
                             "households": int, "address": str}
LAYER = "ogc"


class PreconditionRequired(ServiceError):
    """A change of a unit came without the version it was read at."""

    slug = "precondition-required"
    title = "Precondition required"
    status = 428


@dataclass(frozen=True)
class CollectionInfo:
    level: Level
    count: int  # units of this level in the viewer's subtree
    bbox: tuple[float, float, float, float] | None  # CRS84; None when it holds none


@dataclass
class FeaturePage:
    items: list[UnitView]
    matched: int
    limit: int
    offset: int


@dataclass
class WriteOutcome:
    unit: UnitView  # as stored afterwards, with geometry
    outcome: ImportOutcome

    @property
    def version(self) -> int:
        return int(self.unit.props["version"])


# -- reading -----------------------------------------------------------------------------------

def feature_properties(view: UnitView) -> dict[str, Any]:
    """The unit's feature properties (``PROPERTIES``)."""
    return {key: view.props[key] for key in PROPERTIES}


def crs_of(value: str | None, field: str) -> str:
    """The canonical URI of the CRS a client named in ``field`` (None or blank: CRS84);
    ``InvalidInput`` naming the field and listing the supported CRSs otherwise."""
    if value is None or not value.strip():
        return CRS84
    try:
        return ogc_crs.parse_crs(value)
    except ogc_crs.UnsupportedCrs as exc:
        raise InvalidInput(f"{field}: {exc}", field=field,
                           supported=list(SUPPORTED_CRS)) from None


def in_crs(view: UnitView, crs: str) -> UnitView:
    """The view with its (CRS84) geometry in ``crs``."""
    if crs == CRS84:
        return view
    return dataclasses.replace(view, geometry=_projected(view.geometry, crs))


def _projected(geom: BaseGeometry | None, crs: str) -> BaseGeometry | None:
    try:
        return ogc_crs.from_crs84(geom, crs)
    except ogc_crs.UnsupportedCrs as exc:
        raise InvalidInput(str(exc), field="crs", supported=list(SUPPORTED_CRS)) from None


def feature_schema(title: str, geometry: str) -> dict[str, Any]:
    """The JSON Schema of a collection's features (``/collections/{id}/schema``)."""
    text, nullable_text = {"type": "string"}, {"type": ["string", "null"]}
    props: dict[str, Any] = {
        "code": text | {"x-ogc-role": "id"}, "name": text, "level": {"type": "integer"},
        "parent_code": nullable_text, "leader": nullable_text, "phone": nullable_text,
        "households": {"type": ["integer", "null"]}, "address": nullable_text,
        "version": {"type": "integer"},
        "geometry": {"format": f"geometry-{geometry}", "x-ogc-role": "primary-geometry"},
    }
    return {"$schema": "https://json-schema.org/draft/2020-12/schema", "type": "object",
            "title": title, "properties": props}


def collection_level(svc: Services, collection_id: str) -> Level:
    for level in svc.hierarchy.levels:
        if level.key == collection_id:
            return level
    keys = ", ".join(lv.key for lv in svc.hierarchy.levels)
    raise NotFound(f"no collection {collection_id!r}; the collections are {keys}",
                   field="collectionId")


def scope_filters(viewer: Principal) -> list[ColumnElement[bool]]:
    """Filters that keep a query to the viewer's subtree (None: everything)."""
    found = scope.unit_filter(viewer)
    return [] if found is None else [found]


def _extent_columns(session: Session) -> list[Any]:
    if session.get_bind().dialect.name == "sqlite":
        xmin, ymin, xmax, ymax = func.MbrMinX, func.MbrMinY, func.MbrMaxX, func.MbrMaxY
    else:
        xmin, ymin, xmax, ymax = func.ST_XMin, func.ST_YMin, func.ST_XMax, func.ST_YMax
    return [func.min(xmin(Unit.geom)), func.min(ymin(Unit.geom)),
            func.max(xmax(Unit.geom)), func.max(ymax(Unit.geom))]


def collections(svc: Services, viewer: Principal) -> list[CollectionInfo]:
    """Every level as a collection, with its count and extent within the viewer's subtree."""
    with svc.db.session() as session:
        rows = session.execute(
            select(Unit.level, func.count(), *_extent_columns(session))
            .where(*scope_filters(viewer)).group_by(Unit.level)
        ).all()
    found = {r[0]: r for r in rows}
    out = []
    for level in svc.hierarchy.levels:
        row = found.get(level.level)
        bbox = tuple(float(v) for v in row[2:6]) if row and row[2] is not None else None
        # (the ignore below: the bbox of a level with units)
        out.append(CollectionInfo(level, row[1] if row else 0, bbox))  # type: ignore[arg-type]
    return out


def _views(rows: list[Any], svc: Services) -> list[UnitView]:
    units = [r[0] for r in rows]
    geoms = q.geometries(units)
    return [UnitView(unit_props(u, parent_code, svc.hierarchy), g)
            for (u, parent_code), g in zip(rows, geoms, strict=True)]


def items(svc: Services, level: Level, *, viewer: Principal,
          bbox: tuple[float, float, float, float] | None = None,
          limit: int = DEFAULT_LIMIT, offset: int = 0, crs: str = CRS84,
          bbox_crs: str = CRS84, query: Query | None = None) -> FeaturePage:
    """One page of a collection's features in the viewer's subtree, their geometry in
    ``crs``; ``bbox`` is in ``bbox_crs`` axis order; ``query`` filters and sorts (Part 3,
    ``ogc_filter``; by code without it). A limit above ``MAX_LIMIT`` is lowered to it."""
    if limit < 1:
        raise InvalidInput(f"limit must be between 1 and {MAX_LIMIT}", field="limit")
    if offset < 0:
        raise InvalidInput("offset must not be negative", field="offset")
    limit = min(limit, MAX_LIMIT)
    with svc.db.session() as session:
        filters = [Unit.level == level.level, *scope_filters(viewer)]
        if bbox is not None:
            try:
                wgs84_box = ogc_crs.bbox_to_crs84(bbox, bbox_crs)
            except ogc_crs.UnsupportedCrs as exc:
                raise InvalidInput(str(exc), field="bbox") from None
            filters.append(q.bbox_filter(session, wgs84_box))
        stmt, parent = q.with_parent_code()
        order = [Unit.code]
        if query is not None:
            filters += ogc_filter.conditions(session, parent, query)
            order = ogc_filter.order_by(parent, query.sortby)
        matched = session.scalar(
            select(func.count()).select_from(Unit)
            .outerjoin(parent, Unit.parent_id == parent.id).where(*filters)) or 0
        rows = session.execute(
            stmt.where(*filters).order_by(*order).limit(limit).offset(offset)).all()
        views = _views([tuple(r) for r in rows], svc)
    return FeaturePage([in_crs(v, crs) for v in views], matched, limit, offset)


def item(svc: Services, level: Level, code: str, *,
         viewer: Principal, crs: str = CRS84) -> UnitView:
    """One feature, its geometry in ``crs``; ``NotFound`` when it is missing, of another level
    or outside the subtree."""
    with svc.db.session() as session:
        stmt, _parent = q.with_parent_code()
        row = session.execute(
            stmt.where(Unit.code == code, Unit.level == level.level, *scope_filters(viewer))
        ).first()
        if row is None:
            raise NotFound(f"no feature {code!r} in collection {level.key!r}", code=code)
        return in_crs(_views([tuple(row)], svc)[0], crs)


# -- writing -----------------------------------------------------------------------------------

def create(svc: Services, level: Level, data: Any, *,
           viewer: Principal, content_crs: str = CRS84) -> WriteOutcome:
    """Store a new unit of ``level`` from a GeoJSON Feature whose geometry is in
    ``content_crs``; ``Forbidden`` when its parent
    lies outside the viewer's subtree, ``Conflict`` when its code is taken (saying so only
    when the unit holding it is in the viewer's subtree)."""
    feature = _feature(data)
    props = _properties(feature)
    code = _feature_code(feature, props, None)
    if code is None:
        raise InvalidInput("a new feature needs its unit code: properties.code (or id)",
                           field="code")
    geometry = _geometry(feature, content_crs)
    parent_code = props.get("parent_code")
    with svc.db.session() as session:
        _check_parent_scope(session, viewer, parent_code, level)
        taken = session.scalar(select(Unit.path).where(Unit.code == code))
    if taken is not None:
        if viewer is None or viewer.covers(taken):
            raise Conflict(f"a unit with code {code!r} exists already; replace or update it "
                           "instead", code=code)
        # Outside the caller's subtree: what is stored there is not theirs to learn.
        raise Conflict(f"the code {code!r} cannot be used by this token; choose another "
                       "code", code=code)
    record = BoundaryRecord(
        row=1, code=code, name=props.get("name") or "", level=level.level,
        parent_code=parent_code, geometry=geometry, leader=props.get("leader"),
        phone=props.get("phone"), households=props.get("households"),
        address=props.get("address"), layer=LAYER,
    )
    return _save(svc, record, _level_report(level, props, code), None, viewer)


def replace(svc: Services, level: Level, code: str, data: Any, *,
            if_match: int | None = None, viewer: Principal,
            content_crs: str = CRS84) -> WriteOutcome:
    """Replace a unit's geometry (in ``content_crs``) and attributes by a Feature: leader,
    phone, households and address it leaves out are cleared; a missing parent_code keeps the
    parent."""
    stored = _stored_for_write(svc, level, code, viewer)
    feature = _feature(data)
    props = _properties(feature)
    _feature_code(feature, props, code)
    expected = _expected_version(code, if_match, props, _unlocked(svc, stored))
    record = BoundaryRecord(
        row=1, code=code, name=props.get("name") or "", level=level.level,
        parent_code=props.get("parent_code", stored.props["parent_code"]),
        geometry=_geometry(feature, content_crs), leader=props.get("leader"),
        phone=props.get("phone"),
        households=props.get("households"), address=props.get("address"),
        service_area=_stored_service_area(svc, code), properties=dict(stored.props["properties"]),
        layer=LAYER,
    )
    _check_move(svc, viewer, stored, record, level)
    return _save(svc, record, _level_report(level, props, code), expected, viewer)


def update(svc: Services, level: Level, code: str, patch: Any, *,
           if_match: int | None = None, viewer: Principal,
           content_crs: str = CRS84) -> WriteOutcome:
    """Apply a JSON merge patch (RFC 7396) of ``geometry`` (in ``content_crs``) and/or
    ``properties`` to a unit: properties it names change (null clears), the others stay."""
    stored = _stored_for_write(svc, level, code, viewer)
    if not isinstance(patch, dict):
        raise InvalidInput("send a JSON object with geometry and/or properties to change",
                           field="body")
    unknown = sorted(set(patch) - {"type", "id", "geometry", "properties", "links"})
    if unknown:
        raise InvalidInput(f"cannot patch {', '.join(unknown)}: only geometry and properties",
                           field=unknown[0])
    props = _properties(patch)
    _feature_code(patch, props, code)
    expected = _expected_version(code, if_match, props, _unlocked(svc, stored))
    p = stored.props
    record = BoundaryRecord(
        row=1, code=code, name=p["name"], level=level.level, parent_code=p["parent_code"],
        geometry=stored.geometry, leader=p["leader"], phone=p["phone"],
        households=p["households"], address=p["address"],
        service_area=_stored_service_area(svc, code), properties=dict(p["properties"]),
        layer=LAYER,
    )
    if "geometry" in patch:
        record.geometry = _geometry(patch, content_crs)
    for key in WRITABLE:
        if key in props:
            setattr(record, key, props[key])
    if record.name is None:
        record.name = ""
    _check_move(svc, viewer, stored, record, level)
    return _save(svc, record, _level_report(level, props, code), expected, viewer)


def delete(svc: Services, level: Level, code: str, *, if_match: int | None = None,
           viewer: Principal) -> unit_delete.DeleteOutcome:
    """Delete a unit without child units (see ``unit_delete``); needs If-Match."""
    stored = _stored_for_write(svc, level, code, viewer)
    if if_match is None:
        if_match = _unlocked(svc, stored)
    if if_match is None:
        raise PreconditionRequired(
            f"send If-Match with the ETag of feature {code} as you read it, so a delete "
            "cannot remove a unit someone changed since", code=code)
    return unit_delete.delete_unit(svc, code, expected_version=if_match, viewer=viewer)


# -- helpers -----------------------------------------------------------------------------------

def _feature(data: Any) -> dict[str, Any]:
    if not isinstance(data, dict) or data.get("type") != "Feature":
        raise InvalidInput("send one GeoJSON Feature (type Feature, geometry in CRS84 "
                           "lon/lat, properties)", field="body")
    return data


def _properties(feature: Mapping[str, Any]) -> dict[str, Any]:
    props = feature.get("properties") or {}
    if not isinstance(props, dict):
        raise InvalidInput("properties must be a JSON object", field="properties")
    refuse_unknown(props, PROPERTIES, "properties")
    for key, kind in WRITABLE.items():
        value = props.get(key)
        if value is not None and (not isinstance(value, kind) or isinstance(value, bool)):
            raise InvalidInput(f"{key} must be a {'string' if kind is str else 'whole number'}"
                               " or null", field=key)
    return props


def _feature_code(feature: Mapping[str, Any], props: Mapping[str, Any],
                  path_code: str | None) -> str | None:
    """The unit code a body names (properties.code or id); it must match the URL's."""
    named = {str(v) for v in (props.get("code"), feature.get("id")) if v not in (None, "")}
    if path_code is not None:
        named.add(path_code)
    if len(named) > 1:
        codes = ", ".join(sorted(named))
        raise InvalidInput(f"the feature names more than one unit code ({codes}); a code "
                           "cannot be changed, create a new feature instead",
                           field="code")
    return named.pop() if named else None


def _geometry(feature: Mapping[str, Any], crs: str = CRS84) -> BaseGeometry:
    """The feature's geometry as CRS84, read in ``crs`` (the request's Content-Crs)."""
    if feature.get("geometry") is None:
        raise InvalidInput("a unit needs its geometry (CRS84 lon/lat, or in the request's "
                           "Content-Crs)", field="geometry")
    geom = geometry_from_geojson(feature["geometry"])
    if crs != CRS84:
        try:
            geom = geometry_from_geojson(mapping(ogc_crs.to_crs84(geom, crs)))
        except ogc_crs.UnsupportedCrs as exc:
            raise InvalidInput(str(exc), field="geometry") from None
    # A geometry in the wrong CRS or axis order (lat, lon sent as lon, lat) lands far from
    # China; the import's rules measure in metres and cannot be trusted with it.
    if outside_china(gpd.GeoSeries([geom])).any():
        lon0, lat0, lon1, lat1 = CHINA_LONLAT_BOX
        raise InvalidInput(f"the geometry lies outside China (lon {lon0}..{lon1}, lat "
                           f"{lat0}..{lat1} in CRS84) once read in {crs}: is it in another "
                           "CRS or axis order? (send Content-Crs)", field="geometry")
    return geom


def _level_report(level: Level, props: Mapping[str, Any], code: str) -> Report:
    """The problems of the request itself, reported with the validation's: a ``level``
    property that is not this collection's."""
    report = Report()
    named = props.get("level")
    if named is not None and str(named) not in (str(level.level), level.key, level.name):
        report.add(Problem("error", "wrong-collection",
                           f"level {named!r} is not the level of collection {level.key!r} "
                           f"({level.level}); post the feature to its level's collection",
                           code=code, row=1, layer=LAYER, field="level"))
    return report


def _unlocked(svc: Services, stored: UnitView) -> int | None:
    """The version a write without a precondition is checked against: none (428) unless
    ``GRIDSVC_OGC_PRECONDITION=optional`` lets clients that send neither If-Match nor a version
    (desktop GIS such as QGIS) write against the version stored now."""
    return stored.props["version"] if svc.settings.ogc_precondition == "optional" else None


def _expected_version(code: str, if_match: int | None, props: Mapping[str, Any],
                      unlocked: int | None = None) -> int:
    version = props.get("version")
    if version is not None and (not isinstance(version, int) or isinstance(version, bool)):
        raise InvalidInput("version must be the whole number read with the feature",
                           field="version")
    if if_match is not None and version is not None and if_match != version:
        raise InvalidInput(f"If-Match names version {if_match} but properties.version is "
                           f"{version}", field="version")
    expected = if_match if if_match is not None else version
    if expected is None:
        expected = unlocked
    if expected is None:
        raise PreconditionRequired(
            f"send If-Match with the ETag of feature {code}, or its version in "
            "properties.version, as you read it, so a change cannot overwrite someone "
            "else's", code=code)
    return expected


def _stored_for_write(svc: Services, level: Level, code: str,
                      viewer: Principal) -> UnitView:
    """The unit a write names; ``Forbidden`` (not 404: writes say why) outside the subtree."""
    stored = item(svc, level, code, viewer=system_principal("ogc write check"))
    with svc.db.session() as session:
        path = session.scalar(select(Unit.path).where(Unit.code == code))
    if not authz.allowed(viewer, Action.WRITE_UNIT, UnitResource(path, code)):
        raise Forbidden(f"unit {code} lies outside the subtree of {viewer.scope_label}; "
                        "this token may not change it", code=code)
    return stored


def _check_parent_scope(session: Session, viewer: Principal, parent_code: Any,
                        level: Level) -> None:
    """A new or moved unit's parent must lie in the viewer's subtree; only a city-wide
    caller may add a unit without a parent."""
    if viewer is None or viewer.city_wide:
        return
    if parent_code in (None, ""):
        raise Forbidden(f"only a city-wide token may add a {level.key} without a parent; "
                        f"this token covers {viewer.scope_label}", field="parent_code")
    path = session.scalar(select(Unit.path).where(Unit.code == str(parent_code)))
    if path is not None and not viewer.covers(path):
        raise Forbidden(f"parent {parent_code} lies outside the subtree of "
                        f"{viewer.scope_label}", field="parent_code")


def _check_move(svc: Services, viewer: Principal, stored: UnitView,
                record: BoundaryRecord, level: Level) -> None:
    if record.parent_code != stored.props["parent_code"]:
        with svc.db.session() as session:
            _check_parent_scope(session, viewer, record.parent_code, level)


def _stored_service_area(svc: Services, code: str) -> BaseGeometry | None:
    with svc.db.session() as session:
        unit = session.scalar(select(Unit).where(Unit.code == code))
        return q.geometries([unit], "service_area")[0] if unit is not None else None


def _save(svc: Services, record: BoundaryRecord, report: Report, expected: int | None,
          viewer: Principal) -> WriteOutcome:
    code = record.code
    stale = (f"unit {code} was changed by someone else since you read it; nothing was "
             "stored: read it again and redo the change")
    if expected is not None:
        with svc.db.session() as session:
            version = session.scalar(select(Unit.version).where(Unit.code == code))
        if version != expected:
            raise VersionConflict(f"unit {code} is at version {version}, not {expected}: "
                                  + stale, code=code, version=version)
    try:
        outcome = import_records(svc, [record], report=report, viewer=viewer,
                                 expected_versions=None if expected is None else {code: expected})
    except VersionConflict as exc:
        raise VersionConflict(stale, code=code, version=exc.extra.get("version")) from None
    except StaleDataError:
        raise VersionConflict(stale, code=code) from None
    if not outcome.report.ok:
        errors = len(outcome.report.errors)
        raise ValidationFailed(
            f"feature {code} breaks {errors} rule{'s' if errors != 1 else ''}; nothing was "
            "stored", code=code, report=outcome.report.as_dict(with_geometry=True))
    with svc.db.session() as session:
        stmt, _parent = q.with_parent_code()
        row = session.execute(stmt.where(Unit.code == code)).one()
        view = _views([tuple(row)], svc)[0]
    return WriteOutcome(view, outcome)

"""Reading the organisation tree: lists with filters, one unit with its ancestors, children,
and subtrees. Returns plain views; the web layer renders them as JSON or GeoJSON.

Every read takes the ``viewer`` (``gridsvc.access``; None: everything) and keeps to their
subtree (``gridsvc.services.scope``): units outside it are left out of lists and are 404 when
named. A unit's ``ancestors`` stay complete (code, name and level only), so a scoped caller
sees where their subtree hangs; a unit above the scope root may be named as ``parent`` or as the
root of ``children``/``subtree``, whose results are limited to the subtree.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from shapely.geometry.base import BaseGeometry
from sqlalchemy import func, or_, select

from gridsvc.access import Principal
from gridsvc.hierarchy import Hierarchy
from gridsvc.services import scope
from gridsvc.services.context import Services
from gridsvc.services.errors import InvalidInput, NotFound
from gridsvc.storage import units as q
from gridsvc.storage.models import Unit

MAX_LIMIT = 1000


@dataclass
class UnitView:
    """A unit's public properties and, when asked for, its geometry (wgs84)."""

    props: dict[str, Any]
    geometry: BaseGeometry | None = None
    service_area: BaseGeometry | None = None


@dataclass
class UnitPage:
    items: list[UnitView]
    total: int
    limit: int
    offset: int


@dataclass
class UnitDetail:
    unit: UnitView
    ancestors: list[dict[str, Any]]
    children: int
    descendants: dict[str, int] = field(default_factory=dict)


def unit_props(unit: Unit, parent_code: str | None, hierarchy: Hierarchy) -> dict[str, Any]:
    """The JSON properties of a unit. Leader name and phone are the unit's public contact
    (posted in the building, per DOMAIN.md); members' personal data never appears here."""
    lv = hierarchy.get(unit.level)
    return {
        "code": unit.code,
        "name": unit.name,
        "level": unit.level,
        "level_key": lv.key,
        "level_name": lv.name,
        "parent_code": parent_code,
        "leader": unit.leader_name,
        "phone": unit.leader_phone,
        "households": unit.households,
        "address": unit.address,
        "properties": unit.properties or {},
        "version": unit.version,
        "updated_at": unit.updated_at.isoformat() if unit.updated_at else None,
    }


def _views(
    rows: list[tuple[Unit, str | None]], hierarchy: Hierarchy, with_geometry: bool
) -> list[UnitView]:
    units = [u for u, _ in rows]
    geoms = q.geometries(units) if with_geometry else [None] * len(units)
    areas = q.geometries(units, "service_area") if with_geometry else [None] * len(units)
    return [
        UnitView(unit_props(u, parent_code, hierarchy), g, a)
        for (u, parent_code), g, a in zip(rows, geoms, areas, strict=True)
    ]


def resolve_level(hierarchy: Hierarchy, value: str | int | None) -> int | None:
    if value is None or value == "":
        return None
    lv = hierarchy.resolve(value)
    if lv is None:
        keys = ", ".join(f"{x.level}/{x.key}" for x in hierarchy.levels)
        raise InvalidInput(f"unknown level {value!r}; use one of {keys}", field="level")
    return lv.level


def list_units(
    svc: Services,
    *,
    level: str | int | None = None,
    parent: str | None = None,
    bbox: tuple[float, float, float, float] | None = None,
    search: str | None = None,
    limit: int = 100,
    offset: int = 0,
    with_geometry: bool = False,
    viewer: Principal,
) -> UnitPage:
    """Units matching every given filter, ordered by code (in the viewer's subtree)."""
    if not 1 <= limit <= MAX_LIMIT:
        raise InvalidInput(f"limit must be between 1 and {MAX_LIMIT}", field="limit")
    if offset < 0:
        raise InvalidInput("offset must not be negative", field="offset")
    level_no = resolve_level(svc.hierarchy, level)
    with svc.db.session() as session:
        stmt, _parent = q.with_parent_code()
        filters = []
        in_scope = scope.unit_filter(viewer)
        if in_scope is not None:
            filters.append(in_scope)
        if level_no is not None:
            filters.append(Unit.level == level_no)
        if parent:
            parent_unit = scope.readable_unit(session, viewer, parent, above=True,
                                              field="parent")
            filters.append(Unit.parent_id == parent_unit.id)
        if bbox is not None:
            filters.append(q.bbox_filter(session, bbox))
        if search:
            filters.append(or_(Unit.name.icontains(search, autoescape=True),
                               Unit.code.startswith(search, autoescape=True)))
        total = session.scalar(select(func.count()).select_from(Unit).where(*filters)) or 0
        rows = session.execute(
            stmt.where(*filters).order_by(Unit.code).limit(limit).offset(offset)
        ).all()
        items = _views([tuple(r) for r in rows], svc.hierarchy, with_geometry)
    return UnitPage(items, total, limit, offset)


def get_unit(svc: Services, code: str, *, with_geometry: bool = False,
             viewer: Principal) -> UnitDetail:
    """One unit with its ancestors (root first) and how many units lie below it."""
    with svc.db.session() as session:
        stmt, _parent = q.with_parent_code()
        row = session.execute(stmt.where(Unit.code == code)).first()
        if row is None or not (viewer is None or viewer.covers(row[0].path)):
            raise NotFound(f"no unit with code {code!r}", code=code)
        unit = row[0]
        view = _views([tuple(row)], svc.hierarchy, with_geometry)[0]
        ancestor_codes = q.codes_in_path(unit.path)[:-1]
        found = q.units_by_codes(session, ancestor_codes)
        ancestors = [
            {
                "code": c,
                "name": found[c].name,
                "level": found[c].level,
                "level_key": svc.hierarchy.get(found[c].level).key,
            }
            for c in ancestor_codes
            if c in found
        ]
        children = session.scalar(
            select(func.count()).select_from(Unit).where(Unit.parent_id == unit.id)
        ) or 0
        below = {
            svc.hierarchy.get(c.level).key: c.count
            for c in q.descendant_counts(session, unit.path)
        }
    return UnitDetail(view, ancestors, children, below)


def children(svc: Services, code: str, *, with_geometry: bool = False,
             viewer: Principal) -> list[UnitView]:
    """The unit's children in the viewer's subtree, by code."""
    with svc.db.session() as session:
        unit = scope.readable_unit(session, viewer, code, above=True)
        stmt, _parent = q.with_parent_code()
        stmt = stmt.where(Unit.parent_id == unit.id)
        in_scope = scope.unit_filter(viewer)
        if in_scope is not None:
            stmt = stmt.where(in_scope)
        rows = session.execute(stmt.order_by(Unit.code)).all()
        return _views([tuple(r) for r in rows], svc.hierarchy, with_geometry)


def subtree(
    svc: Services, code: str | None = None, *, max_level: int | None = None,
    with_geometry: bool = True, viewer: Principal,
) -> list[UnitView]:
    """A unit and everything below it (or the whole tree), parents before children; for a
    scoped viewer only what lies in their subtree."""
    with svc.db.session() as session:
        stmt, _parent = q.with_parent_code()
        if code is not None:
            unit = scope.readable_unit(session, viewer, code, above=True)
            stmt = stmt.where(q.subtree_filter(unit.path))
        in_scope = scope.unit_filter(viewer)
        if in_scope is not None:
            stmt = stmt.where(in_scope)
        if max_level is not None:
            stmt = stmt.where(Unit.level <= max_level)
        rows = session.execute(stmt.order_by(Unit.level, Unit.code)).all()
        return _views([tuple(r) for r in rows], svc.hierarchy, with_geometry)

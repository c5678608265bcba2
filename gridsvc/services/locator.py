"""The in-memory picture of the tree that lookups and bulk assignment run on.

``CityIndex`` is built from the stored boundaries: the micro-grid polygons go into a
``PolygonIndex`` (gridsvc/spatial/index.py); every unit's attributes and parent sit in arrays,
so a unit's chain of ancestors is a few array reads (``ParentArrays``). Household (党员中心户)
points are grouped by building and by grid for the household rule. ``Services.locator`` keeps
the current one per process and rebuilds it when the stored boundaries change
(``services/live.py``).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import shapely
from sqlalchemy import select
from sqlalchemy.orm import Session

from gridsvc.hierarchy import Hierarchy
from gridsvc.spatial.index import ParentArrays, PolygonIndex
from gridsvc.storage import units as q
from gridsvc.storage.engine import Database
from gridsvc.storage.models import Unit


@dataclass
class Household:
    row: int
    lon: float
    lat: float
    area: Any  # shapely polygon or None
    covers: frozenset[str]  # 单元 numbers the household covers inside its building


@dataclass
class CityIndex:
    revision: int
    hierarchy: Hierarchy
    codes: np.ndarray  # row -> unit code (object array)
    ids: np.ndarray  # row -> database id
    levels: np.ndarray
    parents: np.ndarray  # row -> parent row, -1 for a root
    chains: ParentArrays
    names: list[str]
    leaders: list[str | None]
    phones: list[str | None]
    polygons: PolygonIndex  # micro-grid polygons; its ids are rows
    row_of_code: dict[str, int]
    households_by_building: dict[int, list[Household]] = field(default_factory=dict)
    households_by_grid: dict[int, list[Household]] = field(default_factory=dict)

    def memory_bytes(self) -> int:
        arrays = (self.codes, self.ids, self.levels, self.parents)
        return self.polygons.memory_bytes() + sum(a.nbytes for a in arrays)


def build_city_index(db: Database, hierarchy: Hierarchy) -> CityIndex:
    """Read the stored tree and build the index (about a second for a city)."""
    with db.session() as session:
        return city_index_in(session, hierarchy)


def city_index_in(session: Session, hierarchy: Hierarchy) -> CityIndex:
    """The index of the tree as this session sees it (e.g. with an import not yet committed)."""
    micro = hierarchy.micro_grid.level
    household_level = hierarchy.household.level if hierarchy.household else None
    rev = q.revision(session, q.BOUNDARIES)
    rows = session.execute(
        select(Unit.id, Unit.code, Unit.level, Unit.parent_id, Unit.name,
               Unit.leader_name, Unit.leader_phone, Unit.properties).order_by(Unit.id)
    ).all()
    geo_units = list(session.scalars(
        select(Unit).where(Unit.level.in_([micro, household_level or micro]))
        .order_by(Unit.id)
    ))
    geoms = q.geometries(geo_units)
    areas = q.geometries(geo_units, "service_area")
    ids = np.array([r.id for r in rows], dtype=np.int64)
    row_of_id = {int(i): n for n, i in enumerate(ids)}
    parents = np.array(
        [row_of_id.get(r.parent_id, -1) if r.parent_id else -1 for r in rows], dtype=np.int64
    )
    codes = np.array([r.code for r in rows], dtype=object)
    micro_rows, micro_geoms = [], []
    by_building: dict[int, list[Household]] = {}
    by_grid: dict[int, list[Household]] = {}
    for unit, geom, area in zip(geo_units, geoms, areas, strict=True):
        row = row_of_id[unit.id]
        if unit.level == micro:
            micro_rows.append(row)
            micro_geoms.append(geom)
            continue
        covers = (unit.properties or {}).get("covers") or []
        if isinstance(covers, str):
            covers = [c for c in covers.replace("，", ",").split(",") if c.strip()]
        hh = Household(row, geom.x, geom.y, area, frozenset(str(c).strip() for c in covers))
        building = int(parents[row])
        by_building.setdefault(building, []).append(hh)
        if building >= 0 and parents[building] >= 0:
            by_grid.setdefault(int(parents[building]), []).append(hh)
    polygons = PolygonIndex.build(
        np.array(micro_geoms, dtype=object) if micro_geoms else np.empty(0, dtype=object),
        np.array(micro_rows, dtype=np.int64),
    )
    return CityIndex(
        revision=rev, hierarchy=hierarchy, codes=codes, ids=ids,
        levels=np.array([r.level for r in rows], dtype=np.int64), parents=parents,
        chains=ParentArrays(parents),
        names=[r.name for r in rows], leaders=[r.leader_name for r in rows],
        phones=[r.leader_phone for r in rows], polygons=polygons,
        row_of_code={c: n for n, c in enumerate(codes)},
        households_by_building=by_building, households_by_grid=by_grid,
    )


def covering_area(households: list[Household], lon: float, lat: float) -> Household | None:
    """The first household whose service area covers the point (rows in id order)."""
    for hh in households:
        if hh.area is not None and shapely.intersects_xy(hh.area, lon, lat):
            return hh
    return None

"""Map layers served per view: one level's units inside a wgs84 bbox, simplified for the zoom.

A city has ~77,000 micro-grids, too many to inline in a page or draw at once. Pages ask for
the units of one level inside the current view (``LayerStore.layer``), and:

- each level has a minimum zoom (``min_zoom``): the micro-grid level from 15, its parent level
  (grids) from 13, the point level of 党员中心户 from 16, the levels above always;
- polygons are simplified for the zoom with ``shapely.coverage_simplify`` over the *whole*
  level, so an edge shared by two neighbours is simplified once and stays shared (no gaps or
  overlaps appear between neighbours, whichever views fetched them). The tolerance is half a
  screen pixel at the band's zoom; from ``RAW_ZOOM`` on the stored polygons are sent as they
  are. Coordinates are rounded to 6 decimals (~10 cm), the same for both neighbours;
- the simplified geometries are cached per level and zoom band as ready GeoJSON text, keyed by
  the boundaries revision (the live ``CityIndex``'s), so a boundary import empties the cache;
- the coverage figures attached to area units are recomputed at most every
  ``figures_seconds`` (members change without a boundary revision);
- a response holds at most ``limit`` features (``truncated`` says when more matched).

Views: ``coverage`` (name, code, leader, households, members, rate, pending registrations,
gaps), ``counts`` (code, name and members only: the public distribution map, never a
person's name, phone or home; below the level's zoom the counts of the deepest level served at
that zoom) and ``names`` (code and name).
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass
from typing import Any

import numpy as np
import orjson
import shapely
from shapely.geometry import mapping
from sqlalchemy import LargeBinary, func, select

from gridsvc.hierarchy import Hierarchy
from gridsvc.services import coverage
from gridsvc.services.context import Services
from gridsvc.services.errors import InvalidInput, NotFound
from gridsvc.services.locator import CityIndex
from gridsvc.services.tree import resolve_level
from gridsvc.storage.models import Unit

RAW_ZOOM = 16  # from this zoom on, polygons are sent unsimplified
MAX_ZOOM = 22
DEFAULT_LIMIT = 5_000
MAX_LIMIT = 20_000
DECIMALS = 6  # ~10 cm
VIEWS = ("coverage", "counts", "names")
ONLY = ("no-leader",)


def min_zoom(hierarchy: Hierarchy, level: int) -> int:
    """The first zoom at which a level's units are served (and visible as more than specks)."""
    micro = hierarchy.micro_grid.level
    if level > micro:
        return 16
    if level == micro:
        return 15
    if level == micro - 1:
        return 13
    return 0


def band(zoom: int) -> int:
    """The zoom band whose simplification serves ``zoom`` (``RAW_ZOOM``: unsimplified)."""
    return min(max(zoom, 0), RAW_ZOOM)


def tolerance_deg(zoom: int) -> float:
    """Half a screen pixel at ``zoom``, in degrees (256-pixel web mercator tiles)."""
    return 0.5 * 360.0 / (256 * 2**zoom)


def level_for_points(hierarchy: Hierarchy, zoom: int) -> int:
    """The deepest area level whose units are served at ``zoom`` (counts aggregate to it)."""
    levels = [lv.level for lv in hierarchy.levels if lv.geometry == "polygon"]
    return max(lv for lv in levels if min_zoom(hierarchy, lv) <= zoom)


@dataclass
class LevelGeometries:
    """The stored geometries of one level (wgs84), aligned with their ``CityIndex`` rows."""

    rows: np.ndarray
    geoms: np.ndarray
    tree: shapely.STRtree
    points: bool
    bands: dict[int, GeometryTexts]  # band -> the simplified geometries
    centres: GeometryTexts | None = None  # a point on each polygon


@dataclass
class LayerPage:
    """One response: the features of a level in a view (text, ready to join)."""

    level: int
    zoom: int
    min_zoom: int
    features: list[bytes]
    matched: int
    truncated: bool

    def geojson(self) -> bytes:
        """The page as a GeoJSON FeatureCollection (RFC 7946, wgs84)."""
        head = orjson.dumps({"type": "FeatureCollection", "level": self.level,
                             "zoom": self.zoom, "minZoom": self.min_zoom,
                             "numberMatched": self.matched,
                             "numberReturned": len(self.features),
                             "truncated": self.truncated})
        return head[:-1] + b',"features":[' + b",".join(self.features) + b"]}"


class LayerStore:
    """Per-process cache of simplified level geometries and coverage figures."""

    def __init__(self, svc: Services, figures_seconds: float = 30.0) -> None:
        self.svc = svc
        self.figures_seconds = figures_seconds
        self._lock = threading.Lock()
        self._revision: int | None = None
        self._levels: dict[int, LevelGeometries] = {}
        self._figures: coverage.Coverage | None = None
        self._figures_at = float("-inf")

    # --- caches -----------------------------------------------------------------------------

    def index(self) -> CityIndex:
        """The live index; a new boundaries revision empties the geometry cache."""
        index = self.svc.locator.current()
        if index.revision != self._revision:
            with self._lock:
                if index.revision != self._revision:
                    self._levels = {}
                    self._figures = None
                    self._revision = index.revision
        return index

    def figures(self) -> coverage.Coverage:
        index = self.index()
        now = time.monotonic()
        cov = self._figures
        if cov is None or cov.index is not index or now - self._figures_at > self.figures_seconds:
            cov = coverage.compute(self.svc)
            self._figures, self._figures_at = cov, now
        return cov

    def level_geometries(self, level: int) -> LevelGeometries:
        index = self.index()
        found = self._levels.get(level)
        if found is None:
            with self._lock:
                found = self._levels.get(level)
                if found is None:
                    found = self._read_level(index, level)
                    self._levels[level] = found
        return found

    def _read_level(self, index: CityIndex, level: int) -> LevelGeometries:
        with self.svc.db.session() as session:
            rows = session.connection().execute(
                select(Unit.id, func.ST_AsBinary(Unit.geom, type_=LargeBinary))
                .where(Unit.level == level).order_by(Unit.id)
            ).all()
        ids = np.array([r[0] for r in rows], dtype=np.int64)
        geoms = shapely.from_wkb([r[1] for r in rows]) if rows else np.empty(0, dtype=object)
        index_rows = np.searchsorted(index.ids, ids)
        index_rows = np.minimum(index_rows, max(len(index.ids) - 1, 0))
        known = (index.ids[index_rows] == ids) if len(index.ids) else np.zeros(0, dtype=bool)
        index_rows, geoms = index_rows[known], geoms[known]
        points = self.svc.hierarchy.get(level).geometry == "point"
        return LevelGeometries(index_rows, geoms, shapely.STRtree(geoms), points, {})

    def band_json(self, geo: LevelGeometries, zoom: int) -> GeometryTexts:
        """The level's geometries simplified for ``zoom``'s band, as GeoJSON text on demand."""
        b = RAW_ZOOM if geo.points else band(zoom)
        found = geo.bands.get(b)
        if found is None:
            with self._lock:
                found = geo.bands.get(b)
                if found is None:
                    found = GeometryTexts(simplified(geo.geoms, b))
                    geo.bands[b] = found
        return found

    def centres_json(self, geo: LevelGeometries) -> GeometryTexts:
        if geo.centres is None:
            geo.centres = GeometryTexts(shapely.point_on_surface(geo.geoms))
        return geo.centres

    # --- queries ----------------------------------------------------------------------------

    def level_number(self, level: str | int) -> int:
        number = resolve_level(self.svc.hierarchy, level)
        if number is None:
            raise InvalidInput("give a level (number or key)", field="level")
        return number

    def unit_row(self, code: str) -> int:
        row = self.index().row_of_code.get(code)
        if row is None:
            raise NotFound(f"no unit with code {code!r}", code=code)
        return row

    def bounds(self, code: str | None) -> tuple[float, float, float, float] | None:
        """The wgs84 bounds (minlon, minlat, maxlon, maxlat) of a unit or the whole tree."""
        index = self.index()
        if code is None:
            top = self.svc.hierarchy.levels[0].level
            geo = self.level_geometries(top)
            return tuple(shapely.total_bounds(geo.geoms)) if len(geo.geoms) else None
        row = self.unit_row(code)
        geo = self.level_geometries(int(index.levels[row]))
        pos = np.flatnonzero(geo.rows == row)
        return tuple(shapely.bounds(geo.geoms[pos[0]])) if len(pos) else None

    def subtree_rows(self, code: str | None, rows: np.ndarray) -> np.ndarray:
        """Which of ``rows`` lie at or below the unit ``code`` (all when None)."""
        if code is None:
            return np.ones(len(rows), dtype=bool)
        top = self.unit_row(code)
        return (self.index().chains.chain_matrix(rows) == top).any(axis=1)

    def count(self, level: int, unit: str | None) -> int:
        """How many units of ``level`` lie under ``unit`` (in the whole tree when None)."""
        geo = self.level_geometries(level)
        return int(self.subtree_rows(unit, geo.rows).sum())

    def layer(
        self,
        level: str | int,
        *,
        zoom: int,
        bbox: tuple[float, float, float, float] | None = None,
        unit: str | None = None,
        view: str = "coverage",
        only: str | None = None,
        as_points: bool = False,
        limit: int = DEFAULT_LIMIT,
    ) -> LayerPage:
        """The units of ``level`` in ``bbox`` (all when None) under ``unit``, for ``zoom``.

        ``as_points``: a point on each polygon instead of the polygon (count maps);
        ``only="no-leader"``: only units without a leader (secretary, group leader); the
        ``counts`` view leaves out units with no member.
        """
        number = self.level_number(level)
        if not 0 <= zoom <= MAX_ZOOM:
            raise InvalidInput(f"zoom must be between 0 and {MAX_ZOOM}, got {zoom}",
                               field="zoom")
        if view not in VIEWS:
            raise InvalidInput(f"view must be one of {', '.join(VIEWS)}, got {view!r}",
                               field="view")
        if only is not None and only not in ONLY:
            raise InvalidInput(f"only must be one of {', '.join(ONLY)}, got {only!r}",
                               field="only")
        if not 1 <= limit <= MAX_LIMIT:
            raise InvalidInput(f"limit must be between 1 and {MAX_LIMIT}", field="limit")
        first = min_zoom(self.svc.hierarchy, number)
        if view == "counts" and zoom < first:  # aggregate to a level served at this zoom
            floor = 1 if unit is None else int(self.index().levels[self.unit_row(unit)])
            number = max(level_for_points(self.svc.hierarchy, zoom), floor)
            first = min(zoom, min_zoom(self.svc.hierarchy, number))
        if zoom < first:
            return LayerPage(number, zoom, first, [], 0, False)
        geo = self.level_geometries(number)
        if bbox is None:
            pos = np.arange(len(geo.rows))
        else:
            pos = np.sort(geo.tree.query(shapely.box(*bbox)))
        pos = pos[self.subtree_rows(unit, geo.rows[pos])]
        index = self.index()
        area = not geo.points
        cov = self.figures() if area else None
        if only == "no-leader":
            pos = pos[[not index.leaders[r] for r in geo.rows[pos]]]
        if view == "counts":
            if cov is None:
                raise InvalidInput("the counts view is for area levels", field="view")
            pos = pos[cov.counts["assigned"][geo.rows[pos]] > 0]
        matched = len(pos)
        pos = pos[:limit]
        texts = self.centres_json(geo) if as_points else self.band_json(geo, zoom)
        rows = geo.rows[pos]
        props = (_counts(index, cov, rows) if view == "counts" else
                 _coverage(index, cov, rows) if view == "coverage" else _names(index, rows))
        features = [b'{"type":"Feature","id":' + orjson.dumps(pr["code"])
                    + b',"geometry":' + texts[int(p)] + b',"properties":'
                    + orjson.dumps(pr) + b"}" for p, pr in zip(pos, props, strict=True)]
        return LayerPage(number, zoom, first, features, matched, matched > limit)


def simplified(geoms: np.ndarray, zoom_band: int) -> np.ndarray:
    """The geometries simplified together for a zoom band, coordinates rounded.

    ``coverage_simplify`` keeps shared edges shared; on input that is no valid coverage
    (GEOS refuses it) each geometry is simplified alone, keeping its topology.
    """
    out = geoms
    polygons = shapely.get_type_id(geoms) >= 3  # (multi)polygons
    if zoom_band < RAW_ZOOM and polygons.any():
        tol = tolerance_deg(zoom_band)
        out = geoms.copy()
        try:
            out[polygons] = shapely.coverage_simplify(geoms[polygons], tol)
        except shapely.errors.GEOSException:
            out[polygons] = shapely.simplify(geoms[polygons], tol, preserve_topology=True)
    return shapely.transform(out, lambda xy: np.round(xy, DECIMALS))


class GeometryTexts:
    """GeoJSON text of an array of geometries, written on first use and kept.

    orjson writes the rounded numbers shortest (32.004251, not GEOS's 32.004250999999996).
    """

    def __init__(self, geoms: np.ndarray) -> None:
        self.geoms = geoms
        self.texts: list[bytes | None] = [None] * len(geoms)

    def __getitem__(self, pos: int) -> bytes:
        text = self.texts[pos]
        if text is None:
            text = orjson.dumps(mapping(self.geoms[pos]))
            self.texts[pos] = text
        return text


def _columns(index: CityIndex, rows: np.ndarray) -> dict[str, list[Any]]:
    return {"code": [str(c) for c in index.codes[rows]],
            "name": [index.names[r] for r in rows]}


def _names(index: CityIndex, rows: np.ndarray) -> list[dict[str, Any]]:
    columns = _columns(index, rows)
    return [{"code": c, "name": n} for c, n in zip(columns["code"], columns["name"],
                                                   strict=True)]


def _coverage(index: CityIndex, cov: coverage.Coverage | None,
              rows: np.ndarray) -> list[dict[str, Any]]:
    """The coverage view of each row: identity, leader (the posted contact) and figures."""
    columns = _columns(index, rows)
    columns["level"] = [int(v) for v in index.levels[rows]]
    columns["level_name"] = [index.hierarchy.get(v).name for v in columns["level"]]
    columns["leader"] = [index.leaders[r] or None for r in rows]
    if cov is not None:
        known = cov.known_buildings[rows] > 0
        columns["households"] = [int(h) if k else None
                                 for h, k in zip(cov.households[rows], known, strict=True)]
        columns["members"] = cov.counts["assigned"][rows].tolist()
        columns["members_per_100"] = [None if np.isnan(v) else float(v)
                                      for v in cov.per_100()[rows]]
        columns["needs_confirmation"] = cov.counts["needs_confirmation"][rows].tolist()
        columns["gaps"] = cov.gaps()[rows].tolist()
    names = list(columns)
    return [dict(zip(names, values, strict=True)) for values in zip(*columns.values(),
                                                                      strict=True)]


def _counts(index: CityIndex, cov: coverage.Coverage | None,
            rows: np.ndarray) -> list[dict[str, Any]]:
    """The public count view: the unit's code and name and its members, nothing personal."""
    if cov is None:
        raise InvalidInput("the counts view is for area levels", field="view")
    columns = _columns(index, rows)
    columns["members"] = cov.counts["assigned"][rows].tolist()
    return [{"code": c, "name": n, "members": m}
            for c, n, m in zip(columns["code"], columns["name"], columns["members"],
                               strict=True)]

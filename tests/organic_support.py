"""High-vertex test shapes for the index: organic cells (``gridsvc.demo.organic``), one with a
hole holding an island, one of two parts, and the points that probe them."""

from __future__ import annotations

import numpy as np
import pytest
import shapely

from gridsvc.demo.organic import organic_cells
from gridsvc.spatial import index as index_module
from gridsvc.spatial.index import PolygonIndex

X0, Y0 = 120.86, 32.0  # wgs84, Nantong
M = 1e-5  # degrees per metre of the plan (near enough for a test)


def organic_town(seed: int = 1) -> tuple[np.ndarray, np.ndarray]:
    """A 5 x 5 block of organic cells (~1,000 vertices each, shared edges exact), in degrees.

    Cell 6 has a hole (a shrunk organic ring) holding an island polygon with the very same
    ring; cells 11 and 13 are one MultiPolygon (cell 12 lies between them); ids are 100 + k.
    """
    rng = np.random.default_rng(seed)
    xs = np.cumsum(np.r_[0.0, rng.uniform(130.0, 200.0, 5)])
    ys = np.cumsum(np.r_[0.0, rng.uniform(120.0, 180.0, 5)])
    cells = list(organic_cells(xs, ys, rng).ravel())
    cells = [shapely.transform(c, lambda xy: np.column_stack([X0 + xy[:, 0] * M,
                                                               Y0 + xy[:, 1] * M]))
             for c in cells]
    host = cells[6]
    ring = shapely.affinity.scale(cells[18], 0.3, 0.3, origin=cells[18].centroid)
    ring = shapely.affinity.translate(ring, host.centroid.x - ring.centroid.x,
                                      host.centroid.y - ring.centroid.y)
    cells[6] = shapely.Polygon(host.exterior.coords, [ring.exterior.coords])
    island = shapely.Polygon(ring.exterior.coords)
    geoms = [*cells[:11], shapely.MultiPolygon([cells[11], cells[13]]), cells[12],
             *cells[14:], island]
    assert all(shapely.is_valid(geoms))
    return np.array(geoms, dtype=object), np.arange(100, 100 + len(geoms))


def probe_points(geoms: np.ndarray, seed: int = 2) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """Points by kind: uniform random, every vertex, edge midpoints, and points 1e-8 degrees
    (1 mm) off each vertex in the four directions."""
    rng = np.random.default_rng(seed)
    xmin, ymin, xmax, ymax = shapely.total_bounds(geoms)
    coords = shapely.get_coordinates(shapely.get_rings(shapely.get_parts(geoms)))
    vertices = np.unique(coords, axis=0)
    rings = shapely.get_rings(shapely.get_parts(geoms))
    mids = np.concatenate([(c[:-1] + c[1:]) / 2 for c in
                           (shapely.get_coordinates(r) for r in rings)])
    off = np.concatenate([vertices + d for d in
                          ([1e-8, 0], [-1e-8, 0], [0, 1e-8], [0, -1e-8])])
    n = 20_000
    return {
        "random": (rng.uniform(xmin, xmax, n), rng.uniform(ymin, ymax, n)),
        "vertices": (vertices[:, 0], vertices[:, 1]),
        "edge midpoints": (mids[:, 0], mids[:, 1]),
        "near vertices": (off[:, 0], off[:, 1]),
    }


def full_scan_index(geoms: np.ndarray, ids: np.ndarray) -> PolygonIndex:
    """The reference: one cell over everything, never split, so every lookup tests every edge
    of every polygon (the index before cells kept their own edges)."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(index_module, "MAX_DEPTH", 0)
        return PolygonIndex.build(geoms, ids, cell_size=1e3)


def covering(geoms: np.ndarray, ids: np.ndarray, x: np.ndarray, y: np.ndarray
             ) -> tuple[np.ndarray, np.ndarray]:
    """What GEOS (= PostGIS ST_Covers) says: (point, id) for every polygon holding a point."""
    point, poly = shapely.STRtree(geoms).query(shapely.points(x, y), predicate="intersects")
    return point, ids[poly]


def check_against_covers(got: np.ndarray, point: np.ndarray, owner: np.ndarray) -> int:
    """How many answers are wrong: -1 where no polygon covers the point, else one of those that
    do (the boundary rule picks which)."""
    n_cover = np.bincount(point, minlength=len(got))
    among = np.zeros(len(got), dtype=bool)
    among[point[got[point] == owner]] = True
    return int((~np.where(n_cover == 0, got == -1, among)).sum())

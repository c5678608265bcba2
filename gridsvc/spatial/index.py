"""The in-memory point -> micro-grid index: the hot path of every lookup.

``PolygonIndex`` holds the residence micro-grids (the deepest polygon level) as flat numpy
arrays: every ring vertex, and a grid of cells over the extent (about the median polygon's
size) in which a cell crossed by more than ``MAX_EDGES_PER_CELL`` edges is split into k x k
children, again where needed (so cells are small only along dense outlines). A cell lists
only the polygons whose boundary comes near it, each with just the edges that do and the
crossing parity that the rest of its edges add (``_kernels`` says why that is exact); a cell
wholly inside one polygon names it and needs no edge test. A lookup walks down to the point's
cell and tests those few edges, all in one compiled call: on outlines of a thousand vertices
a lookup scans a handful of edges, not the thousand. Ancestors are not in the index:
``ParentArrays`` walks a parent array, so the chain costs O(depth).

Coordinates are wgs84 lon/lat degrees (EPSG:4326) throughout; the test is planar in degrees,
which is what PostGIS ``ST_Covers`` on geometry columns does too.

The point-in-polygon rule (crossing number)
    A horizontal ray goes from the point towards +lon (east). An edge (x1, y1)-(x2, y2),
    oriented so that y1 <= y2, is crossed when ``y1 <= lat < y2`` (half-open; so horizontal
    edges never are) and ``(x2 - x1) * (lat - y1) > (lon - x1) * (y2 - y1)`` (the point is
    strictly west of it). The point is inside when the count over all rings of the polygon
    (the shells of every part and their holes alike) is odd: a point in a hole is outside.

Who owns a point on a boundary (exactly on an edge or a vertex)
    1. The crossing rule: the polygon that contains the point moved an infinitesimal step
       east and then an even smaller step north. So a polygon owns its west and south sides,
       not its east and north sides, and between neighbours:

       - on a vertical (north-south) edge shared by two polygons, the EAST one wins;
       - on a horizontal (east-west) shared edge, the NORTH one wins;
       - on a sloping shared edge, the one east of it wins;
       - on a vertex shared by several polygons, the one whose corner there opens towards
         east-north-east (just north of due east) wins: where four rectangles meet, the
         north-east one.

    2. A boundary point that rule gives to no polygon (the east or north outline of a block,
       the north-east corner of a building, the top middle vertex of two buildings side by
       side) goes to the first polygon, in the order given to ``build``, whose boundary holds
       it. So every point that PostGIS ``ST_Covers`` puts in at least one micro-grid gets
       exactly one of them, and every point it puts in none gets -1.

    Each edge is tested the same way whichever polygon it belongs to (endpoints ordered by
    latitude before any arithmetic), so neighbours whose shared edge has the same vertices
    in both decide a point on it identically, bit for bit; the result depends only on the
    input. Step 1 is exact for axis-parallel edges and vertices; step 2's on-edge test is
    exact for axis-parallel edges and vertices and within floating-point rounding on sloping
    ones. Within rounding distance (~1e-15 degrees) of a vertex where sloping edges meet, or
    of a sloping edge that one neighbour splits with an extra vertex and the other does not,
    a point may satisfy step 1 for two polygons: the first given wins. Overlapping polygons
    (invalid data) resolve the same way: the first given wins.

Not covered
    ``locate`` returns -1 for a point in no polygon (a road, a park, outside the extent).
    ``nearest`` then names the closest polygon within a radius, decided in metres, not in
    degrees (where a degree of longitude is shorter than a degree of latitude and would pick
    the wrong one): a shapely STRtree over the polygons' boxes in degrees gives the candidates
    (those meeting a box that surely holds the radius), and the distance to each is measured
    in the CGCS2000 Gauss-Krüger zone of the data (``spatial.metric``; scale error below
    0.1 % across three degrees of longitude). A polygon is projected the first time it is a
    candidate and kept: an index whose lookups never fall back holds no metric copy.

Batches and threads
    ``locate_many`` sorts large batches by cell before looking them up (so the index is read
    nearly in order instead of at random) and runs them on numba's threads (``prange``).
    ``_kernels`` selects numba's fork-safe threading layer (``workqueue`` here; GNU OpenMP
    would abort a forked web worker) unless ``NUMBA_THREADING_LAYER`` is set. That layer must
    not be entered by two threads at once, so the parallel kernel runs under a lock; small
    batches use a plain serial loop without it.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass

import numpy as np
import shapely
from shapely import STRtree

from gridsvc.spatial import _kernels
from gridsvc.spatial.metric import lonlat_to_metric, metric_epsg_for_geoms, to_metric

#: Metres per degree, never more than this many (latitude; longitude at the equator).
M_PER_DEG_LAT_MIN = 110_000.0
M_PER_DEG_LON_EQUATOR = 111_000.0
#: Batches at least this large are sorted by cell and run on all threads.
PARALLEL_MIN_POINTS = 20_000
#: Upper bound on the number of cells, whatever the extent (8 bytes each).
MAX_CELLS = 4_000_000
#: A cell whose items hold more edges than this is split into k x k children, k <= MAX_SPLIT,
#: at most MAX_DEPTH times over.
MAX_EDGES_PER_CELL = 32
MAX_SPLIT = 4
MAX_DEPTH = 6
#: How far, relative to the largest coordinate, the build widens each cell (see ``_kernels``).
MARGIN = 1e-9

_parallel_lock = threading.Lock()


class IndexBuildError(ValueError):
    """The polygons or ids given to ``PolygonIndex.build`` cannot be indexed."""


@dataclass(frozen=True)
class _Edges:
    """Every ring edge, grouped by polygon position."""

    edges: np.ndarray  # (m, 4): x1, y1, x2, y2 with y1 <= y2
    edge_start: np.ndarray  # (n + 1,): polygon p's edges are edges[edge_start[p]:edge_start[p+1]]


@dataclass(frozen=True)
class _Rings:
    """Every ring vertex in input order (rings closed) and where each edge starts."""

    verts: np.ndarray  # (v, 2): x, y
    edge_v: np.ndarray  # (m,): edge e runs from verts[edge_v[e]] to verts[edge_v[e] + 1]
    edge_start: np.ndarray  # (n + 1,): polygon p's edges are edge_start[p]..edge_start[p+1]-1


class PolygonIndex:
    """Point -> polygon id over non-overlapping polygons (the micro-grids), wgs84 degrees.

    Build with ``PolygonIndex.build``. Immutable once built, so a new index can be built aside
    and swapped in with one assignment while readers keep using the old one.
    """

    def __init__(self, fdata: np.ndarray, idata: np.ndarray, geoms: np.ndarray,
                 ids: np.ndarray, metric_epsg: int, cell_size: tuple[float, float]) -> None:
        self._fdata = fdata
        self._idata = idata
        self._geoms = geoms  # wgs84, as given (shapely geometries are immutable)
        self._tree = STRtree(geoms)  # over their boxes in degrees
        self._metric = np.full(len(geoms), None, dtype=object)  # in metres, made on first need
        self._ids = ids
        self.metric_epsg = metric_epsg
        self.cell_size = cell_size

    # ------------------------------------------------------------------ build
    @classmethod
    def build(cls, geoms: np.ndarray, ids: np.ndarray,
              cell_size: float | None = None) -> PolygonIndex:
        """Index ``geoms`` (Polygon or MultiPolygon, holes allowed, wgs84) under ``ids``.

        ``ids`` are non-negative integers, one per geometry (e.g. the unit's row). Where
        polygons overlap, the one given first wins. ``cell_size`` in degrees is chosen from
        the polygons' sizes when not given. The result depends only on the input.
        """
        geoms, ids = _checked_input(geoms, ids)
        bounds = shapely.bounds(geoms)
        extent = (bounds[:, 0].min(), bounds[:, 1].min(), bounds[:, 2].max(), bounds[:, 3].max())
        rings = _rings(geoms)
        side = cell_size if cell_size is not None else _auto_cell_size(bounds, extent)
        if not side > 0:
            raise IndexBuildError(f"cell_size must be positive, got {cell_size}")
        shape, size = _grid_shape(extent, side)
        margin = MARGIN * max(1.0, float(np.abs(extent).max()))
        *cells, verts = _kernels.build_cells(
            rings.verts, rings.edge_v, rings.edge_start, bounds, ids, np.array(extent),
            np.array(shape), np.array(size), margin, MAX_EDGES_PER_CELL, MAX_SPLIT, MAX_DEPTH)
        fdata, idata = _kernels.pack(extent, size, shape, tuple(cells), verts)
        return cls(fdata, idata, geoms, ids, metric_epsg_for_geoms(geoms), size)

    # ----------------------------------------------------------------- lookup
    def locate(self, lon: float, lat: float) -> int:
        """The id of the polygon owning the wgs84 point, or -1 when none covers it."""
        return _kernels.locate_one(float(lon), float(lat), self._fdata, self._idata)

    def locate_many(self, lon: np.ndarray, lat: np.ndarray) -> np.ndarray:
        """``locate`` for arrays of wgs84 points: an int64 array of ids, -1 where not covered."""
        px, py = _points(lon, lat)
        out = np.empty(len(px), dtype=np.int64)
        if len(px) >= PARALLEL_MIN_POINTS:
            with _parallel_lock:
                _kernels.locate_sorted(px, py, self._fdata, self._idata, out)
        else:
            _kernels.locate_serial(px, py, self._fdata, self._idata, out)
        return out

    def nearest(self, lon: float, lat: float, max_distance_m: float) -> tuple[int, float] | None:
        """The closest polygon within ``max_distance_m`` metres: ``(id, distance_m)`` or None.

        Meant for points ``locate`` returns -1 for (a covered point is at 0 m). Distances are
        planar in the data's Gauss-Krüger zone (see the module docstring).
        """
        ids, dist = self.nearest_many(np.array([lon]), np.array([lat]), max_distance_m)
        return None if ids[0] < 0 else (int(ids[0]), float(dist[0]))

    def nearest_many(self, lon: np.ndarray, lat: np.ndarray,
                     max_distance_m: float) -> tuple[np.ndarray, np.ndarray]:
        """``nearest`` for arrays: ``(ids, distances_m)``, -1 and NaN where none is in reach."""
        if not max_distance_m > 0:
            raise ValueError(f"max_distance_m must be positive, got {max_distance_m}")
        px, py = _points(lon, lat)
        ids = np.full(len(px), -1, dtype=np.int64)
        dist = np.full(len(px), np.nan)
        finite = np.isfinite(px) & np.isfinite(py) & (np.abs(py) < 89.0)
        px, py = px[finite], py[finite]
        # Candidates: polygons whose box meets a box in degrees that holds every point within
        # max_distance_m of the point (a Gauss-Krüger distance is never shorter than the one
        # on the ellipsoid, and a degree is never shorter than the lengths used here).
        dlat = max_distance_m / M_PER_DEG_LAT_MIN
        dlon = max_distance_m / (M_PER_DEG_LON_EQUATOR * np.cos(np.radians(np.abs(py) + dlat)))
        which, poly = self._tree.query(shapely.box(px - dlon, py - dlat, px + dlon, py + dlat))
        x, y = lonlat_to_metric(px, py, self.metric_epsg)
        d = shapely.distance(shapely.points(x[which], y[which]), self._metric_of(poly))
        near = d <= max_distance_m
        which, poly, d = which[near], poly[near], d[near]
        # Ties (several polygons at the same distance): the first given to build wins.
        order = np.lexsort((poly, d, which))
        first = order[np.r_[True, which[order][1:] != which[order][:-1]]] if len(order) else order
        rows = np.flatnonzero(finite)[which[first]]
        ids[rows] = self._ids[poly[first]]
        dist[rows] = d[first]
        return ids, dist

    def _metric_of(self, positions: np.ndarray) -> np.ndarray:
        """The polygons at ``positions`` in metres (EPSG ``metric_epsg``), projected on first
        need and kept: a lookup that never falls back holds no copy (outlines of a thousand
        vertices would double the index's memory)."""
        missing = np.unique(positions[shapely.is_missing(self._metric[positions])])
        if len(missing):
            self._metric[missing] = to_metric(self._geoms[missing], self.metric_epsg)
        return self._metric[positions]

    # ------------------------------------------------------------- reporting
    def __len__(self) -> int:
        return len(self._ids)

    def memory_bytes(self) -> int:
        """Bytes held in the lookup arrays (the STRtree of boxes and the metric copies that
        ``nearest`` makes come on top)."""
        return self._fdata.nbytes + self._idata.nbytes + self._ids.nbytes

    def stats(self) -> dict[str, float]:
        """Sizes that explain the index's speed and memory."""
        idata = self._idata
        nx, ny = int(idata[_kernels.I_NX]), int(idata[_kernels.I_NY])
        cell_start, cell_full, item_refs, _, pieces, _ = _kernels._views(self._fdata, idata)
        runs = pieces[:, 1] - pieces[:, 0] - 1
        item_edges = np.add.reduceat(runs, item_refs[:, 2]) if len(item_refs) and len(runs) \
            else np.zeros(0)
        item_edges = np.where(item_refs[:, 3] > item_refs[:, 2], item_edges, 0) \
            if len(item_edges) else item_edges
        return {
            "polygons": len(self),
            "vertices": int(idata[_kernels.I_NVERT]),
            "cells": len(cell_full),
            "top_cells": nx * ny,
            "split_cells": int((cell_full <= -2).sum()),
            "cell_size_x_deg": float(self.cell_size[0]),
            "cell_size_y_deg": float(self.cell_size[1]),
            "cells_whole_in_one_polygon": int((cell_full >= 0).sum()),
            "cells_with_edges": int((np.diff(cell_start) > 0).sum()),
            "items": len(item_refs),
            "edges_per_item_mean": float(item_edges.mean()) if len(item_edges) else 0.0,
            "edges_per_item_max": int(item_edges.max()) if len(item_edges) else 0,
            "array_bytes": self.memory_bytes(),
        }


class ParentArrays:
    """Ancestor chains from a parent array: ``parent_of[row]`` is the parent row, -1 for a root.

    Rows are the caller's numbering of its units (e.g. positions in a units table); chains run
    from the row itself up to its root (leaf first).
    """

    def __init__(self, parent_of: np.ndarray) -> None:
        parent_of = np.asarray(parent_of)
        if parent_of.ndim != 1 or not np.issubdtype(parent_of.dtype, np.integer):
            raise ValueError("parent_of must be a 1-D integer array")
        n = len(parent_of)
        bad = np.flatnonzero((parent_of < -1) | (parent_of >= n))
        if len(bad):
            raise ValueError(f"parent_of[{bad[0]}] = {parent_of[bad[0]]} is not a row or -1")
        # One extra slot holding -1, so that indexing with -1 (no parent) stays at -1.
        self._up = np.append(parent_of.astype(np.int64), -1)
        self._up_list = self._up.tolist()
        self.depth = _depth(self._up, n)

    def chain_rows(self, row: int) -> list[int]:
        """``[row, parent, grandparent, ..., root]``; empty for -1."""
        chain = []
        up = self._up_list
        while row >= 0:
            chain.append(row)
            row = up[row]
        return chain

    def chain_matrix(self, rows: np.ndarray) -> np.ndarray:
        """Chains of many rows: shape ``(len(rows), depth)``, leaf first, -1 past the root.

        The result is a transposed view: each column (one generation) is contiguous.
        """
        rows = np.asarray(rows, dtype=np.int64)
        if len(rows) and (rows.min() < -1 or rows.max() >= len(self._up) - 1):
            raise ValueError("rows must be valid rows or -1")
        out = np.empty((max(self.depth, 1), len(rows)), dtype=np.int64)
        out[0] = rows
        for k in range(1, self.depth):
            out[k] = self._up[out[k - 1]]
        return out.T


def canonical_edges(geoms: np.ndarray) -> _Edges:
    """Every ring edge of every polygon as (x1, y1, x2, y2), endpoints ordered by latitude.

    The same edge in two neighbours thus gives the same four numbers whichever way each ring
    runs, which is what makes the boundary rule exact between them. The kernels order each
    edge the same way as they read it (``_kernels``).
    """
    rings = _rings(geoms)
    a, b = rings.verts[rings.edge_v], rings.verts[rings.edge_v + 1]
    swap = (a[:, 1] > b[:, 1])[:, None]
    edges = np.hstack([np.where(swap, b, a), np.where(swap, a, b)])
    return _Edges(edges=edges, edge_start=rings.edge_start)


def _rings(geoms: np.ndarray) -> _Rings:
    parts, part_poly = shapely.get_parts(geoms, return_index=True)
    rings, ring_part = shapely.get_rings(parts, return_index=True)
    coords, coord_ring = shapely.get_coordinates(rings, return_index=True)
    edge_v = np.flatnonzero(coord_ring[:-1] == coord_ring[1:])
    edge_poly = part_poly[ring_part[coord_ring[edge_v]]]
    counts = np.bincount(edge_poly, minlength=len(geoms))
    edge_start = np.concatenate([[0], np.cumsum(counts)])
    return _Rings(verts=np.ascontiguousarray(coords, dtype=np.float64), edge_v=edge_v,
                  edge_start=edge_start)


def _checked_input(geoms: np.ndarray, ids: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    geoms = np.asarray(geoms, dtype=object)
    ids_in = np.asarray(ids)
    if geoms.ndim != 1 or ids_in.ndim != 1 or len(geoms) != len(ids_in):
        raise IndexBuildError(
            f"geoms and ids must be 1-D and of equal length, got {geoms.shape} and {ids_in.shape}")
    if len(geoms) == 0:
        raise IndexBuildError("no polygons to index")
    if not np.issubdtype(ids_in.dtype, np.integer):
        raise IndexBuildError(f"ids must be integers, got dtype {ids_in.dtype}")
    negative = np.flatnonzero(ids_in < 0)
    if len(negative):
        k = negative[0]
        raise IndexBuildError(
            f"ids must be >= 0 (-1 means not covered): position {k} has {ids_in[k]}")
    kinds = shapely.get_type_id(geoms)  # -1 for None
    polygonal = np.isin(kinds, [shapely.GeometryType.POLYGON, shapely.GeometryType.MULTIPOLYGON])
    empty = shapely.is_empty(geoms)
    for k in np.flatnonzero(~polygonal | empty)[:1]:
        what = "missing" if geoms[k] is None else f"an empty {geoms[k].geom_type}" if empty[k] \
            else f"a {geoms[k].geom_type}"
        raise IndexBuildError(
            f"geometry at position {k} (id {ids_in[k]}) is {what}; a Polygon or MultiPolygon "
            "is needed")
    bad = np.flatnonzero(~np.isfinite(shapely.bounds(geoms)).all(axis=1))
    if len(bad):
        k = bad[0]
        raise IndexBuildError(
            f"geometry at position {k} (id {ids_in[k]}) has non-finite coordinates")
    return geoms, ids_in.astype(np.int64)


def _auto_cell_size(bounds: np.ndarray, extent: tuple[float, float, float, float]) -> float:
    """About the median polygon's size: a cell then meets a handful of polygons (cells on a
    long outline are split further, see ``MAX_EDGES_PER_CELL``)."""
    sizes = np.maximum(bounds[:, 2] - bounds[:, 0], bounds[:, 3] - bounds[:, 1])
    side = float(np.median(sizes))
    area = max(extent[2] - extent[0], side) * max(extent[3] - extent[1], side)
    return max(side, (area / MAX_CELLS) ** 0.5)


def _grid_shape(extent: tuple[float, float, float, float],
                side: float) -> tuple[tuple[int, int], tuple[float, float]]:
    """Cells per axis and the exact cell width and height that tile the extent."""
    width = extent[2] - extent[0]
    height = extent[3] - extent[1]
    nx = max(1, min(int(np.ceil(width / side)), MAX_CELLS))
    ny = max(1, min(int(np.ceil(height / side)), MAX_CELLS // nx))
    return (nx, ny), (max(width / nx, 1e-12), max(height / ny, 1e-12))


def _points(lon: np.ndarray, lat: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    px = np.ascontiguousarray(lon, dtype=np.float64).ravel()
    py = np.ascontiguousarray(lat, dtype=np.float64).ravel()
    if px.shape != py.shape:
        raise ValueError(f"lon and lat differ in length: {px.shape[0]} and {py.shape[0]}")
    return px, py


def _depth(up: np.ndarray, n: int) -> int:
    """Longest chain length; raises when the parents form a cycle."""
    current = np.arange(n, dtype=np.int64)
    for depth in range(n + 1):
        current = current[current >= 0]
        if len(current) == 0:
            return depth
        current = up[current]
    raise ValueError(f"parent_of has a cycle through row {int(current[current >= 0][0])}")

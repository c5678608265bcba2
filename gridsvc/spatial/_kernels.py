"""Compiled kernels of ``gridsvc.spatial.index``: cell lists and the point-in-polygon test.

The index lives in two flat arrays so that one lookup crosses the Python/numba boundary with
two array arguments only (each array argument costs about 0.15 us to unbox):

``fdata`` (float64)::

    [F_XMIN, F_YMIN, F_XMAX, F_YMAX, F_INV_W, F_INV_H, -, -]   header (extent, 1 / cell size)
    item_boxes  n_items x 4    minx, miny, maxx, maxy of each cell item's polygon
    edges       n_edges x 4    x1, y1, x2, y2 with y1 <= y2 (see ``index.canonical_edges``)

``idata`` (int64)::

    [I_NX, I_NY, I_NITEM, I_NEDGE, -, -, -, -]                 header (cells per axis, counts)
    cell_start  nx * ny + 1    cell c's items are cell_start[c] .. cell_start[c+1] - 1
    item_refs   n_items x 3    id, first edge, end edge of each cell item's polygon

A cell item is one (cell, candidate polygon) pair; items of a cell are in input order. Each item
carries its polygon's box, id and edge range, so a lookup reads the cell's start, then its items
(two contiguous runs), then the edges of candidates whose box holds the point: three dependent
memory reads instead of five with per-polygon tables, which is what a cold lookup waits on.

The module docstring of ``gridsvc.spatial.index`` states the boundary rule these kernels apply.
"""

from __future__ import annotations

import os

import numba
import numpy as np
from numba import njit, prange

# Web servers fork workers from a master that may already have run a parallel kernel; GNU
# OpenMP (numba's first choice on Linux) then aborts the child ("fork() called from a process
# already using GNU OpenMP"). Use a fork-safe layer unless the deployment chose one. The
# fork-safe ``workqueue`` layer is not thread-safe: ``index.locate_many`` holds a lock.
if "NUMBA_THREADING_LAYER" not in os.environ:
    numba.config.THREADING_LAYER = "forksafe"

HEADER = 8
F_XMIN, F_YMIN, F_XMAX, F_YMAX, F_INV_W, F_INV_H = range(6)
I_NX, I_NY, I_NITEM, I_NEDGE = range(4)
REF_ID, REF_FIRST_EDGE, REF_END_EDGE = range(3)

# Options of the per-point helpers. They are inlined into each loop by LLVM (``forceinline``);
# otherwise every point pays a call passing each array as seven machine words. They never
# allocate, so numba's reference counting is off for them (``_nrt``, a numba-internal flag):
# otherwise every point increments and decrements each array's count. Together these take a
# point from ~100 ns to ~1 ns (outside the extent) or ~30 ns (tested against its candidates).
INNER = {"cache": True, "forceinline": True, "_nrt": False}


def pack(
    extent: tuple[float, float, float, float],
    cell_size: tuple[float, float],
    shape: tuple[int, int],
    cell_start: np.ndarray,
    item_boxes: np.ndarray,
    item_refs: np.ndarray,
    edges: np.ndarray,
) -> tuple[np.ndarray, np.ndarray]:
    """Lay the named arrays out as ``(fdata, idata)``, the layout in the module docstring."""
    header_f = np.zeros(HEADER)
    header_f[[F_XMIN, F_YMIN, F_XMAX, F_YMAX]] = extent
    header_f[F_INV_W] = 1.0 / cell_size[0]
    header_f[F_INV_H] = 1.0 / cell_size[1]
    fdata = np.concatenate([header_f, item_boxes.ravel(), edges.ravel()])
    header_i = np.zeros(HEADER, dtype=np.int64)
    header_i[[I_NX, I_NY, I_NITEM, I_NEDGE]] = (shape[0], shape[1], len(item_refs), len(edges))
    idata = np.concatenate([header_i, cell_start, item_refs.ravel()]).astype(np.int64)
    return fdata, idata


@njit(cache=True)
def _views(fdata, idata):
    """The named arrays of the packed layout, as views (no copies)."""
    nx, ny, n_item, n_edge = idata[I_NX], idata[I_NY], idata[I_NITEM], idata[I_NEDGE]
    item_boxes = fdata[HEADER : HEADER + 4 * n_item].reshape((n_item, 4))
    at = HEADER + 4 * n_item
    edges = fdata[at : at + 4 * n_edge].reshape((n_edge, 4))
    at = HEADER + nx * ny + 1
    cell_start = idata[HEADER:at]
    item_refs = idata[at : at + 3 * n_item].reshape((n_item, 3))
    return cell_start, item_boxes, item_refs, edges


@njit(**INNER)
def _cell_of(x, lo, inv, n):
    """Cell number along one axis; build and lookup share this arithmetic exactly."""
    c = int((x - lo) * inv)
    return min(max(c, 0), n - 1)


@njit(**INNER)
def _in_box(px, py, boxes, k):
    return boxes[k, 0] <= px <= boxes[k, 2] and boxes[k, 1] <= py <= boxes[k, 3]


@njit(**INNER)
def _contains(px, py, edges, e0, e1):
    """Crossing number, even-odd, half-open: True when (px, py) is inside the polygon."""
    inside = False
    for e in range(e0, e1):
        x1, y1, x2, y2 = edges[e, 0], edges[e, 1], edges[e, 2], edges[e, 3]
        # Horizontal edges (y1 == y2) fail the first test and are never crossed.
        if y1 <= py < y2 and (x2 - x1) * (py - y1) > (px - x1) * (y2 - y1):
            inside = not inside
    return inside


@njit(**INNER)
def _on_boundary(px, py, edges, e0, e1):
    """True when (px, py) lies on one of the edges (exact for axis-parallel edges)."""
    for e in range(e0, e1):
        x1, y1, x2, y2 = edges[e, 0], edges[e, 1], edges[e, 2], edges[e, 3]
        if (
            y1 <= py <= y2
            and min(x1, x2) <= px <= max(x1, x2)
            and (x2 - x1) * (py - y1) == (px - x1) * (y2 - y1)
        ):
            return True
    return False


@njit(**INNER)
def _point_cell(px, py, fdata, nx, ny):
    """The cell holding (px, py), or ``nx * ny`` outside the extent (and for NaN)."""
    if not (fdata[F_XMIN] <= px <= fdata[F_XMAX] and fdata[F_YMIN] <= py <= fdata[F_YMAX]):
        return nx * ny
    cx = _cell_of(px, fdata[F_XMIN], fdata[F_INV_W], nx)
    cy = _cell_of(py, fdata[F_YMIN], fdata[F_INV_H], ny)
    return cy * nx + cx


@njit(**INNER)
def _find(px, py, fdata, nx, ny, cell_start, item_boxes, item_refs, edges):
    cell = _point_cell(px, py, fdata, nx, ny)
    if cell == nx * ny:
        return -1
    first, last = cell_start[cell], cell_start[cell + 1]
    hit = False  # some candidate's box holds the point
    for k in range(first, last):
        if _in_box(px, py, item_boxes, k):
            hit = True
            e0, e1 = item_refs[k, REF_FIRST_EDGE], item_refs[k, REF_END_EDGE]
            if _contains(px, py, edges, e0, e1):
                return item_refs[k, REF_ID]
    if not hit:
        return -1
    # On an outline that the crossing rule gives to no polygon (an east or north side with
    # no neighbour): the first polygon whose boundary holds the point.
    for k in range(first, last):
        if _in_box(px, py, item_boxes, k):
            e0, e1 = item_refs[k, REF_FIRST_EDGE], item_refs[k, REF_END_EDGE]
            if _on_boundary(px, py, edges, e0, e1):
                return item_refs[k, REF_ID]
    return -1


@njit(cache=True)
def locate_one(px, py, fdata, idata):
    """The id of the polygon owning (px, py), or -1."""
    cell_start, item_boxes, item_refs, edges = _views(fdata, idata)
    return _find(px, py, fdata, idata[I_NX], idata[I_NY], cell_start, item_boxes, item_refs,
                 edges)


@njit(cache=True)
def locate_serial(px, py, fdata, idata, out):
    """``locate_one`` for every point in turn, into ``out``: for small batches."""
    cell_start, item_boxes, item_refs, edges = _views(fdata, idata)
    nx, ny = idata[I_NX], idata[I_NY]
    for k in range(len(px)):
        out[k] = _find(px[k], py[k], fdata, nx, ny, cell_start, item_boxes, item_refs, edges)


@njit(cache=True)
def _cell_order(px, py, fdata, nx, ny):
    """Point numbers ordered by cell (a counting sort; points outside the extent last)."""
    n_cells = nx * ny
    cells = np.empty(len(px), dtype=np.int64)
    start = np.zeros(n_cells + 2, dtype=np.int64)
    for k in range(len(px)):
        cells[k] = _point_cell(px[k], py[k], fdata, nx, ny)
        start[cells[k] + 1] += 1
    for c in range(1, n_cells + 2):
        start[c] += start[c - 1]
    order = np.empty(len(px), dtype=np.int64)
    for k in range(len(px)):
        order[start[cells[k]]] = k
        start[cells[k]] += 1
    return order


@njit(cache=True, parallel=True)
def locate_sorted(px, py, fdata, idata, out):
    """``locate_serial`` for large batches: points visited cell by cell, on all threads.

    Random points make every lookup wait on cache misses in a row (cell start, items, edges).
    Sorting them by cell first (a counting sort, O(n)) makes those reads nearly sequential;
    the gather before and the scatter after are independent reads and writes the CPU overlaps.
    About three times faster than the plain loop for a million points over a city.
    """
    cell_start, item_boxes, item_refs, edges = _views(fdata, idata)
    nx, ny = idata[I_NX], idata[I_NY]
    order = _cell_order(px, py, fdata, nx, ny)
    n = len(order)
    sx = np.empty(n)
    sy = np.empty(n)
    found = np.empty(n, dtype=np.int64)
    for j in prange(n):
        sx[j] = px[order[j]]
        sy[j] = py[order[j]]
    for j in prange(n):
        found[j] = _find(sx[j], sy[j], fdata, nx, ny, cell_start, item_boxes, item_refs, edges)
    for j in prange(n):
        out[order[j]] = found[j]


@njit(cache=True)
def cell_lists(cx0, cy0, cx1, cy1, nx, ny):
    """Candidate polygons per cell from each polygon's cell range (inclusive).

    Returns ``(cell_start, cell_items)``; polygons are visited in input order, so each cell
    lists its candidates in ascending position and the result is deterministic.
    """
    n_cells = nx * ny
    counts = np.zeros(n_cells + 1, dtype=np.int64)
    for p in range(len(cx0)):
        for cy in range(cy0[p], cy1[p] + 1):
            for cx in range(cx0[p], cx1[p] + 1):
                counts[cy * nx + cx + 1] += 1
    cell_start = np.cumsum(counts)
    fill = cell_start[:-1].copy()
    cell_items = np.empty(cell_start[-1], dtype=np.int64)
    for p in range(len(cx0)):
        for cy in range(cy0[p], cy1[p] + 1):
            for cx in range(cx0[p], cx1[p] + 1):
                c = cy * nx + cx
                cell_items[fill[c]] = p
                fill[c] += 1
    return cell_start, cell_items


@njit(cache=True)
def cell_ranges(lo, hi, origin, inv, n):
    """First and last cell along one axis of each box side ``lo``..``hi``."""
    first = np.empty(len(lo), dtype=np.int64)
    last = np.empty(len(lo), dtype=np.int64)
    for p in range(len(lo)):
        first[p] = _cell_of(lo[p], origin, inv, n)
        last[p] = _cell_of(hi[p], origin, inv, n)
    return first, last

"""Compiled kernels of ``gridsvc.spatial.index``: the cell build and the point-in-polygon test.

The index lives in two flat arrays so that one lookup crosses the Python/numba boundary with
two array arguments only (each array argument costs about 0.15 us to unbox):

``fdata`` (float64)::

    [F_XMIN, F_YMIN, F_XMAX, F_YMAX, F_INV_W, F_INV_H, F_W, F_H]   header (extent, top cells)
    item_boxes  n_items x 4    the item's polygon box clipped to its cell (widened by margin)
    verts       n_verts x 2    x, y: every ring vertex in input order (rings closed), then the
                               virtual vertices (two per virtual edge, see below)

``idata`` (int64)::

    [I_NX, I_NY, I_NITEM, I_NPIECE, I_NVERT, I_NCELL, -, -]  header (top grid, counts)
    cell_start  n_cells + 1    cell c's items are cell_start[c] .. cell_start[c+1] - 1
    cell_full   n_cells        the id of the polygon covering the whole cell, -1, or (<= -2)
                               the code of its k x k children (``_child_code``)
    item_refs   n_items x 4    id, parity, first piece, end piece
    pieces      n_piece x 2    a vertex run [a, b): the edges verts[i]-verts[i+1], a <= i < b-1

A cell item is one (cell, polygon) pair where the polygon's boundary comes near the cell; items
of a cell are in input order. A polygon covering a whole cell with no edge near it is no item:
``cell_full`` names it, and a point there is answered without any edge test (items before it
in input order, which only overlapping polygons produce, are still asked first).

Why an item's few edges decide the whole polygon (``cell_items``)
    The crossing number of a point counts the polygon's edges crossed by the ray going east
    from it. For every point of a cell, sort each edge of the polygon by where it lies against
    the cell widened by ``margin`` (far more than floating-point rounding of the test):

    - outside the cell's row (entirely south or north): never crossed;
    - entirely west of the cell: never crossed (the point is not west of it);
    - entirely east of the cell: crossed exactly when ``y1 <= lat < y2``, which is
      ``[ya <= lat] xor [yb <= lat]`` for its two ends; along a run of consecutive such edges
      the inner vertices cancel, so a run counts as its two end vertices. An end vertex south of
      the row counts 1 for every point of the cell (folded into the item's ``parity``), one
      north of it 0, and the few in the row become *virtual edges*: vertical edges far east of
      the extent (x = xmax + 1) from the vertex to the next one in latitude order, or to
      ``ymax + 1``, whose crossing test gives exactly that xor;
    - the rest meet the widened cell: kept as runs of the polygon's own vertices (``pieces``)
      and tested with the same arithmetic as any edge.

    So ``parity xor crossings(item edges)`` equals the polygon's crossing number parity, bit for
    bit, for every point the lookup sends to the cell; and a point on the polygon's boundary
    lies on one of the item's own edges (virtual edges hold no point of the extent).

Edges are read as ``(x1, y1, x2, y2)`` with the endpoints swapped when ``y1 > y2`` before any
arithmetic, as ``index.canonical_edges`` orders them: the boundary rule of the module docstring
of ``gridsvc.spatial.index`` is applied exactly as written there.
"""

from __future__ import annotations

import os
from typing import Any

import numba
import numpy as np
from numba import njit, prange

# Web servers fork workers from a master that may already have run a parallel kernel; GNU
# OpenMP (numba's first choice on Linux) then aborts the child ("fork() called from a process
# already using GNU OpenMP"). Use a fork-safe layer unless the deployment chose one. The
# fork-safe ``workqueue`` layer is not thread-safe: ``index.locate_many`` holds a lock.
if "NUMBA_THREADING_LAYER" not in os.environ:
    numba.config.THREADING_LAYER = "forksafe"  # type: ignore[attr-defined]  # set at run time

HEADER = 8
F_XMIN, F_YMIN, F_XMAX, F_YMAX, F_INV_W, F_INV_H, F_W, F_H = range(8)
I_NX, I_NY, I_NITEM, I_NPIECE, I_NVERT, I_NCELL = range(6)
REF_ID, REF_PARITY, REF_FIRST_PIECE, REF_END_PIECE = range(4)

# Options of the per-point helpers. They are inlined into each loop by LLVM (``forceinline``);
# otherwise every point pays a call passing each array as seven machine words. They never
# allocate, so numba's reference counting is off for them (``_nrt``, a numba-internal flag):
# otherwise every point increments and decrements each array's count.
INNER: dict[str, Any] = {"cache": True, "forceinline": True, "_nrt": False}

_EAST, _WEST, _LOCAL = 0, 1, 2


def pack(extent: tuple[float, float, float, float], cell_size: tuple[float, float],
         shape: tuple[int, int], cells: tuple[np.ndarray, ...],
         verts: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Lay the arrays of ``cell_items`` out as ``(fdata, idata)`` (see the module docstring)."""
    cell_start, cell_full, item_refs, item_boxes, pieces = cells
    header_f = np.zeros(HEADER)
    header_f[[F_XMIN, F_YMIN, F_XMAX, F_YMAX]] = extent
    header_f[F_INV_W] = 1.0 / cell_size[0]
    header_f[F_INV_H] = 1.0 / cell_size[1]
    header_f[F_W], header_f[F_H] = cell_size
    fdata = np.concatenate([header_f, item_boxes.ravel(), verts.ravel()])
    header_i = np.zeros(HEADER, dtype=np.int64)
    header_i[[I_NX, I_NY, I_NITEM, I_NPIECE, I_NVERT, I_NCELL]] = (
        shape[0], shape[1], len(item_refs), len(pieces), len(verts), len(cell_full))
    idata = np.concatenate([header_i, cell_start, cell_full, item_refs.ravel(),
                            pieces.ravel()]).astype(np.int64)
    return fdata, idata


@njit(cache=True)
def _views(fdata, idata):
    """The named arrays of the packed layout, as views (no copies)."""
    n_item = idata[I_NITEM]
    n_piece, n_vert = idata[I_NPIECE], idata[I_NVERT]
    item_boxes = fdata[HEADER : HEADER + 4 * n_item].reshape((n_item, 4))
    at = HEADER + 4 * n_item
    verts = fdata[at : at + 2 * n_vert].reshape((n_vert, 2))
    n_cells = idata[I_NCELL]
    cell_start = idata[HEADER : HEADER + n_cells + 1]
    at = HEADER + n_cells + 1
    cell_full = idata[at : at + n_cells]
    at += n_cells
    item_refs = idata[at : at + 4 * n_item].reshape((n_item, 4))
    at += 4 * n_item
    pieces = idata[at : at + 2 * n_piece].reshape((n_piece, 2))
    return cell_start, cell_full, item_refs, item_boxes, pieces, verts


@njit(**INNER)
def _cell_of(x, lo, inv, n):
    """Cell number along one axis; build and lookup share this arithmetic exactly."""
    c = int((x - lo) * inv)
    return min(max(c, 0), n - 1)


@njit(**INNER)
def _in_box(px, py, boxes, k):
    return boxes[k, 0] <= px <= boxes[k, 2] and boxes[k, 1] <= py <= boxes[k, 3]


@njit(**INNER)
def _crossings_odd(px, py, item_refs, pieces, verts, k):
    """The item's parity xor the crossing number of its edges: True when inside its polygon.

    Crossing number, even-odd, half-open, with the endpoints of each edge ordered by latitude.
    """
    inside = item_refs[k, REF_PARITY] != 0
    for q in range(item_refs[k, REF_FIRST_PIECE], item_refs[k, REF_END_PIECE]):
        for i in range(pieces[q, 0], pieces[q, 1] - 1):
            x1, y1, x2, y2 = verts[i, 0], verts[i, 1], verts[i + 1, 0], verts[i + 1, 1]
            if y1 > y2:
                x1, y1, x2, y2 = x2, y2, x1, y1
            # Horizontal edges (y1 == y2) fail the first test and are never crossed.
            if y1 <= py < y2 and (x2 - x1) * (py - y1) > (px - x1) * (y2 - y1):
                inside = not inside
    return inside


@njit(**INNER)
def _on_boundary(px, py, item_refs, pieces, verts, k):
    """True when (px, py) lies on one of the item's edges (exact for axis-parallel edges)."""
    for q in range(item_refs[k, REF_FIRST_PIECE], item_refs[k, REF_END_PIECE]):
        for i in range(pieces[q, 0], pieces[q, 1] - 1):
            x1, y1, x2, y2 = verts[i, 0], verts[i, 1], verts[i + 1, 0], verts[i + 1, 1]
            if y1 > y2:
                x1, y1, x2, y2 = x2, y2, x1, y1
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
def _leaf(px, py, fdata, nx, cell, cell_full):
    """The smallest cell holding (px, py), from the top-grid ``cell``: down through children."""
    code = cell_full[cell]
    if code > -2:
        return cell
    w, h = fdata[F_W], fdata[F_H]
    x0 = fdata[F_XMIN] + (cell % nx) * w
    y0 = fdata[F_YMIN] + (cell // nx) * h
    while code <= -2:
        v = -2 - code
        k = (v & 63) + 1
        w, h = w / k, h / k
        cx = _cell_of(px, x0, 1.0 / w, k)
        cy = _cell_of(py, y0, 1.0 / h, k)
        x0 += cx * w
        y0 += cy * h
        cell = (v >> 6) + cy * k + cx
        code = cell_full[cell]
    return cell


@njit(**INNER)
def _find(px, py, fdata, nx, ny, cell_start, cell_full, item_refs, item_boxes, pieces, verts):
    cell = _point_cell(px, py, fdata, nx, ny)
    if cell == nx * ny:
        return -1
    cell = _leaf(px, py, fdata, nx, cell, cell_full)
    first, last = cell_start[cell], cell_start[cell + 1]
    hit = False  # some item's box holds the point
    for k in range(first, last):
        if _in_box(px, py, item_boxes, k):
            hit = True
            if _crossings_odd(px, py, item_refs, pieces, verts, k):
                return item_refs[k, REF_ID]
    if cell_full[cell] >= 0:
        return cell_full[cell]
    if not hit:
        return -1
    # On an outline that the crossing rule gives to no polygon (an east or north side with
    # no neighbour): the first polygon whose boundary holds the point.
    for k in range(first, last):
        if _in_box(px, py, item_boxes, k) and _on_boundary(px, py, item_refs, pieces, verts, k):
            return item_refs[k, REF_ID]
    return -1


@njit(cache=True)
def locate_one(px, py, fdata, idata):
    """The id of the polygon owning (px, py), or -1."""
    cell_start, cell_full, item_refs, item_boxes, pieces, verts = _views(fdata, idata)
    return _find(px, py, fdata, idata[I_NX], idata[I_NY], cell_start, cell_full, item_refs,
                 item_boxes, pieces, verts)


@njit(cache=True)
def locate_serial(px, py, fdata, idata, out):
    """``locate_one`` for every point in turn, into ``out``: for small batches."""
    cell_start, cell_full, item_refs, item_boxes, pieces, verts = _views(fdata, idata)
    nx, ny = idata[I_NX], idata[I_NY]
    for k in range(len(px)):
        out[k] = _find(px[k], py[k], fdata, nx, ny, cell_start, cell_full, item_refs,
                       item_boxes, pieces, verts)


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
    """
    cell_start, cell_full, item_refs, item_boxes, pieces, verts = _views(fdata, idata)
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
        found[j] = _find(sx[j], sy[j], fdata, nx, ny, cell_start, cell_full, item_refs,
                         item_boxes, pieces, verts)
    for j in prange(n):
        out[order[j]] = found[j]


# ------------------------------------------------------------------------------------ build
#
# Growable buffers of the build, reallocated (doubled) as they fill; ``cnt`` holds how much of
# each is used. Items: ``ib`` (cell, id, parity, first piece, end piece), ``fb`` (box);
# ``pb`` pieces (a, b); ``vb`` vertices (x, y); ``cf`` each cell's ``cell_full`` (or its
# children's code); ``rb`` each cell's nominal rectangle (x0, y0, w, h).
C_ITEM, C_PIECE, C_VERT, C_CELL = range(4)
IB = 5


@njit(cache=True)
def _grown(a, need):
    """``a`` itself when it holds ``need`` elements, else a copy twice as large (1-D)."""
    if need <= len(a):
        return a
    b = np.empty(max(need, 2 * len(a)), dtype=a.dtype)
    b[: len(a)] = a
    return b


@njit(cache=True)
def _edge_class(x1, x2, lo, hi):
    if min(x1, x2) > hi:
        return _EAST
    if max(x1, x2) < lo:
        return _WEST
    return _LOCAL


@njit(cache=True)
def _term(y, lo, hi, terms, n_terms, parity):
    """Add ``[y <= lat]`` for the cell's latitudes ``lo..hi``: a constant goes to the parity,
    a variable term to ``terms``. Returns ``(n_terms, parity)``."""
    if y < lo:
        return n_terms, parity ^ 1
    if y > hi:
        return n_terms, parity
    terms[n_terms] = y
    return n_terms + 1, parity


@njit(cache=True)
def _child_code(first, k):
    """``cell_full`` of a cell split into k x k children numbered from ``first``."""
    return -2 - (first * 64 + (k - 1))


@njit(cache=True)
def _emit(edges, id_, parity0, box, grid, base, margin, x_east, y_top, cnt,
          ib, fb, pb, vb, cf):
    """The items of one polygon (or one coarser item) over one grid of cells.

    ``edges``: start vertices (into ``vb``) of its edges, in ring order; ``parity0``: the
    parity the edges are to be xor-ed with; ``box``: where its points can be; ``grid``:
    x0, y0, w, h, columns, rows of the grid, whose cells are numbered from ``base`` row by row.
    See the module docstring for the rule; returns the (maybe reallocated) buffers.
    """
    gx0, gy0, w, h = grid[0], grid[1], grid[2], grid[3]
    ncol, nrow = int(grid[4]), int(grid[5])
    inv_w, inv_h = 1.0 / w, 1.0 / h
    c0, c1 = _cell_of(box[0], gx0, inv_w, ncol), _cell_of(box[2], gx0, inv_w, ncol)
    r0, r1 = _cell_of(box[1], gy0, inv_h, nrow), _cell_of(box[3], gy0, inv_h, nrow)
    n_rows = r1 - r0 + 1
    row_count = np.zeros(n_rows + 1, dtype=np.int64)
    for j in range(len(edges)):
        a = edges[j]
        lo = _cell_of(min(vb[2 * a + 1], vb[2 * a + 3]), gy0, inv_h, nrow)
        hi = _cell_of(max(vb[2 * a + 1], vb[2 * a + 3]), gy0, inv_h, nrow)
        for r in range(max(lo, r0), min(hi, r1) + 1):
            row_count[r - r0 + 1] += 1
    row_start = np.cumsum(row_count)
    fill = row_start[:-1].copy()
    row_edges = np.empty(row_start[-1], dtype=np.int64)
    for j in range(len(edges)):
        a = edges[j]
        lo = _cell_of(min(vb[2 * a + 1], vb[2 * a + 3]), gy0, inv_h, nrow)
        hi = _cell_of(max(vb[2 * a + 1], vb[2 * a + 3]), gy0, inv_h, nrow)
        for r in range(max(lo, r0), min(hi, r1) + 1):
            row_edges[fill[r - r0]] = a
            fill[r - r0] += 1
    for r in range(r0, r1 + 1):
        band = row_edges[row_start[r - r0]:row_start[r - r0 + 1]]
        nb = len(band)
        if nb == 0:
            if parity0:  # inside along the whole row (a coarser item's virtual edges say so)
                for c in range(c0, c1 + 1):
                    if cf[base + r * ncol + c] == -1:
                        cf[base + r * ncol + c] = id_
            continue
        y_lo = gy0 + r * h - margin
        y_hi = gy0 + (r + 1) * h + margin
        terms = np.empty(2 * nb + 2)
        runs = np.empty(2 * nb + 2, dtype=np.int64)
        for c in range(c0, c1 + 1):
            cell = base + r * ncol + c
            if cf[cell] != -1:
                continue  # an earlier polygon covers the whole cell
            x_lo = gx0 + c * w - margin
            x_hi = gx0 + (c + 1) * w + margin
            parity = parity0
            n_terms = 0
            n_runs = 0
            prev_a = -2
            prev_cls = -1
            for j in range(nb + 1):
                if j < nb:
                    a = band[j]
                    cls = _edge_class(vb[2 * a], vb[2 * a + 2], x_lo, x_hi)
                    adj = a == prev_a + 1
                else:
                    a, cls, adj = -2, -1, False
                if prev_cls == _EAST and not (adj and cls == _EAST):
                    n_terms, parity = _term(vb[2 * prev_a + 3], y_lo, y_hi, terms, n_terms,
                                            parity)
                if prev_cls == _LOCAL and not (adj and cls == _LOCAL):
                    runs[n_runs + 1] = prev_a + 2
                    n_runs += 2
                if cls == _EAST and not (adj and prev_cls == _EAST):
                    n_terms, parity = _term(vb[2 * a + 1], y_lo, y_hi, terms, n_terms, parity)
                if cls == _LOCAL and not (adj and prev_cls == _LOCAL):
                    runs[n_runs] = a
                prev_a, prev_cls = a, cls
            # the variable terms: sort, cancel equal pairs, pair up as virtual edges
            t = np.sort(terms[:n_terms])
            n_left = 0
            i = 0
            while i < n_terms:
                if i + 1 < n_terms and t[i] == t[i + 1]:
                    i += 2
                else:
                    t[n_left] = t[i]
                    n_left += 1
                    i += 1
            n_virtual = (n_left + 1) // 2
            if n_runs == 0 and n_virtual == 0:
                if parity:
                    cf[cell] = id_
                continue
            k = cnt[C_ITEM]
            cnt[C_ITEM] += 1
            ib = _grown(ib, IB * (k + 1))
            fb = _grown(fb, 4 * (k + 1))
            n_piece = cnt[C_PIECE]
            ib[IB * k] = cell
            ib[IB * k + 1] = id_
            ib[IB * k + 2] = parity
            ib[IB * k + 3] = n_piece
            fb[4 * k] = max(box[0], x_lo)
            fb[4 * k + 1] = max(box[1], y_lo)
            fb[4 * k + 2] = min(box[2], x_hi)
            fb[4 * k + 3] = min(box[3], y_hi)
            pb = _grown(pb, 2 * (n_piece + n_runs // 2 + n_virtual))
            for q in range(0, n_runs, 2):
                pb[2 * n_piece] = runs[q]
                pb[2 * n_piece + 1] = runs[q + 1]
                n_piece += 1
            n_vert = cnt[C_VERT]
            vb = _grown(vb, 2 * (n_vert + 2 * n_virtual))
            for q in range(n_virtual):
                vb[2 * n_vert] = x_east
                vb[2 * n_vert + 1] = t[2 * q]
                vb[2 * n_vert + 2] = x_east
                vb[2 * n_vert + 3] = t[2 * q + 1] if 2 * q + 1 < n_left else y_top
                pb[2 * n_piece] = n_vert
                pb[2 * n_piece + 1] = n_vert + 2
                n_vert += 2
                n_piece += 1
            cnt[C_VERT] = n_vert
            cnt[C_PIECE] = n_piece
            ib[IB * k + 4] = n_piece
    return ib, fb, pb, vb, cf


@njit(cache=True)
def _by_cell(ib, first, last, n_cells):
    """Items ``first..last-1`` grouped by cell, each cell's in item order: (start, order)."""
    start = np.zeros(n_cells + 1, dtype=np.int64)
    for k in range(first, last):
        start[ib[IB * k] + 1] += 1
    for c in range(n_cells):
        start[c + 1] += start[c]
    slot = start[:-1].copy()
    order = np.empty(last - first, dtype=np.int64)
    for k in range(first, last):
        order[slot[ib[IB * k]]] = k
        slot[ib[IB * k]] += 1
    return start, order


@njit(cache=True)
def build_cells(verts, edge_v, poly_edge_start, poly_bounds, ids, extent, shape, size, margin,
                max_edges, max_split, max_depth):
    """The cells of the index: ``(cell_start, cell_full, item_refs, item_boxes, pieces,
    verts)``, where ``verts`` are the given ones followed by the virtual vertices.

    ``verts``: (v, 2) every ring vertex (rings closed); ``edge_v[e]``: the first vertex of
    edge e (polygon p's are ``poly_edge_start[p] .. poly_edge_start[p+1] - 1``, ring order);
    ``poly_bounds``: (n, 4); ``ids``: one per polygon; ``shape``/``size``: the top grid. A
    cell whose items hold more than ``max_edges`` edges in all is split into k x k children
    (k <= ``max_split``, chosen for about a quarter of that each), down to ``max_depth``
    splits. Polygons, then items, are visited in input order, so every cell lists its items in
    input order and the result depends only on the input.
    """
    nx, ny = shape[0], shape[1]
    x_east, y_top = extent[2] + 1.0, extent[3] + 1.0
    n_top = nx * ny
    cnt = np.zeros(4, dtype=np.int64)
    vb = _grown(verts.ravel().copy(), 2 * len(verts) + 1024)
    cnt[C_VERT] = len(verts)
    ib = np.empty(IB * 1024, dtype=np.int64)
    fb = np.empty(4 * 1024)
    pb = np.empty(2 * 1024, dtype=np.int64)
    cf = np.full(n_top, -1, dtype=np.int64)
    rb = np.empty(4 * n_top)  # nominal cell rectangles
    for cy in range(ny):
        for cx in range(nx):
            c = cy * nx + cx
            rb[4 * c] = extent[0] + cx * size[0]
            rb[4 * c + 1] = extent[1] + cy * size[1]
            rb[4 * c + 2] = size[0]
            rb[4 * c + 3] = size[1]
    cnt[C_CELL] = n_top
    grid = np.array([extent[0], extent[1], size[0], size[1], nx, ny], dtype=np.float64)
    box = np.empty(4)
    for p in range(len(ids)):
        box[:] = poly_bounds[p]
        edges = edge_v[poly_edge_start[p]:poly_edge_start[p + 1]]
        ib, fb, pb, vb, cf = _emit(edges, ids[p], 0, box, grid, 0, margin, x_east, y_top,
                                   cnt, ib, fb, pb, vb, cf)
    alive = np.ones(cnt[C_ITEM], dtype=np.bool_)
    first = 0
    for _ in range(max_depth):
        last = cnt[C_ITEM]
        start, order = _by_cell(ib, first, last, cnt[C_CELL])
        alive = _grown(alive, last)
        alive[first:last] = True
        split_any = False
        for cell in range(len(start) - 1):
            s0, s1 = start[cell], start[cell + 1]
            if s1 == s0 or cf[cell] != -1:
                continue
            total = 0
            for j in range(s0, s1):
                k = order[j]
                for q in range(ib[IB * k + 3], ib[IB * k + 4]):
                    total += pb[2 * q + 1] - pb[2 * q] - 1
            if total <= max_edges:
                continue
            split = min(max_split, max(2, int(np.ceil(np.sqrt(4.0 * total / max_edges)))))
            child = cnt[C_CELL]
            n_child = split * split
            cnt[C_CELL] += n_child
            cf = _grown(cf, cnt[C_CELL])
            cf[child:child + n_child] = -1
            rb = _grown(rb, 4 * cnt[C_CELL])
            cw, ch = rb[4 * cell + 2] / split, rb[4 * cell + 3] / split
            for i in range(split):
                for j2 in range(split):
                    c = child + i * split + j2
                    rb[4 * c] = rb[4 * cell] + j2 * cw
                    rb[4 * c + 1] = rb[4 * cell + 1] + i * ch
                    rb[4 * c + 2] = cw
                    rb[4 * c + 3] = ch
            cf[cell] = _child_code(child, split)
            grid = np.array([rb[4 * cell], rb[4 * cell + 1], cw, ch, split, split])
            split_any = True
            for j in range(s0, s1):
                k = order[j]
                alive[k] = False
                n_edges = 0
                for q in range(ib[IB * k + 3], ib[IB * k + 4]):
                    n_edges += pb[2 * q + 1] - pb[2 * q] - 1
                edges = np.empty(n_edges, dtype=np.int64)
                n_edges = 0
                for q in range(ib[IB * k + 3], ib[IB * k + 4]):
                    for a in range(pb[2 * q], pb[2 * q + 1] - 1):
                        edges[n_edges] = a
                        n_edges += 1
                box[:] = fb[4 * k:4 * k + 4]
                ib, fb, pb, vb, cf = _emit(edges, ib[IB * k + 1], ib[IB * k + 2], box, grid,
                                           child, margin, x_east, y_top, cnt, ib, fb, pb, vb,
                                           cf)
        first = last
        if not split_any:
            break
    # the items left, grouped by cell; pieces in item order
    n_item, n_cells = cnt[C_ITEM], cnt[C_CELL]
    alive = _grown(alive, n_item)
    alive[first:n_item] = True
    keep = np.flatnonzero(alive[:n_item])
    cell_start = np.zeros(n_cells + 1, dtype=np.int64)
    for k in keep:
        cell_start[ib[IB * k] + 1] += 1
    for c in range(n_cells):
        cell_start[c + 1] += cell_start[c]
    slot = cell_start[:-1].copy()
    order = np.empty(len(keep), dtype=np.int64)
    for k in keep:
        order[slot[ib[IB * k]]] = k
        slot[ib[IB * k]] += 1
    n_piece = 0
    for k in keep:
        n_piece += ib[IB * k + 4] - ib[IB * k + 3]
    item_refs = np.empty((len(keep), 4), dtype=np.int64)
    item_boxes = np.empty((len(keep), 4))
    pieces = np.empty((n_piece, 2), dtype=np.int64)
    at = 0
    for j in range(len(keep)):
        k = order[j]
        item_refs[j, REF_ID] = ib[IB * k + 1]
        item_refs[j, REF_PARITY] = ib[IB * k + 2]
        item_refs[j, REF_FIRST_PIECE] = at
        for q in range(ib[IB * k + 3], ib[IB * k + 4]):
            pieces[at, 0] = pb[2 * q]
            pieces[at, 1] = pb[2 * q + 1]
            at += 1
        item_refs[j, REF_END_PIECE] = at
        for m in range(4):
            item_boxes[j, m] = fb[4 * k + m]
    out_verts = vb[: 2 * cnt[C_VERT]].copy().reshape((cnt[C_VERT], 2))
    return cell_start, cf[:n_cells].copy(), item_refs, item_boxes, pieces, out_verts

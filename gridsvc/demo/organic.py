"""Organic cells for the demo city: outlines traced along meandering streets, many vertices.

``organic_cells`` turns the city's road grid (centre lines ``xs`` west-east and ``ys``
south-north, metres) into one polygon per cell whose sides are the streets as a planner traces
them: every road segment between two crossings becomes a polyline of a few hundred vertices
that meanders smoothly (a few random harmonics) with a little digitising jitter on top, and the
crossings themselves move a little. Neighbouring cells take the very same polyline for the
side they share, so they share every vertex exactly: the cells tile the city's rectangle with
no gap and no overlap, and unions of them (communities, streets) are exact.

Why the cells stay valid
    A side's vertices advance strictly along the segment and move only across it, so a side is
    the graph of a function over its segment and never crosses itself. The meander is at most
    ``MEANDER_SHARE`` of the shorter cell side and fades to nothing at both ends (a ``sin``
    envelope), so a side stays in a narrow band around its segment and leaves each crossing
    within a cone of about 20 degrees around the segment's direction: the four sides of a cell
    meet only at its corners. ``BLOCK_INSET_M`` bounds how far a side strays from the straight
    road centre line, so a block inset by it (plus half the road) stays inside its cell.

Everything is drawn from the ``numpy.random.Generator`` given, so the same seed gives the same
cells.
"""

from __future__ import annotations

import numpy as np
import shapely

VERTICES_PER_SIDE = 215  # median vertices on a side before the spreads (cells: median ~1,050)
CELL_SPREAD = 1.2  # sigma of the log of a cell's vertex density (shared by its four sides)
SIDE_SPREAD = 0.5  # sigma of the log of each side's own factor: a long tail, as real outlines
MIN_STEP_M = 0.1  # between vertices along a side, ten times the 1 cm rounding of the files
MEANDER_SHARE = 0.06  # largest meander, as a share of the shorter side of the cells
MEANDER_MAX_M = 9.0
JITTER_M = 0.25  # digitising noise across the side
CORNER_JITTER_M = 1.5
HARMONICS = 4
BLOCK_INSET_M = MEANDER_MAX_M + JITTER_M + CORNER_JITTER_M  # beyond the road centre line


def organic_cells(xs: np.ndarray, ys: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Polygons of the cells between road centre lines ``xs`` and ``ys`` (metres), shape
    ``(len(ys) - 1, len(xs) - 1)``: row ``r``, column ``c`` lies between ``ys[r]..ys[r+1]``
    and ``xs[c]..xs[c+1]``, as ``shapely.box`` of the same cell would."""
    nx, ny = len(xs), len(ys)
    gx, gy = np.meshgrid(xs, ys)  # crossings, (ny, nx)
    gx = gx + rng.uniform(-CORNER_JITTER_M, CORNER_JITTER_M, gx.shape)
    gy = gy + rng.uniform(-CORNER_JITTER_M, CORNER_JITTER_M, gy.shape)
    amplitude = min(MEANDER_MAX_M, MEANDER_SHARE * min(np.diff(xs).min(), np.diff(ys).min()))
    # log vertex density of each cell, with a border of cells outside: dense[r + 1, c + 1]
    dense = rng.normal(0.0, CELL_SPREAD, (ny + 1, nx + 1))
    # sides running west-east: from crossing (r, c) to (r, c + 1), between cells r - 1 and r
    horizontal = [[_side(gx[r, c], gy[r, c], gx[r, c + 1], gy[r, c + 1], amplitude,
                         (dense[r, c + 1] + dense[r + 1, c + 1]) / 2, rng)
                   for c in range(nx - 1)] for r in range(ny)]
    # sides running south-north: from crossing (r, c) to (r + 1, c), between cells c - 1 and c
    vertical = [[_side(gx[r, c], gy[r, c], gx[r + 1, c], gy[r + 1, c], amplitude,
                       (dense[r + 1, c] + dense[r + 1, c + 1]) / 2, rng)
                 for c in range(nx)] for r in range(ny - 1)]
    cells = np.empty((ny - 1, nx - 1), dtype=object)
    for r in range(ny - 1):
        for c in range(nx - 1):
            south = horizontal[r][c]
            east = vertical[r][c + 1]
            north = horizontal[r + 1][c][::-1]
            west = vertical[r][c][::-1]
            ring = np.concatenate([south[:-1], east[:-1], north[:-1], west])
            cells[r, c] = shapely.Polygon(ring)
    return cells


def _side(x0: float, y0: float, x1: float, y1: float, amplitude: float, density: float,
          rng: np.random.Generator) -> np.ndarray:
    """The polyline from (x0, y0) to (x1, y1), both ends included, as ``(k, 2)``; about
    ``VERTICES_PER_SIDE * exp(density)`` vertices."""
    dx, dy = x1 - x0, y1 - y0
    length = np.hypot(dx, dy)
    n = int(np.rint(VERTICES_PER_SIDE * np.exp(density + rng.normal(0.0, SIDE_SPREAD))))
    n = min(max(8, n), int(length / MIN_STEP_M))
    # strictly increasing positions along the side: even steps, each moved by at most 0.35 of one
    t = (np.arange(1, n) + rng.uniform(-0.35, 0.35, n - 1)) / n
    weights = rng.normal(0.0, 1.0, HARMONICS) / np.arange(1, HARMONICS + 1)
    phases = rng.uniform(0.0, 2 * np.pi, HARMONICS)
    wave = (weights[:, None] * np.sin(np.pi * np.arange(1, HARMONICS + 1)[:, None] * t
                                      + phases[:, None])).sum(axis=0)
    wave *= amplitude / max(np.abs(weights).sum(), 1e-9)
    envelope = np.sin(np.pi * t)
    across = envelope * (wave + rng.uniform(-JITTER_M, JITTER_M, len(t)))
    nxu, nyu = -dy / length, dx / length  # unit normal
    inner = np.column_stack([x0 + t * dx + across * nxu, y0 + t * dy + across * nyu])
    return np.vstack([[x0, y0], inner, [x1, y1]])

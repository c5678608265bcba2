"""Building footprints inside compounds, in metres, for all compounds at once.

A compound (one block between roads) keeps a green setback along its fence. Inside it the
buildings stand in east-west rows (south-facing slabs, as Chinese residential buildings do),
rows separated by lanes. Along a row the buildings mostly share their side walls: neighbours
take their x from the very same wall coordinate, so the shared edge is exact; sometimes a
passage separates them. Everything is computed on arrays, one element per block, row, wall
or building, without Python loops.
"""

from __future__ import annotations

import numpy as np

MIN_LANE_M = 12.0  # between two rows of buildings
MIN_WIDTH_M = 20.0  # narrowest building slot along a row (before passages)
PREFERRED_WIDTH_M = 35.0
SETBACK_M = (6.0, 10.0)  # green strip along the compound's fence
DEPTH_M = (11.0, 15.0)  # building depth, south-north
PASSAGE_SHARE = 0.35  # share of neighbour pairs in a row parted by a passage
HALF_PASSAGE_M = (2.5, 4.0)
WALL_JITTER = 0.08  # how far a shared wall may move, as a share of the slot width


def layout_buildings(
    blocks: np.ndarray, targets: np.ndarray, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray]:
    """Footprints ``(m, 4)`` as ``xmin, ymin, xmax, ymax`` and the block index of each.

    ``blocks`` is ``(n, 4)`` boxes; block ``i`` gets about ``targets[i]`` buildings (fewer when
    it is too small). Buildings come block by block, rows south to north, west to east in a
    row: the numbering order 1栋, 2栋, ...
    """
    n = len(blocks)
    x0, y0, x1, y1 = blocks.T
    setback = rng.uniform(*SETBACK_M, size=n)
    depth = rng.uniform(*DEPTH_M, size=n)
    width = x1 - x0 - 2 * setback
    height = y1 - y0 - 2 * setback
    too_small = (width < MIN_WIDTH_M) | (height < depth)
    if too_small.any():
        raise ValueError(f"block {blocks[np.argmax(too_small)]} is too small for a building")
    max_rows = np.maximum(1, (height + MIN_LANE_M) // (depth + MIN_LANE_M)).astype(int)
    max_per_row = np.maximum(1, width // MIN_WIDTH_M).astype(int)
    preferred_per_row = np.maximum(1, width // PREFERRED_WIDTH_M).astype(int)
    n_rows = np.minimum(max_rows, np.maximum(1, -(-targets // preferred_per_row)))
    total = np.maximum(1, np.minimum(targets, n_rows * max_per_row))

    # rows: block, index in block, number of buildings, south edge
    row_block = np.repeat(np.arange(n), n_rows)
    row_index = index_in_group(n_rows)
    rows_here = n_rows[row_block]
    shift = rng.integers(0, 1 << 30, size=n)[row_block]  # which rows take the extra buildings
    extra = (row_index + shift) % rows_here < (total % n_rows)[row_block]
    per_row = total[row_block] // rows_here + extra
    free = (height - depth)[row_block]
    step = np.where(rows_here > 1, free / np.maximum(rows_here - 1, 1), 0.0)
    south = (y0 + setback)[row_block] + np.where(rows_here > 1, row_index * step, free / 2)
    north = south + depth[row_block]

    # walls: per_row + 1 per row; the inner ones jitter and may open into a passage
    wall_row = np.repeat(np.arange(len(per_row)), per_row + 1)
    wall_index = index_in_group(per_row + 1)
    slots = per_row[wall_row]
    slot_width = width[row_block][wall_row] / slots
    inner = (wall_index > 0) & (wall_index < slots)
    jitter = rng.uniform(-WALL_JITTER, WALL_JITTER, size=len(wall_row)) * slot_width
    walls = (x0 + setback)[row_block][wall_row] + wall_index * slot_width + inner * jitter
    parted = inner & (rng.random(len(wall_row)) < PASSAGE_SHARE)
    half_passage = np.where(parted, rng.uniform(*HALF_PASSAGE_M, size=len(wall_row)), 0.0)

    # buildings: between wall j and wall j + 1 of their row
    building_row = np.repeat(np.arange(len(per_row)), per_row)
    left_wall = np.cumsum(per_row + 1)[building_row] - (per_row + 1)[building_row] \
        + index_in_group(per_row)
    boxes = np.column_stack([
        walls[left_wall] + half_passage[left_wall],
        south[building_row],
        walls[left_wall + 1] - half_passage[left_wall + 1],
        north[building_row],
    ])
    return boxes, row_block[building_row]


def index_in_group(sizes: np.ndarray) -> np.ndarray:
    """0..size-1 for each group of ``sizes`` consecutive elements."""
    starts = np.cumsum(sizes) - sizes
    return np.arange(int(sizes.sum())) - np.repeat(starts, sizes)

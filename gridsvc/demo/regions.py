"""Split the cells of a block grid into contiguous regions of similar size (streets, communities).

Seeds are spread by farthest-point sampling followed by a few Lloyd steps; then every region
grows one edge-adjacent cell per round, the next cell drawn from its frontier by a random
priority fixed up front. Growing through edge neighbours keeps every region in one piece.
"""

from __future__ import annotations

import heapq

import numpy as np

LLOYD_STEPS = 3


def spread_seeds(mask: np.ndarray, n: int, rng: np.random.Generator) -> np.ndarray:
    """Flat indices of ``n`` well-spread cells among the True cells of the 2-D ``mask``."""
    cells = np.flatnonzero(mask)
    if not 1 <= n <= cells.size:
        raise ValueError(f"cannot place {n} regions in {cells.size} cells")
    rc = np.column_stack(np.unravel_index(cells, mask.shape)).astype(float)
    chosen = [int(rng.integers(cells.size))]
    nearest = ((rc - rc[chosen[0]]) ** 2).sum(axis=1)
    jitter = rng.random(cells.size) * 1e-3  # breaks ties between equally far cells
    for _ in range(1, n):
        pick = int(np.argmax(nearest + jitter))
        chosen.append(pick)
        nearest = np.minimum(nearest, ((rc - rc[pick]) ** 2).sum(axis=1))
    centres = rc[chosen]
    for _ in range(LLOYD_STEPS):
        owner = ((rc[:, None, :] - centres[None, :, :]) ** 2).sum(axis=2).argmin(axis=1)
        for k in range(n):
            members = rc[owner == k]
            if len(members):
                centres[k] = members.mean(axis=0)
    # each seed is the free cell nearest its centre
    seeds: list[int] = []
    taken = np.zeros(cells.size, dtype=bool)
    for centre in centres:
        dist = ((rc - centre) ** 2).sum(axis=1) + jitter
        dist[taken] = np.inf
        pick = int(np.argmin(dist))
        taken[pick] = True
        seeds.append(pick)
    return cells[seeds]


def grow_regions(mask: np.ndarray, n: int, rng: np.random.Generator) -> np.ndarray:
    """Label the True cells of ``mask`` with ``n`` contiguous regions 0..n-1; -1 elsewhere."""
    rows, cols = mask.shape
    allowed = mask.ravel()
    labels = np.full(mask.size, -1, dtype=np.int64)
    priority = rng.random(mask.size)
    frontiers: list[list[tuple[float, int]]] = [[] for _ in range(n)]

    def claim(region: int, cell: int) -> None:
        labels[cell] = region
        r, c = divmod(cell, cols)
        for rr, cc in ((r - 1, c), (r + 1, c), (r, c - 1), (r, c + 1)):
            if 0 <= rr < rows and 0 <= cc < cols:
                nb = rr * cols + cc
                if allowed[nb] and labels[nb] < 0:
                    heapq.heappush(frontiers[region], (priority[nb], nb))

    for region, cell in enumerate(spread_seeds(mask, n, rng)):
        claim(region, int(cell))
    growing = list(range(n))
    while growing:
        still: list[int] = []
        for region in growing:
            frontier = frontiers[region]
            while frontier:
                _, cell = heapq.heappop(frontier)
                if labels[cell] < 0:
                    claim(region, cell)
                    still.append(region)
                    break
        growing = still
    return labels.reshape(mask.shape)

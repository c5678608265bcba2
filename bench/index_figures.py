"""Figures of the in-memory index (``gridsvc.spatial.index``), measured with ``bench_index``."""

from __future__ import annotations

import time
from dataclasses import dataclass

import numpy as np
import shapely
from bench_index import (
    REPEAT,
    Case,
    agreement,
    agreement_counts,
    boundary_file,
    bulk_index,
    bulk_sjoin_matches,
    case_from,
    make_case,
    measure_build,
    single_index,
    single_strtree,
)
from figures import Agreement, Figure, Target

BUILD_TARGET = Target("<", 5.0)  # seconds (the issue: under 5 s for 4 million vertices)
MEMORY_TARGET = Target("<", 300.0)  # MB
BULK_TARGET = Target(">=", 5.0, on_gain=True)  # times faster than geopandas.sjoin
SINGLE_TARGET = Target("<", 3.0)  # microseconds


def strtree_build_seconds(geoms: np.ndarray) -> float:
    """The fastest of a few builds of a shapely STRtree over the same polygons."""
    times = []
    for _ in range(REPEAT):
        start = time.perf_counter()
        shapely.STRtree(geoms)
        times.append(time.perf_counter() - start)
    return min(times)


@dataclass
class IndexRun:
    figures: list[Figure]
    agreements: list[Agreement]  # with geopandas.sjoin, on random points and building vertices
    rows: np.ndarray  # the micro-grid row the index gives each random point, -1 for none
    bulk_seconds: float  # the index's time for all random points with the chain


def index_figures(case: Case, part: str = "index") -> IndexRun:
    """Build the index into ``case.index``, then measure it against its baselines; the
    figures are labelled ``part`` (e.g. ``index (organic)``)."""
    build = measure_build(case)
    wkb_mb = sum(len(w) for w in shapely.to_wkb(case.geoms)) / 2**20
    index_s, rows = bulk_index(case)
    sjoin_s, _, point, row = bulk_sjoin_matches(case)
    n = f"{len(case.lon):,}"
    figures = [
        Figure(part, f"build ({int(shapely.get_num_coordinates(case.geoms).sum()):,} "
               f"vertices, {build['build_cpu_s']:.1f} s CPU)", build["build_s"], "s",
               "shapely.STRtree build", strtree_build_seconds(case.geoms),
               target=BUILD_TARGET),
        Figure(part, "resident memory (fresh process)", build["resident_mb"], "MB",
               "the polygons as WKB", wkb_mb, target=MEMORY_TARGET),
        Figure(part, f"bulk: {n} points + chain", index_s, "s",
               "geopandas.sjoin + chain", sjoin_s, target=BULK_TARGET),
        Figure(part, f"bulk: {n} points + chain", len(case.lon) / index_s, "points/s",
               "geopandas.sjoin + chain", len(case.lon) / sjoin_s, higher_is_better=True),
        Figure(part, "single lookup + chain, median", single_index(case), "us",
               "shapely.STRtree query + chain", single_strtree(case), target=SINGLE_TARGET),
    ]
    vertices, which = case.vertices()
    label = "" if part == "index" else f" [{part}]"
    agreements = [
        Agreement.from_counts(f"geopandas.sjoin, random points{label}",
                              agreement_counts(rows, point, row)),
        Agreement.from_counts(f"geopandas.sjoin, {which}{label}",
                              agreement(case, vertices[:, 0], vertices[:, 1])),
    ]
    return IndexRun(figures, agreements, rows, index_s)


__all__ = ["Case", "IndexRun", "boundary_file", "case_from", "index_figures", "make_case",
           "strtree_build_seconds"]

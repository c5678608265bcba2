"""Benchmark of the point -> micro-grid index (``gridsvc.spatial.index``) against baselines.

    python bench/bench_index.py [--points N] [--polygons city|small] [--seed S] [--synthetic]
                                [--json PATH]

The polygons are the building micro-grids (level 4) of the demo city
(``gridsvc.demo.city.generate_city(seed, scale)``), or, when that cannot be imported, a
synthetic city of rows of adjacent rectangles with the same scale. Points are uniform over the
buildings' extent (wgs84). Every figure is measured in this run, and each is shown as a ratio
against the baseline measured in the same run:

- build: ``PolygonIndex.build`` time, its arrays' size, and the resident memory it adds
  (measured in a fresh interpreter that loads the polygons, then builds);
- bulk: ``locate_many`` + ``ParentArrays.chain_matrix`` vs ``geopandas.sjoin`` (predicate
  ``intersects``; shared-edge points match two, the first is kept) + the same chain_matrix;
  the points GeoDataFrame is made before the clock starts, in the baseline's favour;
- single: median time of ``locate`` + ``chain_rows`` per point vs a shapely
  ``STRtree.query(Point(lon, lat), predicate="intersects")`` + ``chain_rows``;
- agreement: for every point, the index's answer equals the sjoin (= ST_Covers) answer where
  that is one polygon or none, and is one of the matches where there are several (boundary
  points); checked on the random points and on every building vertex.

To add a baseline (PostGIS, say), write a function like ``bulk_sjoin`` that takes a ``Case``
and returns ``(seconds, rows)`` and add it to ``BULK_BASELINES``; the table and the agreement
check pick it up.
"""

from __future__ import annotations

import argparse
import gc
import json
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import geopandas as gpd
import numpy as np
import shapely

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from gridsvc.spatial.index import ParentArrays, PolygonIndex

SYNTHETIC_ORIGIN = (120.70, 31.93)  # wgs84, south-west corner of the synthetic city
DEG_PER_M_LAT = 1 / 110_900.0
DEG_PER_M_LON = 1 / 94_300.0  # at 32N
REPEAT = 3  # bulk runs per method; the fastest counts


@dataclass
class Case:
    """The data every measurement works on."""

    source: str  # which city
    geoms: np.ndarray  # building polygons, wgs84
    rows: np.ndarray  # each building's row in parent_of
    parents: ParentArrays
    lon: np.ndarray
    lat: np.ndarray
    index: PolygonIndex | None = None
    vertex_limit: int = 300_000  # agreement checked on every vertex, or a sample this large
    _vertices: tuple[np.ndarray, str] | None = None

    def vertices(self) -> tuple[np.ndarray, str]:
        """The polygon vertices the agreement checks use (``vertex_sample``), computed once."""
        if self._vertices is None:
            self._vertices = vertex_sample(self.geoms, self.vertex_limit)
        return self._vertices


# --- data ----------------------------------------------------------------------------------


def demo_city(scale: str, seed: int, shape: str = "rect", level: int | None = None
              ) -> tuple[str, np.ndarray, np.ndarray, np.ndarray] | None:
    """Micro-grids and parent rows of the demo city, or None when it is not available."""
    try:
        from gridsvc.demo.city import generate_city
    except ImportError:
        return None
    records = generate_city(seed=seed, scale=scale, shape=shape).records
    source = f"demo city ({scale}, {shape}, seed {seed})"
    return records_polygons(source, records, level)


def records_polygons(source: str, records: list, level: int | None = None
                     ) -> tuple[str, np.ndarray, np.ndarray, np.ndarray]:
    """The polygons of ``level`` (default: the deepest level with polygons) among boundary
    records (``gridsvc.io.records.BoundaryRecord``), their rows and every record's parent row.

    Levels are resolved as the service does (number, key or name of the default hierarchy).
    """
    from gridsvc.hierarchy import load_hierarchy

    hierarchy = load_hierarchy()
    levels = [getattr(hierarchy.resolve(r.level), "level", None) for r in records]
    polygonal = [r.geometry is not None and r.geometry.geom_type in ("Polygon", "MultiPolygon")
                 and not r.geometry.is_empty for r in records]
    found = sorted({lv for lv, ok in zip(levels, polygonal, strict=True) if ok and lv})
    if not found:
        raise ValueError(f"{source}: no polygons at any level of the hierarchy")
    level = level if level is not None else found[-1]
    if level not in found:
        raise ValueError(f"{source}: no polygons at level {level} (polygon levels: {found})")
    position = {r.code: k for k, r in enumerate(records)}
    parent_of = np.array([position.get(r.parent_code, -1) if r.parent_code else -1
                          for r in records])
    rows = np.array([k for k, (lv, ok) in enumerate(zip(levels, polygonal, strict=True))
                     if ok and lv == level])
    geoms = np.array([records[k].geometry for k in rows])
    return f"{source}, level {level}", geoms, rows, parent_of


def boundary_file(path: Path, level: int | None = None
                  ) -> tuple[str, np.ndarray, np.ndarray, np.ndarray]:
    """The polygons of a boundary file in any format gridsvc imports (read as the importer
    reads it: layers, encodings, CRS to wgs84), as ``records_polygons`` gives them."""
    from gridsvc.io.boundaries import read_boundaries

    return records_polygons(str(path), read_boundaries(Path(path)).records, level)


def synthetic_city(scale: str, seed: int) -> tuple[str, np.ndarray, np.ndarray, np.ndarray]:
    """Blocks of two rows of ten adjacent rectangles (shared walls), roads between blocks.

    Parents: building -> block (grid) -> column of blocks (community) -> ten columns (street).
    """
    rng = np.random.default_rng(seed)
    cols, rows = (70, 55) if scale == "city" else (10, 10)
    per_row, block_w, block_h = 10, 240.0, 160.0
    boxes, block_of = [], []
    for c in range(cols):
        for r in range(rows):
            x0 = c * (block_w + 25.0)
            y0 = r * (block_h + 25.0)
            back_to_back = rng.random() < 0.5  # the two rows share their long wall
            row_souths = (y0 + 20.0, y0 + 32.0) if back_to_back else (y0 + 20.0, y0 + 90.0)
            for south in row_souths:
                walls = x0 + 10.0 + np.cumsum(np.r_[0.0, rng.uniform(18.0, 26.0, per_row)])
                for k in range(per_row):
                    boxes.append((walls[k], south, walls[k + 1], south + 12.0))
                    block_of.append(c * rows + r)
    b = np.array(boxes)
    lon = SYNTHETIC_ORIGIN[0] + b[:, [0, 2]] * DEG_PER_M_LON
    lat = SYNTHETIC_ORIGIN[1] + b[:, [1, 3]] * DEG_PER_M_LAT
    geoms = shapely.box(lon[:, 0], lat[:, 0], lon[:, 1], lat[:, 1])
    n_blocks, n_communities, n_streets = cols * rows, cols, -(-cols // 10)
    # Rows: streets, then communities, then blocks, then buildings.
    street_rows = np.full(n_streets, -1)
    community_rows = np.arange(n_communities) // 10
    block_rows = n_streets + np.arange(n_blocks) // rows
    building_rows = n_streets + n_communities + np.array(block_of)
    parent_of = np.concatenate([street_rows, community_rows, block_rows, building_rows])
    buildings = n_streets + n_communities + n_blocks + np.arange(len(geoms))
    return f"synthetic ({scale}, seed {seed})", geoms, buildings, parent_of


def make_case(scale: str, seed: int, n_points: int, synthetic: bool = False,
              shape: str = "rect", level: int | None = None) -> Case:
    """The demo city's polygons of ``level`` (default: the buildings) with random points."""
    city = (None if synthetic else demo_city(scale, seed, shape, level)) \
        or synthetic_city(scale, seed)
    return case_from(city, seed, n_points)


def case_from(polygons: tuple[str, np.ndarray, np.ndarray, np.ndarray], seed: int,
              n_points: int) -> Case:
    """A case of ``(source, geoms, rows, parent_of)``, points uniform over the extent."""
    source, geoms, rows, parent_of = polygons
    xmin, ymin, xmax, ymax = shapely.total_bounds(geoms)
    rng = np.random.default_rng(seed + 1)
    return Case(source=source, geoms=geoms, rows=rows, parents=ParentArrays(parent_of),
                lon=rng.uniform(xmin, xmax, n_points), lat=rng.uniform(ymin, ymax, n_points))


def vertex_sample(geoms: np.ndarray, limit: int, seed: int = 0) -> tuple[np.ndarray, str]:
    """Every distinct vertex, or a uniform sample of ``limit`` of them; and what it is."""
    vertices = np.unique(shapely.get_coordinates(geoms), axis=0)
    if len(vertices) <= limit:
        return vertices, "every polygon vertex"
    pick = np.sort(np.random.default_rng(seed).choice(len(vertices), limit, replace=False))
    return vertices[pick], f"{limit:,} of the {len(vertices):,} polygon vertices (uniform sample)"


# --- measurements --------------------------------------------------------------------------


def resident_bytes() -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    return 0


def _child_memory(wkb_path: str, rows_path: str) -> None:
    """In a fresh interpreter: resident memory before and after building the index."""
    geoms = shapely.from_wkb(np.load(wkb_path, allow_pickle=True))
    rows = np.load(rows_path)
    PolygonIndex.build(geoms[:10], rows[:10])  # load the compiled kernels first
    gc.collect()
    before = resident_bytes()
    index = PolygonIndex.build(geoms, rows)
    gc.collect()
    print(json.dumps({"before": before, "after": resident_bytes(), "len": len(index)}))


def index_resident_mb(case: Case) -> float:
    """Resident memory the index adds, measured in a fresh process (not this one's heap)."""
    with tempfile.TemporaryDirectory() as tmp:
        wkb, rows = f"{tmp}/geoms.npy", f"{tmp}/rows.npy"
        np.save(wkb, shapely.to_wkb(case.geoms), allow_pickle=True)
        np.save(rows, case.rows)
        code = (f"import sys; sys.path.insert(0, {str(Path(__file__).parent)!r}); "
                f"import bench_index; bench_index._child_memory({wkb!r}, {rows!r})")
        out = subprocess.run([sys.executable, "-c", code], check=True, capture_output=True,
                             text=True).stdout
    sizes = json.loads(out.strip().splitlines()[-1])
    return (sizes["after"] - sizes["before"]) / 2**20


def measure_build(case: Case) -> dict[str, float]:
    PolygonIndex.build(case.geoms[:10], case.rows[:10])  # load the compiled kernels
    start, cpu = time.perf_counter(), time.process_time()
    case.index = PolygonIndex.build(case.geoms, case.rows)
    seconds, cpu = time.perf_counter() - start, time.process_time() - cpu
    return {"build_s": seconds, "build_cpu_s": cpu, "array_mb": case.index.memory_bytes() / 2**20,
            "resident_mb": index_resident_mb(case), **case.index.stats()}


Timed = tuple[float, np.ndarray]  # seconds, and the row found for each point


def best_of(repeat: int, measure: Callable[[], Timed], budget_s: float = 20.0) -> Timed:
    """The fastest of ``repeat`` runs (other work on the machine only ever adds time), or of
    fewer once ``budget_s`` seconds have gone: a slow baseline is not run three times."""
    runs, start = [], time.perf_counter()
    while len(runs) < repeat and (not runs or time.perf_counter() - start < budget_s):
        runs.append(measure())
    return min(runs, key=lambda run: run[0])


def bulk_index(case: Case) -> Timed:
    case.index.locate_many(case.lon[:100_000], case.lat[:100_000])  # warm up

    def once() -> Timed:
        start = time.perf_counter()
        rows = case.index.locate_many(case.lon, case.lat)
        case.parents.chain_matrix(rows)
        return time.perf_counter() - start, rows

    return best_of(REPEAT, once)


def sjoin_matches(case: Case) -> tuple[float, np.ndarray, np.ndarray]:
    """sjoin 'intersects' of the points with the buildings: (seconds, point, building row)."""
    points = gpd.GeoDataFrame(geometry=gpd.points_from_xy(case.lon, case.lat), crs=4326)
    polys = gpd.GeoDataFrame({"row": case.rows}, geometry=case.geoms, crs=4326)
    start = time.perf_counter()
    joined = gpd.sjoin(points, polys, how="left", predicate="intersects")
    seconds = time.perf_counter() - start
    matched = joined["row"].notna().to_numpy()
    return seconds, joined.index.to_numpy()[matched], joined["row"].to_numpy()[matched]


def bulk_sjoin(case: Case) -> Timed:
    seconds, rows, _, _ = bulk_sjoin_matches(case)
    return seconds, rows


def bulk_sjoin_matches(case: Case) -> tuple[float, np.ndarray, np.ndarray, np.ndarray]:
    """The sjoin baseline's best time and first match per point, and all its (point, row)
    matches (for the agreement check, so that a slow join is not run once more)."""
    found: list[tuple[np.ndarray, np.ndarray]] = []

    def once() -> Timed:
        seconds, point, row = sjoin_matches(case)
        start = time.perf_counter()
        rows = np.full(len(case.lon), -1, dtype=np.int64)
        first = np.r_[True, point[1:] != point[:-1]]
        rows[point[first]] = row[first].astype(np.int64)
        case.parents.chain_matrix(rows)
        found[:] = [(point, row.astype(np.int64))]
        return seconds + time.perf_counter() - start, rows

    seconds, rows = best_of(REPEAT, once)
    return seconds, rows, *found[0]


BULK_BASELINES: dict[str, Callable[[Case], Timed]] = {
    "geopandas.sjoin": bulk_sjoin,
}


def median_per_call(call: Callable[[float, float], object], case: Case,
                    batches: int = 200, per_batch: int = 100) -> float:
    """Median over batches of the mean time of one call, in microseconds."""
    lon, lat = case.lon[: batches * per_batch].tolist(), case.lat[: batches * per_batch].tolist()
    for x, y in zip(lon[:per_batch], lat[:per_batch], strict=True):
        call(x, y)  # warm up
    times = []
    for b in range(batches):
        xs, ys = lon[b * per_batch:(b + 1) * per_batch], lat[b * per_batch:(b + 1) * per_batch]
        start = time.perf_counter_ns()
        for x, y in zip(xs, ys, strict=True):
            call(x, y)
        times.append((time.perf_counter_ns() - start) / per_batch / 1000)
    return statistics.median(times)


def single_index(case: Case) -> float:
    index, parents = case.index, case.parents
    return median_per_call(lambda x, y: parents.chain_rows(index.locate(x, y)), case)


def single_strtree(case: Case) -> float:
    tree, rows, parents = shapely.STRtree(case.geoms), case.rows, case.parents

    def lookup(x: float, y: float) -> list[int]:
        hits = tree.query(shapely.Point(x, y), predicate="intersects")
        return parents.chain_rows(int(rows[hits.min()]) if len(hits) else -1)

    return median_per_call(lookup, case)


def agreement(case: Case, lon: np.ndarray, lat: np.ndarray) -> dict[str, int]:
    """The index against sjoin 'intersects' (= ST_Covers) for every point."""
    sub = Case(case.source, case.geoms, case.rows, case.parents, lon, lat, case.index)
    _, point, row = sjoin_matches(sub)
    return agreement_counts(case.index.locate_many(lon, lat), point, row)


def agreement_counts(got: np.ndarray, point: np.ndarray, row: np.ndarray) -> dict[str, int]:
    """The index's answer ``got`` per point against all (point, row) matches of a baseline:
    equal where the baseline has one match or none, one of them where it has several."""
    n_matches = np.bincount(point, minlength=len(got))
    among = np.zeros(len(got), dtype=bool)  # the index's answer is one of the matches
    among[point[got[point] == row]] = True
    ok = np.where(n_matches == 0, got == -1, among)
    return {"points": len(got), "in_none": int((n_matches == 0).sum()),
            "in_one": int((n_matches == 1).sum()), "on_shared_boundary": int((n_matches > 1).sum()),
            "disagree": int((~ok).sum())}


# --- report --------------------------------------------------------------------------------


def run(scale: str, seed: int, n_points: int, synthetic: bool) -> dict[str, object]:
    case = make_case(scale, seed, n_points, synthetic)
    results: dict[str, object] = {"source": case.source, "polygons": len(case.geoms),
                                  "points": n_points, "build": measure_build(case)}
    seconds, rows = bulk_index(case)
    results["bulk"] = {"index": seconds,
                       **{name: fn(case)[0] for name, fn in BULK_BASELINES.items()}}
    results["single_us"] = {"index": single_index(case), "shapely.STRtree": single_strtree(case)}
    vertices, _ = case.vertices()
    results["agreement"] = {"random": agreement(case, case.lon, case.lat),
                            "vertices": agreement(case, vertices[:, 0], vertices[:, 1])}
    results["covered_share"] = float((rows >= 0).mean())
    return results


def print_table(results: dict[str, object]) -> None:
    build, bulk, single = results["build"], results["bulk"], results["single_us"]
    print(f"{results['source']}: {results['polygons']:,} polygons, {results['points']:,} points, "
          f"{results['covered_share']:.1%} of points covered")
    print(f"cells {build['cells']:,}, {build['candidates_per_cell']:.2f} candidates per cell, "
          f"{build['edges']:,} edges")
    rows = [("build (s)", build["build_s"], "target < 2", None),
            ("index arrays (MB)", build["array_mb"], "", None),
            ("index resident memory (MB)", build["resident_mb"], "target < 300", None)]
    for name in bulk:
        if name != "index":
            rows.append((f"bulk + chain (s) vs {name}", bulk["index"], f"{bulk[name]:.3f}",
                         bulk[name] / bulk["index"]))
    rows.append(("single + chain (us) vs shapely.STRtree", single["index"],
                 f"{single['shapely.STRtree']:.2f}", single["shapely.STRtree"] / single["index"]))
    print(f"{'measurement':<44}{'index':>10}{'baseline':>14}{'x faster':>10}")
    for label, value, baseline, ratio in rows:
        ratio_text = f"{ratio:.1f}" if ratio is not None else ""
        print(f"{label:<44}{value:>10.3f}{baseline:>14}{ratio_text:>10}")
    for name, a in results["agreement"].items():
        verdict = "OK" if a["disagree"] == 0 else "MISMATCH"
        print(f"agreement with sjoin/ST_Covers, {name} points: {a['points']:,} "
              f"(none {a['in_none']:,}, one {a['in_one']:,}, "
              f"shared boundary {a['on_shared_boundary']:,}): {a['disagree']} disagree {verdict}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--points", type=int, default=1_000_000)
    parser.add_argument("--polygons", choices=["city", "small"], default="city")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--synthetic", action="store_true",
                        help="use the synthetic city even when the demo city is available")
    parser.add_argument("--json", type=Path, help="also write the results here")
    args = parser.parse_args(argv)
    results = run(args.polygons, args.seed, args.points, args.synthetic)
    print_table(results)
    if args.json:
        args.json.write_text(json.dumps(results, indent=2, default=float))
    disagreements = sum(a["disagree"] for a in results["agreement"].values())
    return 1 if disagreements else 0


if __name__ == "__main__":
    sys.exit(main())

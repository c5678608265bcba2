"""The benchmark suite behind ``make bench``: every figure against a baseline measured in the
same run, with the issue's target and PASS/FAIL.

    python bench/run.py [--quick] [--no-postgis] [--no-http] [--no-maps] [--no-load]
                        [--only-load] [--json PATH] [--markdown PATH]
    python bench/run.py --boundaries FILE [--level N] [--points N] [--no-postgis]

1. index: build, resident memory, bulk assignment with the chain against geopandas.sjoin, single
   lookup against a shapely STRtree query (``index_figures``, measured by ``bench_index``), on
   the buildings of the demo city (rectangles, 4-5 vertices) and again, as ``index
   (organic)``, on the grids of the organic demo district (``--shape organic``: ~2,900
   outlines of a median ~1,000 vertices, traced along streets; a city whose deepest polygon
   level is the grid);
2. postgis: the same bulk assignment against a PostGIS ST_Covers join (``postgis_join``);
3. http: gunicorn on loopback, single lookups against /healthz, and batches (``http_load``);
4. maps: a street's coverage map in headless Chromium, fetched per view against the page with
   every layer inlined (``bench_maps``);
5. load: a fixed number of requests in a mix of public, staff, member and planner callers on
   the small demo city against the same number on the framework's floor, and the audit log's
   count of the personal reads (``load_mix``; ``--only-load`` runs just this, as ``make load``).

The agreement checks (the index against sjoin and PostGIS ST_Covers, on the random points and
on every building vertex) and the load test's checks (every request answered 2xx, one audit
entry per personal read) decide the exit status: 1 when any fails, else 0. Missed
speed or memory targets are printed, not fatal: machines vary. ``--quick`` runs the small demo
city with 100,000 points and short HTTP runs, as a smoke test.

``--boundaries FILE`` runs the index part alone (and the PostGIS agreement) on the polygons of
any boundary file gridsvc imports (GeoJSON, GeoPackage, Shapefile, a zip of them): the deepest
level that has polygons, or ``--level``; ``--points`` uniform random points over their extent
(default 1,000,000). A city can so measure the index on its own data before deploying.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

from figures import Report, markdown_lines, table_lines
from index_figures import Case, IndexRun, boundary_file, case_from, index_figures, make_case


@dataclass(frozen=True)
class Sizes:
    scale: str  # demo city scale
    points: int
    http_seconds: float  # per load run
    batches: int  # batches of 10,000 points per batch run
    load_requests: int  # requests of the load mix (and of its floor), on the small city
    organic_scale: str  # demo scale whose organic grids (level 3) the index is measured on


FULL = Sizes(scale="city", points=1_000_000, http_seconds=10.0, batches=10,
             load_requests=20_000, organic_scale="district")
QUICK = Sizes(scale="small", points=100_000, http_seconds=2.0, batches=2, load_requests=2_000,
              organic_scale="small")
ORGANIC_LEVEL = 3  # the grids: the organic city's deepest polygon level but for buildings
SEED = 1


def run(sizes: Sizes, postgis: bool = True, http: bool = True, maps: bool = True,
        load: bool = True, index: bool = True) -> Report:
    """The parts asked for; postgis and http need the index part's case."""
    started = time.perf_counter()
    load_average = os.getloadavg()[0]
    report = Report(title="gridsvc benchmarks" if index or maps else
                    f"gridsvc load test: the {sizes.load_requests:,}-request mix on the small "
                    f"demo city (seed {SEED})")
    if index:
        add_index(report, sizes, postgis, http)
        organic = make_case(sizes.organic_scale, SEED, sizes.points, shape="organic",
                            level=ORGANIC_LEVEL)
        add_index_case(report, organic, "index (organic)", postgis)
    if maps:
        add_maps(report, sizes)
    if load:
        add_load(report, sizes)
    report.notes.append(f"the run took {time.perf_counter() - started:.0f} s on {os.cpu_count()} "
                        f"cores; load average at its start {load_average:.1f} (other work "
                        f"on the machine slows every figure)")
    return report


def add_index(report: Report, sizes: Sizes, postgis: bool, http: bool) -> None:
    case = make_case(sizes.scale, SEED, sizes.points)
    index = index_figures(case)
    covered = index.rows >= 0
    report.title = (f"gridsvc benchmarks: {case.source}, {len(case.geoms):,} building "
                    f"micro-grids, {len(case.lon):,} uniform random points "
                    f"({covered.mean():.1%} in a building)")
    report.figures += index.figures
    report.agreements += index.agreements
    if postgis:
        add_postgis(report, case, index)
    if http:
        add_http(report, case.lon[covered], case.lat[covered], sizes)


def add_index_case(report: Report, case: Case, part: str, postgis: bool) -> IndexRun:
    """The index figures and agreement checks of one more case, labelled ``part``."""
    index = index_figures(case, part)
    report.notes.append(f"{part}: {case.source}, {len(case.geoms):,} polygons, "
                        f"{len(case.lon):,} uniform random points "
                        f"({(index.rows >= 0).mean():.1%} in a polygon)")
    report.figures += index.figures
    report.agreements += index.agreements
    if postgis:
        add_postgis(report, case, index, part.replace("index", "postgis"))
    return index


PROVINCE_POINTS = 10_000_000


def province_run(scale: str, points: int, postgis: bool) -> Report:
    """``--province`` (issue 13, item 7): the index part alone on a generated province's
    building micro-grids (``generate_city(scale="province")``: 10x the city), in memory; the
    generation's time and peak memory are given in a note."""
    import resource

    started = time.perf_counter()
    load_average = os.getloadavg()[0]
    case = make_case(scale, SEED, points)
    generated_s = time.perf_counter() - started
    report = Report(title=f"gridsvc province benchmark: {case.source}, {len(case.geoms):,} "
                          f"building micro-grids, {points:,} uniform random points")
    add_index_case(report, case, "index (province)", postgis)
    report.notes.append(f"generating the province and its points took {generated_s:.0f} s; "
                        f"this process's peak resident memory "
                        f"{resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:,.0f} MB "
                        f"(the generated city's records, the points and the baselines' "
                        f"GeoDataFrames, not the service)")
    report.notes.append(f"the run took {time.perf_counter() - started:.0f} s on "
                        f"{os.cpu_count()} cores; load average at its start {load_average:.1f}")
    return report


def boundaries_run(path: Path, level: int | None, points: int, postgis: bool) -> Report:
    """``--boundaries``: the index part alone on the polygons of a boundary file."""
    started = time.perf_counter()
    load_average = os.getloadavg()[0]
    case = case_from(boundary_file(path, level), SEED, points)
    report = Report(title=f"gridsvc index benchmark on {case.source}")
    add_index_case(report, case, "index", postgis)
    report.notes.append(f"the run took {time.perf_counter() - started:.0f} s on "
                        f"{os.cpu_count()} cores; load average at its start {load_average:.1f}")
    return report


def add_postgis(report: Report, case: Case, index: IndexRun, part: str = "postgis") -> None:
    from postgis_join import postgis_figures, server_answers

    why_not = server_answers()
    if why_not is not None:
        report.notes.append(f"PostGIS figures skipped: no PostgreSQL answers ({why_not})")
        return
    figures, agreements, notes = postgis_figures(case, index.rows, index.bulk_seconds,
                                                 part=part)
    report.figures += figures
    report.agreements += agreements
    report.notes += notes


def _measured(report: Report, what: str, measure: Callable[[], Any]) -> Any:
    """``measure()``, or None with a note: a part that fails (no server, no Chromium) is
    figures missing, not a crash."""
    try:
        return measure()
    except Exception as exc:
        traceback.print_exc()
        report.notes.append(f"{what} figures skipped: {exc}")
        return None


def add_http(report: Report, lon: np.ndarray, lat: np.ndarray, sizes: Sizes) -> None:
    from http_load import http_figures

    found = _measured(report, "HTTP", lambda: http_figures(
        lon, lat, sizes.scale, SEED, sizes.http_seconds, sizes.batches))
    if found is not None:
        report.figures += found[0]
        report.notes += found[1]


def add_maps(report: Report, sizes: Sizes) -> None:
    from bench_maps import map_figures

    scales = ("small",) if sizes.scale == "small" else ("small", "city")
    found = _measured(report, "map", lambda: map_figures(scales, SEED))
    if found is not None:
        report.figures += found[0]
        report.notes += found[1]


def add_load(report: Report, sizes: Sizes) -> None:
    from load_mix import load_test

    test = _measured(report, "load", lambda: load_test(sizes.load_requests))
    if test is not None:
        report.figures += test.figures()
        report.checks += test.checks()
        report.notes += test.notes


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true",
                        help="small city, 100,000 points, short HTTP runs (a smoke test)")
    parser.add_argument("--no-postgis", action="store_true", help="skip the PostGIS join")
    parser.add_argument("--no-http", action="store_true", help="skip the HTTP load")
    parser.add_argument("--no-maps", action="store_true",
                        help="skip the map pages in headless Chromium")
    parser.add_argument("--no-load", action="store_true",
                        help="skip the load test (a mix of callers on the small city)")
    parser.add_argument("--only-load", action="store_true",
                        help="run the load test alone (make load)")
    parser.add_argument("--json", type=Path, help="also write the figures here as JSON")
    parser.add_argument("--markdown", type=Path,
                        help="also write the figures here as a Markdown table")
    parser.add_argument("--boundaries", type=Path, metavar="FILE",
                        help="run the index figures and agreement checks on this boundary file "
                             "alone (any format gridsvc imports)")
    parser.add_argument("--level", type=int,
                        help="with --boundaries: the level to index [default: the deepest "
                             "level with polygons]")
    parser.add_argument("--points", type=int,
                        help="with --boundaries: uniform random points [default: 1,000,000]; "
                             "with --province: [default: 10,000,000]")
    parser.add_argument("--province", action="store_true",
                        help="the index figures and agreement on a generated province "
                             "(make bench-province)")
    parser.add_argument("--province-scale", default="province",
                        help="with --province: the demo scale to generate [default: "
                             "%(default)s, ~760,000 building micro-grids; city for a 10x "
                             "smaller run]")
    args = parser.parse_args(argv)
    only_load = args.only_load
    if args.boundaries:
        return finish(boundaries_run(args.boundaries, args.level, args.points or FULL.points,
                                     not args.no_postgis), args)
    if args.province:
        return finish(province_run(args.province_scale, args.points or PROVINCE_POINTS,
                                   not args.no_postgis), args)
    report = run(QUICK if args.quick else FULL, postgis=not (args.no_postgis or only_load),
                 http=not (args.no_http or only_load), maps=not (args.no_maps or only_load),
                 load=not args.no_load, index=not only_load)
    if args.quick:
        report.notes.append("quick run: the targets are for the city scale; "
                            "verdicts here are indicative only")
    return finish(report, args)


def finish(report: Report, args: argparse.Namespace) -> int:
    """Print and write the report; the exit status from its checks."""
    print("\n".join(table_lines(report)))
    for path, text in ((args.json, report.as_json()),
                       (args.markdown, "\n".join(markdown_lines(report)) + "\n")):
        if path:
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(text)
    if not report.agreement_ok:
        print("AGREEMENT CHECK FAILED: the index disagrees with the reference join", flush=True)
    if not report.checks_ok:
        print("LOAD CHECK FAILED: " + "; ".join(c.text() for c in report.checks if not c.ok),
              flush=True)
    return 0 if report.agreement_ok and report.checks_ok else 1


if __name__ == "__main__":
    sys.exit(main())

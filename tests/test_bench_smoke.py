"""Smoke test of the benchmark suite (bench/): the index part on a tiny run gives every row
with a baseline and a ratio, and the agreement checks find no disagreement. No timing is
asserted: only that the figures exist and are consistent."""

from __future__ import annotations

import importlib
import json
import math
import os
import shutil
import sys
from pathlib import Path
from types import ModuleType

import numpy as np
import pytest
import shapely
from sqlalchemy.engine import make_url

BENCH = Path(__file__).resolve().parents[1] / "bench"


def bench_module(name: str) -> ModuleType:
    if str(BENCH) not in sys.path:
        sys.path.insert(0, str(BENCH))
    return importlib.import_module(name)


@pytest.fixture(scope="module")
def tiny_run() -> tuple[object, object]:
    index_figures = bench_module("index_figures")
    case = index_figures.make_case("small", 1, 3_000)
    return case, index_figures.index_figures(case)


def test_index_part_gives_every_row_with_baseline_and_ratio(tiny_run) -> None:
    case, run = tiny_run
    rows = {(f.name, f.unit): f for f in run.figures}
    vertices = int(shapely.get_num_coordinates(case.geoms).sum())
    build = next(name for name, _ in rows if name.startswith("build"))
    assert build.startswith(f"build ({vertices:,} vertices, ") and build.endswith(" s CPU)")
    assert set(rows) == {
        (build, "s"), ("resident memory (fresh process)", "MB"),
        ("bulk: 3,000 points + chain", "s"), ("bulk: 3,000 points + chain", "points/s"),
        ("single lookup + chain, median", "us"),
    }
    for f in run.figures:
        assert f.value > 0 and f.baseline_value > 0, f
        expected = f.value / f.baseline_value if f.higher_is_better else (
            f.baseline_value / f.value)
        assert math.isclose(f.gain, expected)
    seconds, rate = rows[("bulk: 3,000 points + chain", "s")], rows[
        ("bulk: 3,000 points + chain", "points/s")]
    assert math.isclose(seconds.gain, rate.gain)  # the same comparison, both ways round
    assert math.isclose(rate.value * seconds.value, 3_000)
    assert len(run.rows) == 3_000 and run.rows.min() >= -1


def test_index_part_agrees_with_sjoin_on_points_and_vertices(tiny_run) -> None:
    case, run = tiny_run
    random, vertices = run.agreements
    assert random.points == 3_000 and random.disagree == 0
    assert random.in_none + random.in_one + random.on_shared_boundary == 3_000
    assert vertices.disagree == 0 and vertices.on_shared_boundary > 0  # neighbours share walls
    # the rows the index gave are the buildings of the case (or -1)
    assert set(run.rows[run.rows >= 0].tolist()) <= set(case.rows.tolist())


def test_boundaries_file_run_on_organic_grids_agrees_and_labels_its_source(
        tmp_path: Path, capsys) -> None:
    """``run.py --boundaries FILE --level 3`` on a written organic city: the index figures and
    both agreement checks, on the file's grids (outlines of ~1,000 vertices)."""
    from gridsvc.demo.city import generate_city, write_demo

    write_demo(generate_city(seed=2, scale="small", shape="organic"), tmp_path)
    run = bench_module("run")
    status = run.main(["--boundaries", str(tmp_path / "city.geojson"), "--level", "3",
                       "--points", "2000", "--no-postgis", "--json", str(tmp_path / "o.json")])
    out = capsys.readouterr().out
    assert status == 0
    assert f"{tmp_path / 'city.geojson'}, level 3" in out
    assert sum("0 disagree: OK" in line for line in out.splitlines()) == 2
    report = json.loads((tmp_path / "o.json").read_text())
    assert {f["part"] for f in report["figures"]} == {"index"}
    assert len(report["figures"]) == 5 and all(f["baseline_value"] > 0
                                               for f in report["figures"])
    shared = report["agreements"][1]
    assert shared["on_shared_boundary"] > 0 and shared["disagree"] == 0
    index_figures = bench_module("index_figures")
    with pytest.raises(ValueError, match="no polygons at level 5"):
        index_figures.boundary_file(tmp_path / "city.geojson", level=5)


def test_vertex_sample_is_every_vertex_or_a_labelled_sample() -> None:
    bench_index = bench_module("bench_index")
    geoms = np.array([shapely.box(120.0, 30.0, 120.1, 30.1), shapely.box(120.1, 30.0, 120.2,
                                                                          30.1)])
    every, label = bench_index.vertex_sample(geoms, 100)
    assert len(every) == 6 and label == "every polygon vertex"
    some, label = bench_index.vertex_sample(geoms, 4)
    assert len(some) == 4 and label == "4 of the 6 polygon vertices (uniform sample)"
    assert {tuple(v) for v in some} <= {tuple(v) for v in every}


def test_table_shows_each_figure_with_ratio_and_verdict(tiny_run) -> None:
    figures = bench_module("figures")
    _, run = tiny_run
    report = figures.Report("tiny", run.figures, run.agreements)
    lines = figures.table_lines(report)
    body = [line for line in lines if line.startswith("index: ")]
    assert len(body) == len(run.figures)
    for line, f in zip(body, run.figures, strict=True):
        assert f"{figures.fmt(f.gain)}x" in line
        assert line.rstrip().endswith(("PASS", "FAIL")) == (f.target is not None)
    assert sum("0 disagree: OK" in line for line in lines) == 2
    assert report.agreement_ok


def test_targets_on_value_and_on_gain() -> None:
    figures = bench_module("figures")
    slow = figures.Figure("index", "bulk", 2.0, "s", "sjoin", 6.0,
                          target=figures.Target(">=", 5.0, on_gain=True))
    fast = figures.Figure("index", "bulk", 1.0, "s", "sjoin", 6.0,
                          target=figures.Target(">=", 5.0, on_gain=True))
    small = figures.Figure("index", "memory", 250.0, "MB", "wkb", 10.0,
                           target=figures.Target("<", 300.0))
    assert (slow.gain, slow.verdict) == (3.0, "FAIL")
    assert (fast.gain, fast.verdict) == (6.0, "PASS")
    assert small.verdict == "PASS"


def test_binary_copy_round_trip() -> None:
    postgis_join = bench_module("postgis_join")
    a, b = np.array([0, 7, -1, 2**31 - 1]), np.array([5, -3, 4, -(2**31)])
    data = postgis_join.binary_copy([a, b], [">i4", ">i4"])
    assert data.startswith(b"PGCOPY\n\xff\r\n\x00")
    np.testing.assert_array_equal(postgis_join.parse_int_rows(data, 2), np.column_stack([a, b]))


def test_postgis_join_agrees_with_the_index(tiny_run, pg_admin_url: str) -> None:
    postgis_join = bench_module("postgis_join")
    # the test run's PostgreSQL (started for the run when none answers): never skipped
    admin = make_url(pg_admin_url).set(drivername="postgresql")
    server_url = admin.render_as_string(hide_password=False).rsplit("/", 1)[0]  # no database
    assert postgis_join.server_answers(server_url) is None
    case, run = tiny_run
    figures, agreements, _ = postgis_join.postgis_figures(case, run.rows, run.bulk_seconds,
                                                          server_url)
    assert [f.part for f in figures] == ["postgis"] and figures[0].baseline_value > 0
    random, vertices = agreements
    assert random.points == 3_000 and random.disagree == 0
    assert vertices.disagree == 0 and vertices.on_shared_boundary > 0
    # the same points in a building as sjoin found
    assert random.in_none == run.agreements[0].in_none


def test_load_mix_keeps_the_proportions_and_the_count() -> None:
    load_mix = bench_module("load_mix")
    calls = {kind: [load_mix.Call(kind, f"/{kind}/{i}") for i in range(3)]
             for kind in load_mix.KINDS}
    listed = load_mix.mix(calls, 1_000)
    assert len(listed) == 1_000
    counts = {kind: sum(c.kind == kind for c in listed) for kind in load_mix.KINDS}
    assert counts == {kind: k.weight * 10 for kind, k in load_mix.KINDS.items()}
    assert {c.path for c in listed if c.kind == "point"} == {"/point/0", "/point/1", "/point/2"}
    del calls["ogc_items"]  # /ogc not answering: the other kinds share the count
    assert len(load_mix.mix(calls, 7)) == 7


def test_load_mix_answers_every_request_and_audits_every_personal_read(tmp_path: Path) -> None:
    http_load, load_mix = bench_module("http_load"), bench_module("load_mix")
    from gridsvc.services import accounts
    from gridsvc.services.context import Services
    from gridsvc.settings import Settings

    database = tmp_path / "demo.sqlite"
    shutil.copy(http_load.demo_database("small", 1), database)
    test = load_mix.load_test(200, database=database, log=tmp_path / "server.log")
    assert test.mix.total == test.floor.total == 200
    assert set(test.mix.listed) >= set(load_mix.KINDS) - {"ogc_items"}
    # every request of the list answered once, all 2xx
    assert test.mix.answers == test.mix.listed and test.mix.non_2xx == {}
    assert test.floor.answers == {"floor": 200} and test.floor.non_2xx == {}
    assert test.mix.load.requests == test.floor.load.requests == 200
    # one audit entry per personal read, none for the planner's unit reads
    personal = sum(n for kind, n in test.mix.listed.items() if load_mix.KINDS[kind].personal)
    assert test.personal_reads == personal > 0
    assert test.audit_entries == personal
    assert all(c.ok for c in test.checks()) and len(test.figures()) == 3
    # the run's tokens are revoked
    svc = Services.from_settings(Settings.from_env(database_url=f"sqlite:///{database}"))
    assert not [t for t in accounts.list_tokens(svc) if t["name"].startswith("bench load")]


def test_a_failed_request_or_a_missing_audit_entry_fails_the_checks() -> None:
    figures, http_load, load_mix = (bench_module(m) for m in ("figures", "http_load",
                                                              "load_mix"))
    load = http_load.Load(requests=3, seconds=1.0, p50_ms=1.0, p99_ms=2.0, failed=1)
    run = load_mix.ListRun(load, {"point": 2, "staff_member": 2}, {"point": 2, "staff_member": 1},
                           {"point": 1})
    assert run.answered_2xx == 2
    assert run.problems() == [
        "public lookups by point: 2 of 2 answered, 1 of them not 2xx",
        "staff: single members: 1 of 2 answered, 0 of them not 2xx"]
    test = load_mix.LoadTest(floor=run, mix=run, personal_reads=2, audit_entries=1, notes=[])
    report = figures.Report("load", test.figures(), checks=test.checks())
    assert not report.checks_ok and report.agreement_ok
    lines = figures.table_lines(report)
    assert "  load: audit entries for the mix's personal reads: 1 of 2: MISMATCH" in lines
    assert "  load: mix requests answered 2xx: 2 of 4: MISMATCH" in lines


def test_server_memory_reads_the_master_and_each_child() -> None:
    """``bench/memory.py`` reads a process's RSS and each child's PSS from /proc."""
    import subprocess

    memory = bench_module("memory")
    child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)"])
    try:
        master_mb, children = memory.process_memory(os.getpid())
        assert master_mb > 10
        assert child.pid in children and 0 < children[child.pid] < master_mb
    finally:
        child.kill()
        child.wait()


def test_the_province_run_gives_the_index_figures_and_agreement() -> None:
    """``bench/run.py --province`` (make bench-province) on the small scale: the index rows,
    labelled, and both agreement checks, all agreeing."""
    run = bench_module("run")
    report = run.province_run("small", 3_000, postgis=False)
    names = [f.name for f in report.figures if f.part == "index (province)"]
    assert any(n.startswith("build") for n in names) and "single lookup + chain, median" in names
    assert len(report.agreements) == 2 and report.agreement_ok
    assert any("peak resident memory" in n for n in report.notes)

"""Boundary validation: one failing fixture per rule, repair, tolerances, stored units.

Shapes are drawn in metres in a local azimuthal equidistant frame centred at 120.9E 32.0N
(independent of gridsvc.spatial.metric) and converted to wgs84 lon/lat.
"""

from __future__ import annotations

import math
from functools import cache

import numpy as np
import pytest
import shapely
from pyproj import Transformer
from shapely.geometry import LineString, Point, Polygon, box

from gridsvc.hierarchy import DEFAULT_LEVELS, Hierarchy
from gridsvc.io.records import BoundaryRecord
from gridsvc.spatial.metric import (
    area_m2,
    metric_epsg_for,
    metric_epsg_for_geoms,
    to_metric,
    to_wgs84,
)
from gridsvc.validation.report import Report
from gridsvc.validation.rules import ExistingUnit, validate_records
from gridsvc.validation.text import format_report

LON0, LAT0 = 120.9, 32.0
HIERARCHY = Hierarchy(DEFAULT_LEVELS)


@cache
def _local_to_wgs84() -> Transformer:
    return Transformer.from_crs(f"+proj=aeqd +lat_0={LAT0} +lon_0={LON0} +datum=WGS84",
                                4326, always_xy=True)


def wgs84(geom):
    """A shape drawn in local metres, as wgs84 lon/lat."""
    tr = _local_to_wgs84()
    return shapely.transform(geom, lambda xy: np.column_stack(tr.transform(xy[:, 0], xy[:, 1])))


def mbox(x0: float, y0: float, x1: float, y1: float):
    """A box given in local metres, as a wgs84 polygon."""
    return wgs84(box(x0, y0, x1, y1))


def rec(row, code, level, parent, geom, name=None, layer=None) -> BoundaryRecord:
    return BoundaryRecord(row=row, code=code, name=name or f"unit {code}", level=level,
                          parent_code=parent, geometry=geom, layer=layer)


def clean_tree() -> list[BoundaryRecord]:
    """A street of 2 communities, each of 2 grids, each of 2 buildings that tile it exactly."""
    records = [rec(1, "S", 1, None, mbox(0, 0, 400, 200))]
    for c in range(2):
        ccode = f"S-C{c}"
        records.append(rec(len(records) + 1, ccode, 2, "S", mbox(200 * c, 0, 200 * c + 200, 200)))
        for g in range(2):
            gcode = f"{ccode}-G{g}"
            y0 = 100 * g
            records.append(rec(len(records) + 1, gcode, "grid", ccode,
                               mbox(200 * c, y0, 200 * c + 200, y0 + 100)))
            for b in range(2):
                bcode = f"{gcode}-B{b}"
                x0 = 200 * c + 100 * b
                records.append(rec(len(records) + 1, bcode, 4, gcode,
                                   mbox(x0, y0, x0 + 100, y0 + 100)))
                records.append(rec(len(records) + 1, f"{bcode}-H", 5, bcode,
                                   wgs84(Point(x0 + 50, y0 + 50))))
    return records


def grid_with(*buildings, grid=(0, 0, 100, 100)) -> list[BoundaryRecord]:
    """A grid G (level 3, parent stored community C) and buildings given as local boxes."""
    records = [rec(1, "G", 3, "C", mbox(*grid))]
    for n, b in enumerate(buildings, start=1):
        records.append(rec(n + 1, f"B{n}", 4, "G", mbox(*b)))
    return records


def nested_city(streets=(2, 1), communities=(2, 1), grids=(1, 2), buildings=(2, 1),
                cell=(40.0, 30.0), inset=0.0, households=False) -> list[BoundaryRecord]:
    """A synthetic city of nested boxes (columns, rows per level), for tests and timing.

    Every level tiles its parent exactly; buildings are the cells shrunk by ``inset`` metres
    (leaving gaps in every grid when > 0); optionally one household point per building.
    """
    sizes = [(cell[0] * buildings[0], cell[1] * buildings[1])]
    for split in (grids, communities):
        sizes.insert(0, (sizes[0][0] * split[0], sizes[0][1] * split[1]))
    splits = [streets, communities, grids, buildings]
    records: list[BoundaryRecord] = []
    parents = [("", None, 0.0, 0.0)]  # code, parent, x0, y0
    for level, (cols, rows) in enumerate(splits, start=1):
        w, h = sizes[level - 1] if level <= 3 else cell
        children = []
        for code, _, px, py in parents:
            for c in range(cols):
                for r in range(rows):
                    children.append((f"{code}{level}{c:02d}{r:02d}", code or None,
                                     px + c * w, py + r * h))
        x0 = np.array([ch[2] for ch in children])
        y0 = np.array([ch[3] for ch in children])
        pad = inset if level == 4 else 0.0
        shapes = wgs84(shapely.box(x0 + pad, y0 + pad, x0 + w - pad, y0 + h - pad))
        records += [rec(len(records) + 1, code, level, parent, g)
                    for (code, parent, _, _), g in zip(children, shapes, strict=True)]
        parents = children
    if households:
        x0 = np.array([p[2] for p in parents]) + cell[0] / 2
        y0 = np.array([p[3] for p in parents]) + cell[1] / 2
        points = wgs84(shapely.points(x0, y0))
        records += [rec(len(records) + 1, f"{code}H", 5, code, g)
                    for (code, *_), g in zip(parents, points, strict=True)]
    return records


# the stored community of grid_with's grid, with the same outline: no gap between them
STORED_COMMUNITY = {"C": ExistingUnit("C", 2, "S", mbox(0, 0, 100, 100), "社区")}


def validate(records, **kw):
    kw.setdefault("existing", STORED_COMMUNITY)
    return validate_records(records, HIERARCHY, **kw)


def only(report: Report, rule: str):
    found = [p for p in report.problems if p.rule == rule]
    assert len(found) == 1, (rule, report.problems)
    return found[0]


def rules(report: Report) -> set[str]:
    return {p.rule for p in report.problems}


# --- metric helpers -------------------------------------------------------------------------

def test_metric_zone_is_the_nearest_central_meridian():
    assert metric_epsg_for(120.9) == 4549  # CM 120E
    assert metric_epsg_for(118.6) == 4549
    assert metric_epsg_for(118.4) == 4548  # CM 117E
    assert metric_epsg_for(75.0) == 4534
    assert metric_epsg_for(135.9) == 4554
    with pytest.raises(ValueError, match="outside"):
        metric_epsg_for(10.0)


def test_area_and_round_trip_in_metres():
    square = mbox(0, 0, 100, 100)
    assert area_m2(square) == pytest.approx(10_000, rel=0.002)
    geoms = np.array([square, mbox(500, 500, 520, 530)])
    epsg = metric_epsg_for_geoms(geoms)
    metric = to_metric(geoms, epsg)
    assert shapely.area(metric) == pytest.approx([10_000, 600], rel=0.002)
    back = to_wgs84(metric, epsg)
    assert np.allclose(shapely.get_coordinates(back), shapely.get_coordinates(geoms),
                       atol=1e-9)


# --- the clean case -------------------------------------------------------------------------

def test_synthetic_city_is_clean_or_has_one_gap_per_grid():
    records = nested_city(households=True)
    assert validate_records(records, HIERARCHY).report.problems == []
    report = validate_records(nested_city(inset=5.0), HIERARCHY).report
    grids = [r.code for r in records if r.level == 3]
    assert [p.rule for p in report.problems] == ["gaps"] * len(grids)
    assert sorted(p.code for p in report.problems) == sorted(grids)
    cell, building = 40 * 30, 30 * 20
    assert [p.area_m2 for p in report.problems] == pytest.approx(
        [2 * (cell - building)] * len(grids), rel=0.01)


def test_clean_nested_tree_has_no_problems():
    records = clean_tree()
    result = validate_records(records, HIERARCHY)
    assert result.report.problems == []
    assert result.report.features == len(records) == 1 + 2 + 4 + 8 + 8
    kinds = {r.geometry.geom_type for r in result.records}
    assert kinds == {"MultiPolygon", "Point"}  # polygons normalised, households stay points


# --- attribute and tree rules ---------------------------------------------------------------

def test_missing_code_and_name():
    records = grid_with((0, 0, 100, 100))
    records[1].code = " "
    records[0].name = ""
    report = validate(records).report
    found = {(p.field, p.row) for p in report.problems if p.rule == "missing-value"}
    assert found == {("code", 2), ("name", 1)}


def test_unknown_level():
    records = grid_with((0, 0, 100, 100))
    records[1].level = "district"
    p = only(validate(records).report, "unknown-level")
    assert (p.row, p.code, p.field) == (2, "B1", "level")


def test_duplicate_code_names_the_first_row():
    records = grid_with((0, 0, 50, 100), (50, 0, 100, 100), (0, 0, 10, 10))
    records[3].code = "B1"
    p = only(validate(records).report, "duplicate-code")
    assert (p.row, p.code) == (4, "B1")
    assert "row 2" in p.message


def test_missing_parent():
    records = grid_with((0, 0, 100, 100))
    records[1].parent_code = ""
    p = only(validate(records).report, "missing-parent")
    assert (p.row, p.code, p.field) == (2, "B1", "parent_code")


def test_root_with_parent():
    records = [rec(1, "S", 1, "X", mbox(0, 0, 100, 100))]
    p = only(validate_records(records, HIERARCHY).report, "root-with-parent")
    assert (p.row, p.code, p.severity) == (1, "S", "error")


def test_unknown_parent():
    records = grid_with((0, 0, 100, 100))
    records[0].parent_code = "NOPE"
    p = only(validate(records).report, "unknown-parent")
    assert (p.row, p.code, p.other_code) == (1, "G", "NOPE")


def test_parent_at_wrong_level():
    records = grid_with((0, 0, 100, 100))
    records.append(rec(3, "B2", 4, "B1", mbox(10, 10, 20, 20)))
    p = only(validate(records).report, "parent-wrong-level")
    assert (p.row, p.code, p.other_code) == (3, "B2", "B1")


def test_parent_cycle_is_reported_once():
    records = [rec(1, "A", 2, "B", mbox(0, 0, 10, 10)), rec(2, "B", 2, "A", mbox(0, 0, 10, 10))]
    report = validate_records(records, HIERARCHY).report
    p = only(report, "parent-cycle")
    assert p.row == 1
    assert len([q for q in report.problems if q.rule == "parent-wrong-level"]) == 2


# --- geometry rules -------------------------------------------------------------------------

def test_empty_geometry():
    records = grid_with((0, 0, 100, 100), (0, 0, 1, 1))
    records[1].geometry = None
    records[2].geometry = Polygon()
    report = validate(records).report
    assert {(p.row, p.code) for p in report.problems if p.rule == "empty-geometry"} == {
        (2, "B1"), (3, "B2")}


def test_wrong_geometry_kind():
    records = grid_with((0, 0, 100, 100))
    records[1].geometry = wgs84(Point(50, 50))
    records.append(rec(3, "H", 5, "B1", mbox(40, 40, 60, 60)))
    records.append(rec(4, "G2", 3, "C", wgs84(LineString([(0, 0), (50, 0)]))))
    report = validate(records).report
    found = {(p.row, p.code) for p in report.problems if p.rule == "wrong-geometry-kind"}
    assert found == {(2, "B1"), (3, "H"), (4, "G2")}


def test_degenerate_geometries():
    records = grid_with((0, 0, 100, 100), (10, 10, 10.05, 10.05))  # 0.0025 m²
    line_ring = wgs84(Polygon([(20, 20), (30, 30), (20, 20), (20, 20)]))
    records.append(rec(4, "B3", 4, "G", line_ring))
    records.append(rec(5, "H", 5, "B1", Point(math.nan, math.nan)))
    records.append(rec(6, "B4", 4, "G", wgs84(Polygon([(40, 40), (50, 50), (60, 60)]))))
    for repair in (False, True):
        report = validate(records, repair=repair).report
        found = {(p.row, p.code) for p in report.problems if p.rule == "degenerate-geometry"}
        assert found == {(3, "B2"), (4, "B3"), (5, "H"), (6, "B4")}
        assert "invalid-geometry" not in rules(report) and report.repaired == 0
    tiny = next(p for p in report.problems if p.code == "B2")
    assert tiny.area_m2 == pytest.approx(0.0025, rel=0.03)


def bow_tie():
    """A 20 m x 20 m bow-tie: two triangles of 100 m² each touching at (10, 10)."""
    return wgs84(Polygon([(0, 0), (20, 20), (20, 0), (0, 20)]))


def test_invalid_geometry_says_where_and_suggests_repair():
    records = grid_with((0, 0, 100, 100))
    records[1].geometry = bow_tie()
    result = validate(records)
    p = only(result.report, "invalid-geometry")
    assert (p.row, p.code, p.severity) == (2, "B1", "error")
    centre = wgs84(Point(10, 10))
    assert p.location == pytest.approx((centre.x, centre.y), abs=1e-7)
    assert "Self-intersection at 120.9" in p.message and "--repair" in p.message
    assert result.report.repaired == 0
    assert result.records[1].geometry.equals(records[1].geometry)


def test_repair_fixes_a_bow_tie_and_reports_the_change():
    records = grid_with((0, 0, 100, 100))
    records[1].geometry = bow_tie()
    result = validate(records, repair=True)
    p = only(result.report, "repaired")
    assert "invalid-geometry" not in rules(result.report)
    assert (p.row, p.code) == (2, "B1")
    assert p.severity in ("warning", "info")
    assert "1 → 2 part(s)" in p.message and "Polygon → MultiPolygon" in p.message
    assert p.area_m2 == pytest.approx(200, rel=0.01)
    assert result.report.repaired == 1
    fixed = result.records[1].geometry
    assert fixed.is_valid and fixed.geom_type == "MultiPolygon" and len(fixed.geoms) == 2
    assert area_m2(fixed) == pytest.approx(200, rel=0.01)


# --- spatial rules --------------------------------------------------------------------------

def test_outside_parent_reports_the_outside_area():
    # 20 m wide building sticking 5 m out of the top: 4 m beyond the 1 m tolerance
    records = grid_with((0, 0, 100, 100), (40, 85, 60, 105))
    p = only(validate(records).report, "outside-parent")
    assert (p.row, p.code, p.other_code) == (3, "B2", "G")
    assert p.area_m2 == pytest.approx(4 * 20, rel=0.03)
    lon, lat = p.location
    assert shapely.Point(lon, lat).within(mbox(40, 100, 60, 105.01))


@pytest.mark.parametrize(("tolerance", "fails"), [(1.0, False), (0.1, True)])
def test_containment_tolerance(tolerance, fails):
    records = grid_with((0, 0, 100, 100), (40, 90, 60, 100.5))  # 0.5 m out
    report = validate(records, contain_tolerance_m=tolerance).report
    found = [p for p in report.problems if p.rule == "outside-parent"]
    if fails:
        assert [p.code for p in found] == ["B2"]
        assert found[0].area_m2 == pytest.approx(0.4 * 20, rel=0.05)
    else:
        assert found == []


def test_household_point_outside_its_building():
    records = grid_with((0, 0, 100, 100))
    records.append(rec(3, "H1", 5, "B1", wgs84(Point(50, 50))))
    records.append(rec(4, "H2", 5, "B1", wgs84(Point(50, 105))))  # 5 m north of it
    p = only(validate(records).report, "outside-parent")
    assert (p.row, p.code, p.other_code) == (4, "H2", "B1")
    assert "5.0 m outside" in p.message


def test_overlapping_siblings_reports_each_pair_once_with_the_area():
    # B1 and B2 overlap by 5 m x 100 m; B2 and B3 only share an edge
    records = grid_with((0, 0, 55, 100), (50, 0, 80, 100), (80, 0, 100, 100))
    p = only(validate(records).report, "overlapping-siblings")
    assert {p.code, p.other_code} == {"B1", "B2"}
    assert p.row in (2, 3)
    assert p.area_m2 == pytest.approx(500, rel=0.03)
    assert shapely.Point(p.location).within(mbox(50, 0, 55, 100))


def test_overlap_below_tolerance_passes():
    records = grid_with((0, 0, 50.008, 100), (50, 0, 100, 100))  # 0.8 m²
    assert "overlapping-siblings" not in rules(validate(records).report)
    report = validate(records, overlap_tolerance_m2=0.5).report
    assert only(report, "overlapping-siblings").area_m2 == pytest.approx(0.8, rel=0.05)


def test_gaps_warn_once_per_parent_with_area_and_parts():
    records = grid_with((0, 0, 30, 100), (40, 0, 70, 100), (80, 0, 100, 100))
    report = validate(records).report
    p = only(report, "gaps")
    assert (p.severity, p.row, p.code) == ("warning", 1, "G")
    assert p.area_m2 == pytest.approx(2 * 10 * 100, rel=0.03)
    assert "2 gap(s)" in p.message
    assert report.ok  # a warning only


def test_gap_minimum_area():
    records = grid_with((0, 0, 100, 95), (0, 95, 95, 100))  # a 5 m x 5 m corner uncovered
    assert "gaps" not in rules(validate(records, gap_min_m2=30).report)
    p = only(validate(records, gap_min_m2=20).report, "gaps")
    assert p.area_m2 == pytest.approx(25, rel=0.03)


def test_slivers_narrower_than_the_tolerance_are_not_gaps():
    records = grid_with((0, 0, 100, 99.7))  # a 0.3 m strip along one edge: 30 m²
    assert "gaps" not in rules(validate(records).report)
    p = only(validate(records, contain_tolerance_m=0.1).report, "gaps")
    assert p.area_m2 == pytest.approx(30, rel=0.03)


def test_childless_parents_have_no_gaps():
    assert "gaps" not in rules(validate(grid_with()).report)


# --- stored units ---------------------------------------------------------------------------

def test_stored_parent_and_sibling():
    stored = dict(STORED_COMMUNITY)
    stored["G"] = ExistingUnit("G", 3, "C", mbox(0, 0, 100, 100))
    stored["B9"] = ExistingUnit("B9", 4, "G", mbox(0, 0, 50, 100))
    stored["B8"] = ExistingUnit("B8", 4, "G", mbox(0, 0, 50, 100))  # stored pair: not ours
    records = [rec(1, "B1", 4, "G", mbox(40, 0, 100, 100))]
    report = validate(records, existing=stored).report
    assert {p.rule for p in report.errors} == {"overlapping-siblings"}  # parent G is known
    found = [p for p in report.problems if p.rule == "overlapping-siblings"]
    assert sorted((p.code, p.other_code) for p in found) == [("B1", "B8"), ("B1", "B9")]
    assert found[0].row == 1
    assert found[0].area_m2 == pytest.approx(1000, rel=0.03)


def test_stored_parent_outside_check_and_missing_parent():
    stored = dict(STORED_COMMUNITY)
    stored["G"] = ExistingUnit("G", 3, "C", mbox(0, 0, 100, 100))
    records = [rec(1, "B1", 4, "G", mbox(0, 0, 100, 110))]
    report = validate(records, existing=stored).report
    assert [p.rule for p in report.errors] == ["outside-parent"]
    assert report.errors[0].area_m2 == pytest.approx(9 * 100, rel=0.03)
    assert "unknown-parent" in rules(validate(records).report)


def test_file_record_overrides_stored_unit():
    stored = dict(STORED_COMMUNITY)
    stored["B1"] = ExistingUnit("B1", 4, "G", mbox(0, 0, 100, 100))  # the old outline
    records = grid_with((0, 0, 50, 100), (50, 0, 100, 100))
    report = validate(records, existing=stored).report
    assert report.problems == []


def test_reimported_parent_that_shrank_reports_the_stored_child():
    stored = dict(STORED_COMMUNITY)
    stored["B9"] = ExistingUnit("B9", 4, "G", mbox(50, 0, 100, 100))
    records = grid_with((0, 0, 50, 100), grid=(0, 0, 60, 100))
    p = only(validate(records, existing=stored).report, "outside-parent")
    assert (p.row, p.code, p.other_code) == (1, "G", "B9")
    assert p.area_m2 == pytest.approx(39 * 100, rel=0.03)


def test_data_outside_china_is_one_clear_error():
    records = [rec(1, "S", 1, None, box(10, 50, 10.1, 50.1))]
    p = only(validate_records(records, HIERARCHY).report, "outside-china")
    assert "longitude 10.05" in p.message


# --- the text report ------------------------------------------------------------------------

def test_format_report_lists_problems_and_summary():
    records = grid_with((0, 0, 30, 100), (40, 85, 60, 105))
    records[1].layer = "楼栋"
    report = validate(records).report
    text = format_report(report)
    lines = text.splitlines()
    assert lines[0].split() == ["severity", "rule", "where", "code", "field", "area", "m²",
                                "message"]
    assert any(line.startswith("error") and "outside-parent" in line and "B2" in line
               for line in lines)
    assert lines[-1] == "1 error, 1 warning in 3 features"

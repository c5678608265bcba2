"""Boundary import into the database: transactional, idempotent, projected and GBK files."""

from __future__ import annotations

import dataclasses

import geopandas as gpd
import pyogrio
import pytest
from api_support import ALL_CODES, B1, C2, G1, G3, S, sample_records
from shapely.geometry import box
from sqlalchemy import func, select

from gridsvc.access import cli_principal
from gridsvc.services import boundaries as svc_boundaries
from gridsvc.services import tree
from gridsvc.services.context import Services
from gridsvc.storage import units as q
from gridsvc.storage.models import Unit

pytestmark = pytest.mark.storage


@pytest.fixture
def svc(settings):
    services = Services.from_settings(settings)
    yield services
    services.close()


def snapshot(svc: Services) -> dict[str, tuple]:
    with svc.db.session() as s:
        rows = s.execute(select(Unit.code, Unit.name, Unit.path, Unit.version)).all()
        return {code: (name, path, version) for code, name, path, version in rows}


def boundaries_revision(svc: Services) -> int:
    with svc.db.session() as s:
        return q.revision(s, svc_boundaries.BOUNDARIES)


def test_import_then_reimport_changes_nothing(svc):
    first = svc_boundaries.import_records(svc, sample_records(), viewer=cli_principal())
    assert first.report.ok and first.stored and first.created == len(ALL_CODES)
    before, rev = snapshot(svc), boundaries_revision(svc)
    again = svc_boundaries.import_records(svc, sample_records(), viewer=cli_principal())
    assert (again.created, again.updated, again.unchanged) == (0, 0, len(ALL_CODES))
    assert snapshot(svc) == before and boundaries_revision(svc) == rev
    assert before[B1][1] == f"/{S}/{ALL_CODES[1]}/{G1}/{B1}/"


def test_changed_unit_gets_a_new_version_and_revision(svc):
    svc_boundaries.import_records(svc, sample_records(), viewer=cli_principal())
    rev = boundaries_revision(svc)
    records = sample_records()
    records[3] = dataclasses.replace(records[3], name="阳光一网格(改)")
    outcome = svc_boundaries.import_records(svc, records, viewer=cli_principal())
    assert outcome.updated == 1 and outcome.unchanged == len(ALL_CODES) - 1
    after = snapshot(svc)
    assert after[G1][0] == "阳光一网格(改)" and after[G1][2] == 2
    assert boundaries_revision(svc) == rev + 1


def test_invalid_file_stores_nothing(svc):
    svc_boundaries.import_records(svc, sample_records(), viewer=cli_principal())
    before = snapshot(svc)
    records = sample_records()
    # a new grid overlapping G1, and a renamed street: nothing of either may be stored
    records[0] = dataclasses.replace(records[0], name="改名街道")
    records.append(dataclasses.replace(records[3], row=10, code=G1 + "9",
                                       geometry=box(120.901, 32.001, 120.902, 32.0015)))
    outcome = svc_boundaries.import_records(svc, records, viewer=cli_principal())
    assert not outcome.report.ok and not outcome.stored
    assert {p.rule for p in outcome.report.errors} == {"overlapping-siblings"}
    assert snapshot(svc) == before


def test_failure_half_way_leaves_database_as_it_was(svc, monkeypatch):
    svc_boundaries.import_records(svc, sample_records(), viewer=cli_principal())
    before, rev = snapshot(svc), boundaries_revision(svc)
    records = [dataclasses.replace(r, name=r.name + "新") for r in sample_records()]
    extra = dataclasses.replace(records[6], row=20, code=G1 + "77",
                                geometry=box(120.9022, 32.0005, 120.9027, 32.0010))
    records.append(extra)

    def explode(*_args, **_kwargs):
        raise RuntimeError("disk full")

    # every unit is written (updates and the insert) before the revision is bumped
    monkeypatch.setattr(svc_boundaries.q, "bump_revision", explode)
    with pytest.raises(RuntimeError, match="disk full"):
        svc_boundaries.import_records(svc, records, viewer=cli_principal())
    assert snapshot(svc) == before and boundaries_revision(svc) == rev


def test_moving_a_grid_moves_its_subtree_paths(svc):
    svc_boundaries.import_records(svc, sample_records(), viewer=cli_principal())
    records = sample_records()
    # G1 (with its buildings and household) moves from C1 to C2; C2 grows to hold it
    by_code = {r.code: r for r in records}
    top_left = box(120.900, 32.002, 120.903, 32.004)
    by_code[C2].geometry = box(120.900, 32.000, 120.906, 32.004).difference(top_left)
    by_code[ALL_CODES[1]].geometry = top_left
    by_code[G1].parent_code = C2
    outcome = svc_boundaries.import_records(svc, [by_code[c] for c in (C2, ALL_CODES[1], G1)],
        viewer=cli_principal())
    assert outcome.stored, outcome.report.as_dict()
    paths = {c: p for c, (_n, p, _v) in snapshot(svc).items()}
    assert paths[G1] == f"/{S}/{C2}/{G1}/"
    assert paths[B1] == f"/{S}/{C2}/{G1}/{B1}/"
    assert paths[ALL_CODES[-1]].startswith(f"/{S}/{C2}/{G1}/{B1}/")
    assert {v.props["code"] for v in tree.subtree(svc, C2, with_geometry=False,
        viewer=cli_principal())} >= {G1, G3, B1}


def test_projected_cgcs2000_geopackage_import(svc, tmp_path):
    records = sample_records()[:6]
    frame = gpd.GeoDataFrame(
        {"编码": [r.code for r in records], "名称": [r.name for r in records],
         "级别": [r.level for r in records], "上级编码": [r.parent_code for r in records]},
        geometry=[r.geometry for r in records], crs="EPSG:4490",
    ).to_crs("EPSG:4549")
    path = tmp_path / "planner.gpkg"
    frame.to_file(path, layer="grids", driver="GPKG")
    outcome = svc_boundaries.import_file(svc, path, viewer=cli_principal())
    assert outcome.stored and outcome.created == 6, outcome.report.as_dict()
    stored = {v.props["code"]: v.geometry for v in tree.subtree(svc, S, viewer=cli_principal())}
    for r in records:
        assert stored[r.code].equals_exact(r.geometry.normalize(), 1e-7) or \
            stored[r.code].symmetric_difference(r.geometry).area < 1e-12


def test_gbk_shapefile_without_cpg_import(svc, tmp_path):
    path = tmp_path / "streets.shp"
    frame = gpd.GeoDataFrame(
        {"编码": ["320602001", "320602002"], "名称": ["和平桥街道", "城东街道"], "级别": [1, 1],
         "负责人": ["王建国", "刘芳"]},
        geometry=[box(120.8, 31.9, 120.9, 32.0), box(120.9, 31.9, 121.0, 32.0)], crs="EPSG:4326",
    )
    pyogrio.write_dataframe(frame, path, encoding="GBK")
    path.with_suffix(".cpg").unlink()
    outcome = svc_boundaries.import_file(svc, path, viewer=cli_principal())
    assert outcome.stored, outcome.report.as_dict()
    names = {v.props["code"]: (v.props["name"], v.props["leader"])
             for v in tree.list_units(svc, level=1, viewer=cli_principal()).items}
    assert names == {"320602001": ("和平桥街道", "王建国"), "320602002": ("城东街道", "刘芳")}


def test_dry_run_validates_only(svc):
    outcome = svc_boundaries.import_records(svc, sample_records(), dry_run=True,
        viewer=cli_principal())
    assert outcome.report.ok and not outcome.stored
    with svc.db.session() as s:
        assert s.scalar(select(func.count()).select_from(Unit)) == 0


def test_export_and_reimport_round_trip(svc, tmp_path):
    svc_boundaries.import_records(svc, sample_records(), viewer=cli_principal())
    for fmt, name in (("geojson", "t.geojson"), ("gpkg", "t.gpkg"), ("shp", "t.zip")):
        count = svc_boundaries.export_tree(svc, tmp_path / name, fmt, viewer=cli_principal())
        assert count == len(ALL_CODES)
        again = svc_boundaries.import_file(svc, tmp_path / name, viewer=cli_principal())
        assert again.report.ok and (again.created, again.updated) == (0, 0), fmt

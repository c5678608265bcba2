"""Reading and writing boundary files: formats, CRS, encodings, column names, bad rows."""

from __future__ import annotations

import json
import zipfile
from pathlib import Path

import geopandas as gpd
import pandas as pd
import pyogrio
import pytest
import shapely
from pyproj import Geod, Transformer
from shapely.geometry import MultiPolygon, Point, Polygon, box

from gridsvc.io.boundaries import BoundaryFileError, read_boundaries, write_records
from gridsvc.io.records import BoundaryRecord
from gridsvc.spatial.crs import parse_crs

LAYER_NAMES = {1: "level1_street", 2: "level2_community", 3: "level3_grid",
               4: "level4_building", 5: "level5_household"}


def sample_records() -> list[BoundaryRecord]:
    """A small tree with Chinese text, leading-zero codes, a two-part street, a hole and a
    household point with a service area."""
    street = MultiPolygon([box(120.80, 31.90, 120.90, 32.00), box(120.95, 31.90, 121.00, 31.95)])
    community = Polygon(box(120.80, 31.90, 120.85, 31.95).exterior.coords,
                        [box(120.81, 31.91, 120.82, 31.92).exterior.coords])
    grid = box(120.8301234, 31.9301234, 120.8405678, 31.9405678)
    building = box(120.831, 31.931, 120.8312345, 31.9311111)
    home = Point(120.8311, 31.9310512)
    area = box(120.8309, 31.9309, 120.8313, 31.9312)
    return [
        BoundaryRecord(1, "0320602001", "崇川区和平桥街道", 1, None, street, leader="王建国",
                       phone="0513-85000000", households=12000),
        BoundaryRecord(2, "0320602001001", "阳光社区", 2, "0320602001", community,
                       households=3200, properties={"备注": "含公园", "floors": 6}),
        BoundaryRecord(3, "0320602001001G01", "阳光小区网格党支部", 3, "0320602001001", grid,
                       leader="李梅", phone="13800000001"),
        BoundaryRecord(4, "0320602001001G01B03", "3栋", 4, "0320602001001G01", building,
                       leader="张三", households=64, address="幸福路88号阳光小区3栋"),
        BoundaryRecord(5, "0320602001001G01B03H1", "党员中心户 赵六", 5, "0320602001001G01B03",
                       home, leader="赵六", households=10, service_area=area,
                       address="幸福路88号阳光小区3栋1单元101室"),
    ]


def assert_same(read: list[BoundaryRecord], expected: list[BoundaryRecord]) -> None:
    by_code = {r.code: r for r in read}
    assert sorted(by_code) == sorted(r.code for r in expected)
    for want in expected:
        got = by_code[want.code]
        for name in ("name", "level", "parent_code", "leader", "phone", "households",
                     "address", "properties"):
            assert getattr(got, name) == getattr(want, name), (want.code, name)
        for name in ("geometry", "service_area"):
            a, b = getattr(got, name), getattr(want, name)
            if b is None:
                assert a is None, (want.code, name)
                continue
            assert a.geom_type == b.geom_type, (want.code, name)
            assert shapely.normalize(a).equals_exact(shapely.normalize(b), 1e-7), (want.code, name)


def write_frame(frame: gpd.GeoDataFrame, path: Path, **options) -> Path:
    pyogrio.write_dataframe(frame, path, **options)
    return path


def errors(result) -> list:
    return [p for p in result.problems if p.severity == "error"]


# --- round trips -------------------------------------------------------------------------------


@pytest.mark.parametrize("suffix", [".geojson", ".gpkg", ".zip"])
def test_round_trip(tmp_path: Path, suffix: str) -> None:
    records = sample_records()
    written = write_records(records, tmp_path / f"tree{suffix}", layer_names=LAYER_NAMES)
    result = read_boundaries(written)
    assert result.problems == []
    assert result.source_crs == "EPSG:4326"
    assert_same(result.records, records)


def test_layers_per_level(tmp_path: Path) -> None:
    gpkg = write_records(sample_records(), tmp_path / "tree.gpkg", layer_names=LAYER_NAMES)
    assert [name for name, _ in pyogrio.list_layers(gpkg)] == list(LAYER_NAMES.values())
    shp = write_records(sample_records(), tmp_path / "tree.shp")
    assert shp.suffix == ".zip"
    names = zipfile.ZipFile(shp).namelist()
    assert "level5.shp" in names and "level5_service_area.shp" in names
    assert "level1.cpg" in names
    assert pyogrio.read_info(f"/vsizip/{shp}/level2.shp")["fields"].tolist()[:4] == [
        "code", "name", "level", "parent_cod"]


def test_geojson_is_one_utf8_feature_collection(tmp_path: Path) -> None:
    path = write_records(sample_records(), tmp_path / "tree.json")
    data = json.loads(path.read_text(encoding="utf-8"))
    assert data["type"] == "FeatureCollection"
    kinds = {f["geometry"]["type"] for f in data["features"]}
    assert kinds == {"MultiPolygon", "Polygon", "Point"}
    assert data["features"][1]["properties"]["name"] == "阳光社区"


# --- CRS ---------------------------------------------------------------------------------------


def test_projected_cgcs2000_geopackage_reads_as_lonlat(tmp_path: Path) -> None:
    to_gk = Transformer.from_crs("EPSG:4490", "EPSG:4549", always_xy=True)
    corners = [(120.90, 32.00), (120.91, 32.00), (120.91, 32.01), (120.90, 32.01)]
    grid = Polygon([to_gk.transform(lon, lat) for lon, lat in corners])
    # Independent of PROJ's projection code: on the central meridian 120E, Gauss-Krüger x is
    # the false easting and y the meridian arc length (scale 1), here from a geodesic.
    arc = Geod(ellps="GRS80").inv(120.0, 0.0, 120.0, 32.0)[2]
    frame = gpd.GeoDataFrame(
        {"code": ["G1", "P1"], "name": ["网格一", "中心户"], "level": [3, 5],
         "parent_code": ["C1", "G1"]},
        geometry=[grid, Point(500000.0, arc)], crs="EPSG:4549")
    result = read_boundaries(write_frame(frame, tmp_path / "gk.gpkg", layer="grids"))
    assert errors(result) == []
    assert result.source_crs == "EPSG:4549"
    assert result.layers == ["grids"]
    grid_read, point_read = result.records
    for (x, y), (lon, lat) in zip(grid_read.geometry.exterior.coords, corners, strict=False):
        assert x == pytest.approx(lon, abs=1e-6) and y == pytest.approx(lat, abs=1e-6)
    assert point_read.geometry.x == pytest.approx(120.0, abs=1e-6)
    assert point_read.geometry.y == pytest.approx(32.0, abs=1e-6)


def shapefile(tmp_path: Path, name: str, columns: dict, geoms: list, crs: str | None,
              encoding: str = "UTF-8", keep_cpg: bool = True) -> Path:
    path = tmp_path / f"{name}.shp"
    frame = gpd.GeoDataFrame(columns, geometry=geoms, crs=crs)
    pyogrio.write_dataframe(frame, path, encoding=encoding)
    if not keep_cpg:
        path.with_suffix(".cpg").unlink()
    return path


@pytest.mark.filterwarnings("ignore:'crs' was not provided")
def test_file_without_crs_is_refused_unless_crs_given(tmp_path: Path) -> None:
    to_gk = Transformer.from_crs("EPSG:4490", "EPSG:4549", always_xy=True)
    x, y = to_gk.transform(120.9, 32.0)
    path = shapefile(tmp_path, "nocrs", {"code": ["A"], "name": ["甲"], "level": [4]},
                     [box(x, y, x + 20, y + 20)], crs=None)
    assert not path.with_suffix(".prj").exists()
    refused = read_boundaries(path)
    assert refused.records == []
    [problem] = errors(refused)
    assert problem.rule == "missing-crs" and "--crs" in problem.message
    for option in ("EPSG:4549", "4549"):
        result = read_boundaries(path, crs=option)
        assert errors(result) == [] and result.source_crs == "EPSG:4549"
        assert result.records[0].geometry.bounds[0] == pytest.approx(120.9, abs=1e-6)
    wrong = read_boundaries(path, crs="wgs84")  # projected metres read as degrees
    [problem] = errors(wrong)
    assert (problem.rule, problem.row, problem.field) == ("outside-china", 1, "geometry")
    assert "--crs" in problem.message and wrong.records == []


def test_parse_crs_forms() -> None:
    assert parse_crs("wgs84").to_epsg() == 4326
    assert parse_crs("CGCS2000").to_epsg() == 4490
    assert parse_crs("epsg:4549").to_epsg() == 4549
    assert parse_crs(" 4513 ").to_epsg() == 4513
    with pytest.raises(ValueError, match="EPSG code"):
        parse_crs("gauss")


# --- encodings ---------------------------------------------------------------------------------


def gbk_shapefile(tmp_path: Path) -> Path:
    """A planner's Shapefile: Chinese column names and values in GBK, no .cpg."""
    return shapefile(
        tmp_path, "gbk",
        {"编码": ["320602001", "320602002"], "名称": ["和平桥街道", "城东街道"],
         "级别": [1, 1], "负责人": ["王建国", "刘芳"]},
        [box(120.8, 31.9, 120.9, 32.0), box(120.9, 31.9, 121.0, 32.0)], crs="EPSG:4326",
        encoding="GBK", keep_cpg=False)


@pytest.mark.parametrize("encoding", [None, "gbk", "GB18030", "936"])
def test_gbk_shapefile_without_cpg(tmp_path: Path, encoding: str | None) -> None:
    path = gbk_shapefile(tmp_path)
    assert not path.with_suffix(".cpg").exists()
    result = read_boundaries(path, encoding=encoding)
    assert result.problems == []
    assert [(r.code, r.name, r.leader) for r in result.records] == [
        ("320602001", "和平桥街道", "王建国"), ("320602002", "城东街道", "刘芳")]


def gbk_english_columns(tmp_path: Path) -> Path:
    return shapefile(
        tmp_path, "gbk_en", {"code": ["A1", "A2"], "name": ["Plaza", "阳光小区"], "level": [4, 4]},
        [box(120.8, 31.9, 120.81, 31.91), box(120.81, 31.9, 120.82, 31.91)],
        crs="EPSG:4326", encoding="GBK", keep_cpg=False)


def test_explicit_utf8_on_gbk_file_names_row_and_field(tmp_path: Path) -> None:
    result = read_boundaries(gbk_english_columns(tmp_path), encoding="utf-8")
    [problem] = errors(result)
    assert (problem.rule, problem.row, problem.field) == ("bad-encoding", 2, "name")
    assert "--encoding gbk" in problem.message


def test_gbk_read_as_latin1_is_reported_garbled(tmp_path: Path) -> None:
    result = read_boundaries(gbk_english_columns(tmp_path), encoding="latin1")
    [problem] = errors(result)
    assert (problem.rule, problem.row, problem.field) == ("garbled-text", 2, "name")
    assert "--encoding gbk" in problem.message
    chinese_columns = read_boundaries(gbk_shapefile(tmp_path), encoding="latin1")
    assert any(p.rule == "garbled-text" and "column names" in p.message
               for p in errors(chinese_columns))


def test_utf8_text_declared_gbk_is_reported(tmp_path: Path) -> None:
    path = shapefile(tmp_path, "u8", {"code": ["A"], "name": ["阳光小区"], "level": [4]},
                     [box(120.8, 31.9, 120.81, 31.91)], crs="EPSG:4326", keep_cpg=False)
    assert read_boundaries(path).records[0].name == "阳光小区"  # detected as UTF-8
    wrong = read_boundaries(path, encoding="gbk")
    assert any(p.rule == "garbled-text" and "--encoding utf-8" in p.message
               for p in errors(wrong))


def test_cpg_wins_over_option(tmp_path: Path) -> None:
    path = shapefile(tmp_path, "cpg", {"code": ["A"], "name": ["阳光小区"], "level": [4]},
                     [box(120.8, 31.9, 120.81, 31.91)], crs="EPSG:4326", encoding="GBK")
    result = read_boundaries(path, encoding="utf-8")
    assert errors(result) == [] and result.records[0].name == "阳光小区"
    assert [p.rule for p in result.problems] == ["encoding-ignored"]


def test_garbled_geojson_text(tmp_path: Path) -> None:
    mojibake = "阳光小区".encode("gbk").decode("latin1")
    frame = gpd.GeoDataFrame({"code": ["A", "B"], "name": ["好", mojibake], "level": [4, 4]},
                             geometry=[box(120.8, 31.9, 120.81, 31.91)] * 2, crs="EPSG:4326")
    result = read_boundaries(write_frame(frame, tmp_path / "m.geojson"))
    [problem] = errors(result)
    assert (problem.rule, problem.row, problem.field) == ("garbled-text", 2, "name")


# --- columns -----------------------------------------------------------------------------------


def test_chinese_and_truncated_column_names(tmp_path: Path) -> None:
    frame = gpd.GeoDataFrame(
        {"编码": ["G01"], "名称": ["阳光网格"], "层级": ["grid"], "PARENT_COD": ["C01"],
         "楼栋长": ["张三"], "联系电话": ["13800000000"], "住户数": ["420"],
         "标准地址": ["幸福路88号"], "备注": ["新建"]},
        geometry=[box(120.8, 31.9, 120.81, 31.91)], crs="EPSG:4326")
    [record] = read_boundaries(write_frame(frame, tmp_path / "cn.geojson")).records
    assert (record.code, record.name, record.level, record.parent_code, record.leader,
            record.phone, record.households, record.address) == (
        "G01", "阳光网格", "grid", "C01", "张三", "13800000000", 420, "幸福路88号")
    assert record.properties == {"备注": "新建"}


@pytest.mark.filterwarnings("ignore::RuntimeWarning")
def test_utf8_dbf_names_cut_mid_character(tmp_path: Path) -> None:
    # GDAL cuts 网格编码 / 网格名称 to 10 UTF-8 bytes, leaving half a character.
    path = shapefile(tmp_path, "cut", {"网格编码": ["G01"], "网格名称": ["阳光网格"],
                                       "level": [3], "parent_code": ["C01"]},
                     [box(120.8, 31.9, 120.81, 31.91)], crs="EPSG:4326", keep_cpg=False)
    result = read_boundaries(path)
    assert result.problems == []
    [record] = result.records
    assert (record.code, record.name, record.parent_code) == ("G01", "阳光网格", "C01")


def test_explicit_field_map(tmp_path: Path) -> None:
    frame = gpd.GeoDataFrame(
        {"GRID_ID": ["G01"], "GRID_NM": ["阳光网格"], "LVL": [3], "UP": ["C01"],
         "code": ["ignored"]},
        geometry=[box(120.8, 31.9, 120.81, 31.91)], crs="EPSG:4326")
    path = write_frame(frame, tmp_path / "map.gpkg")
    field_map = {"code": "GRID_ID", "name": "grid_nm", "level": "LVL", "parent_code": "UP"}
    [record] = read_boundaries(path, field_map=field_map).records
    assert (record.code, record.name, record.level, record.parent_code) == (
        "G01", "阳光网格", 3, "C01")
    assert record.properties == {"code": "ignored"}
    with pytest.raises(BoundaryFileError, match="unknown schema fields"):
        read_boundaries(path, field_map={"colour": "X"})


def test_missing_required_column(tmp_path: Path) -> None:
    frame = gpd.GeoDataFrame({"编码": ["G01"], "级别": [3], "title": ["x"]},
                             geometry=[box(120.8, 31.9, 120.81, 31.91)], crs="EPSG:4326")
    result = read_boundaries(write_frame(frame, tmp_path / "noname.geojson"))
    assert result.records == []
    [problem] = result.problems
    assert (problem.rule, problem.field) == ("missing-column", "name")
    assert problem.layer == "noname.geojson"
    assert "编码, 级别, title" in problem.message


def test_numeric_codes_keep_their_digits(tmp_path: Path) -> None:
    path = shapefile(
        tmp_path, "num", {"code": pd.array([320602001001], dtype="int64"),
                          "parent_cod": [3.20602001e8], "name": ["社区"], "level": [2.0]},
        [box(120.8, 31.9, 120.81, 31.91)], crs="EPSG:4326")
    [record] = read_boundaries(path).records
    assert (record.code, record.parent_code, record.level) == ("320602001001", "320602001", 2)


# --- rows and archives -------------------------------------------------------------------------


def test_row_problems_carry_row_and_field(tmp_path: Path) -> None:
    frame = gpd.GeoDataFrame(
        {"code": ["A", "", "C", "D", "E"], "name": ["甲", "乙", " ", "丁", "戊"],
         "level": [4] * 5, "households": ["12", "3", "4", "-3", "2.5"]},
        geometry=[box(120.8, 31.9, 120.81, 31.91)] * 4 + [None], crs="EPSG:4326")
    result = read_boundaries(write_frame(frame, tmp_path / "rows.geojson"))
    assert [r.code for r in result.records] == ["A"]
    assert result.records[0].households == 12
    found = {(p.row, p.field, p.rule) for p in result.problems}
    assert found == {
        (2, "code", "missing-value"), (3, "name", "missing-value"),
        (4, "households", "bad-value"), (5, "households", "bad-value"),
        (5, "geometry", "missing-value")}
    assert all(p.layer == "rows.geojson" and p.severity == "error" for p in result.problems)


@pytest.mark.parametrize("member", ["../evil.shp", "/tmp/evil.shp", "a/../../evil.geojson"])
def test_zip_with_escaping_member_is_refused(tmp_path: Path, member: str) -> None:
    archive = tmp_path / "evil.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        zf.writestr("ok.geojson", '{"type": "FeatureCollection", "features": []}')
        zf.writestr(member, "x")
    with pytest.raises(BoundaryFileError, match="outside the archive"):
        read_boundaries(archive)
    assert not (tmp_path.parent / "evil.shp").exists()


def test_zip_with_geojson_in_a_folder(tmp_path: Path) -> None:
    source = write_records(sample_records()[:2], tmp_path / "two.geojson")
    archive = tmp_path / "two.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        zf.write(source, "export/two.geojson")
        zf.writestr("__MACOSX/export/._two.geojson", "junk")
    result = read_boundaries(archive)
    assert result.layers == ["export/two.geojson"]
    assert_same(result.records, sample_records()[:2])


def test_unsupported_or_missing_file(tmp_path: Path) -> None:
    with pytest.raises(BoundaryFileError, match="no such file"):
        read_boundaries(tmp_path / "none.gpkg")
    (tmp_path / "a.kml").write_text("x")
    with pytest.raises(BoundaryFileError, match="unsupported"):
        read_boundaries(tmp_path / "a.kml")

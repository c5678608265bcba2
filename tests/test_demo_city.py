"""The demo city generator: deterministic, nested, topologically clean, with its features."""

from __future__ import annotations

import csv
import json
import re
from collections import Counter, defaultdict
from pathlib import Path

import numpy as np
import pytest
import shapely
from shapely.geometry import Point

from gridsvc.demo.city import SHAPES, DemoCity, generate_city, write_demo
from gridsvc.demo.gazetteer import COLUMNS
from gridsvc.hierarchy import load_hierarchy
from gridsvc.io.records import BoundaryRecord
from gridsvc.validation.rules import validate_records
from gridsvc.validation.text import format_report

TINY = 1e-7  # degrees, about 1 cm: the rounding of the coordinates


@pytest.fixture(scope="module", params=SHAPES)
def city(request: pytest.FixtureRequest) -> DemoCity:
    """The small city with either shape of cell: every test of the tree holds for both."""
    return generate_city(seed=1, scale="small", shape=request.param)


@pytest.fixture(scope="module")
def rect_city() -> DemoCity:
    return generate_city(seed=1, scale="small")


def by_level(city: DemoCity, level: int) -> list[BoundaryRecord]:
    return [r for r in city.records if r.level == level]


def geoms(records: list[BoundaryRecord]) -> np.ndarray:
    return np.array([r.geometry for r in records], dtype=object)


def test_same_seed_same_bytes_other_seed_other_city(tmp_path: Path, city: DemoCity) -> None:
    write_demo(city, tmp_path / "a")
    write_demo(generate_city(seed=1, scale="small", shape=city.shape), tmp_path / "b")
    write_demo(generate_city(seed=2, scale="small", shape=city.shape), tmp_path / "c")
    for name in ("city.geojson", "gazetteer.csv"):
        first = (tmp_path / "a" / name).read_bytes()
        assert first == (tmp_path / "b" / name).read_bytes()
        assert first != (tmp_path / "c" / name).read_bytes()


def test_shipped_demo_is_what_seed_1_makes(tmp_path: Path, rect_city: DemoCity) -> None:
    shipped = Path(__file__).resolve().parents[1] / "boundaries" / "demo"
    write_demo(rect_city, tmp_path)
    for name in ("city.geojson", "gazetteer.csv"):
        assert (shipped / name).read_bytes() == (tmp_path / name).read_bytes(), (
            f"boundaries/demo/{name} is stale: regenerate it (see boundaries/demo/README.md)")


def test_small_city_counts(city: DemoCity) -> None:
    counts = Counter(r.level for r in city.records)
    assert counts[1] == 3
    assert counts[2] == 12
    assert 50 <= counts[3] <= 70
    assert 500 <= counts[4] <= 750
    assert counts[4] <= counts[5] <= 3 * counts[4]
    assert set(counts) == {1, 2, 3, 4, 5}


def test_codes_rows_and_parents(city: DemoCity) -> None:
    assert [r.row for r in city.records] == list(range(1, len(city.records) + 1))
    assert all(r.layer is None for r in city.records)
    by_code = {r.code: r for r in city.records}
    assert len(by_code) == len(city.records)
    code_length = {1: 9, 2: 12, 3: 15, 4: 18, 5: 20}
    for r in city.records:
        assert re.fullmatch(r"\d+", r.code) and len(r.code) == code_length[r.level], r.code
        if r.level == 1:
            assert r.parent_code is None and r.code.startswith("320602")
            continue
        parent = by_code[r.parent_code]
        assert parent.level == r.level - 1
        assert parent.row < r.row
        assert r.code.startswith(parent.code)


def test_names_unique_within_parent_and_compounds_within_city(city: DemoCity) -> None:
    names_by_parent = Counter((r.parent_code, r.name) for r in city.records)
    assert max(names_by_parent.values()) == 1
    compounds = [r.name for r in by_level(city, 3)]
    assert len(set(compounds)) == len(compounds)


def test_geometry_kinds_and_validity(city: DemoCity) -> None:
    kinds = {1: {"Polygon", "MultiPolygon"}, 2: {"Polygon"}, 3: {"Polygon"}, 4: {"Polygon"},
             5: {"Point"}}
    for r in city.records:
        assert r.geometry.geom_type in kinds[r.level], r.where
        assert r.geometry.is_valid, r.where
        for polygon in getattr(r.geometry, "geoms", [r.geometry]) if r.level < 5 else []:
            assert polygon.exterior.is_ccw, r.where  # RFC 7946 ring orientation
            assert not any(ring.is_ccw for ring in polygon.interiors), r.where
        lon, lat = r.geometry.centroid.x, r.geometry.centroid.y
        assert 120.7 < lon < 121.0 and 31.9 < lat < 32.1, r.where  # wgs84 around Nantong


def test_every_child_inside_its_parent(city: DemoCity) -> None:
    by_code = {r.code: r for r in city.records}
    children = [r for r in city.records if r.parent_code]
    parents = geoms([by_code[r.parent_code] for r in children])
    inside = shapely.covered_by(geoms(children), shapely.buffer(parents, TINY))
    assert inside.all(), [children[i].where for i in np.flatnonzero(~inside)][:5]


def test_siblings_do_not_overlap_and_communities_tile_their_street(city: DemoCity) -> None:
    by_parent: dict[str | None, list[BoundaryRecord]] = defaultdict(list)
    for r in city.records:
        if r.level <= 3:
            by_parent[r.parent_code].append(r)
    for siblings in by_parent.values():
        union_area = shapely.union_all(geoms(siblings)).area
        assert union_area == pytest.approx(shapely.area(geoms(siblings)).sum(), rel=1e-9)
    for street in by_level(city, 1):
        communities = shapely.union_all(geoms(by_parent[street.code]))
        assert communities.symmetric_difference(street.geometry).area < 1e-12


def test_buildings_of_a_grid_do_not_overlap_and_some_share_walls(city: DemoCity) -> None:
    buildings: dict[str, list[BoundaryRecord]] = defaultdict(list)
    for r in by_level(city, 4):
        buildings[r.parent_code].append(r)
    shared_walls = 0
    for members in buildings.values():
        shapes = geoms(members)
        i, j = np.triu_indices(len(shapes), k=1)
        common = shapely.intersection(shapes[i], shapes[j])
        assert (shapely.area(common) < 1e-14).all()  # < about 0.0001 m2
        walls = shapely.get_type_id(common) == 1  # LineString
        assert (shapely.length(common[walls]) > 1e-5).all()  # a real edge, metres long
        shared_walls += int(walls.sum())
    assert shared_walls >= 50


def test_park_is_a_hole_in_its_community_and_street(city: DemoCity) -> None:
    holed = [r for r in by_level(city, 2) if len(r.geometry.interiors) > 0]
    assert len(holed) == 1
    park = shapely.Polygon(holed[0].geometry.interiors[0])
    inside = park.representative_point()
    assert park.area > 1e-7  # a block, thousands of m2
    for level in (1, 2, 3, 4):
        assert not shapely.intersects(geoms(by_level(city, level)), inside).any(), level
    # the park is surrounded by the community's roads, not by other grids' land
    assert not shapely.intersects(geoms(by_level(city, 3)), park.buffer(-TINY)).any()


def test_one_street_has_two_parts_that_do_not_touch(city: DemoCity) -> None:
    split = [r for r in by_level(city, 1) if r.geometry.geom_type == "MultiPolygon"]
    assert len(split) == 1
    parts = list(split[0].geometry.geoms)
    assert len(parts) == 2
    assert parts[0].distance(parts[1]) > 1e-4  # more than ~10 m apart
    communities = geoms([r for r in by_level(city, 2) if r.parent_code == split[0].code])
    in_part = [shapely.covered_by(communities, part.buffer(TINY)).sum() for part in parts]
    assert sum(in_part) == len(communities) and min(in_part) >= 1


@pytest.mark.parametrize("seed", [2, 3])
def test_other_seeds_have_the_park_and_the_two_part_street(seed: int) -> None:
    other = generate_city(seed=seed, scale="small")
    assert sum(len(r.geometry.interiors) for r in by_level(other, 2)) == 1
    assert [r.geometry.geom_type for r in by_level(other, 1)].count("MultiPolygon") == 1


def test_households_strictly_inside_their_building(city: DemoCity) -> None:
    by_code = {r.code: r for r in city.records}
    homes = by_level(city, 5)
    buildings = geoms([by_code[h.parent_code] for h in homes])
    assert shapely.contains_properly(buildings, geoms(homes)).all()
    per_building = Counter(h.parent_code for h in homes)
    assert set(per_building.values()) <= {1, 2, 3}
    assert len(per_building) == len(by_level(city, 4))


def test_every_building_has_one_gazetteer_entry_inside_it(city: DemoCity) -> None:
    buildings = {r.code: r for r in by_level(city, 4)}
    entries = Counter(e.building_code for e in city.gazetteer)
    assert set(entries) == set(buildings) and set(entries.values()) == {1}
    for entry in city.gazetteer:
        building = buildings[entry.building_code]
        assert building.geometry.contains(Point(entry.lon, entry.lat))
        assert entry.address == entry.road + entry.door_number + entry.compound + entry.building
        assert building.address == entry.address
        assert building.name == entry.compound + entry.building
        assert re.fullmatch(r"\d+号", entry.door_number) and re.fullmatch(r"\d+栋", entry.building)
    addresses = [e.address for e in city.gazetteer]
    assert len(set(addresses)) == len(addresses)


def test_every_grid_has_a_road_and_door_number_address(city: DemoCity) -> None:
    for grid in by_level(city, 3):
        assert grid.address is not None
        assert re.fullmatch(r".+(路|街|大道)\d+号" + re.escape(grid.name), grid.address)
    door = Counter(g.address.removesuffix(g.name) for g in by_level(city, 3))
    assert max(door.values()) == 1  # no two compounds at one door


def test_a_point_on_a_road_is_in_a_community_but_in_no_grid(rect_city: DemoCity) -> None:
    city = rect_city
    grids = by_level(city, 3)
    community = next(c for c in by_level(city, 2)
                     if sum(g.parent_code == c.code for g in grids) >= 2)
    own = geoms([g for g in grids if g.parent_code == community.code])
    i, j = np.triu_indices(len(own), k=1)
    nearest = int(np.argmin(shapely.distance(own[i], own[j])))
    on_road = shapely.line_interpolate_point(
        shapely.shortest_line(own[i[nearest]], own[j[nearest]]), 0.5, normalized=True)
    assert community.geometry.contains(on_road)
    assert not shapely.intersects(geoms(grids), on_road).any()
    assert not shapely.intersects(geoms(by_level(city, 4)), on_road).any()


def test_leaders_phones_and_households(city: DemoCity) -> None:
    for level in (3, 4):
        units = by_level(city, level)
        leaderless = [u for u in units if u.leader is None]
        assert 1 <= len(leaderless) <= 0.1 * len(units)
        assert all(u.phone is None for u in leaderless)
    for r in city.records:
        if r.leader is not None:
            assert re.fullmatch(r"1[358]\d{9}", r.phone), r.where
    assert all(30 <= b.households <= 150 for b in by_level(city, 4))
    sums: Counter[str] = Counter()
    for r in city.records:
        if r.level in (2, 3, 4):
            sums[r.parent_code] += r.households
    for r in city.records:
        if r.level <= 3:
            assert r.households == sums[r.code], r.where


def test_geojson_file_is_the_interchange_schema(tmp_path: Path, city: DemoCity) -> None:
    write_demo(city, tmp_path)
    data = json.loads((tmp_path / "city.geojson").read_text(encoding="utf-8"))
    features = data["features"]
    assert data["type"] == "FeatureCollection" and len(features) == len(city.records)
    keys = ["code", "name", "level", "parent_code", "leader", "phone", "households", "address"]
    for feature, record in zip(features, city.records, strict=True):
        assert list(feature["properties"]) == keys + list(record.properties)  # covers
        assert feature["properties"]["code"] == record.code
        assert feature["properties"]["level"] == record.level
        assert shapely.geometry.shape(feature["geometry"]).equals_exact(record.geometry, 0)
    coordinates = re.findall(r"-?\d+\.\d+", (tmp_path / "city.geojson").read_text("utf-8"))
    assert max(len(c.split(".")[1]) for c in coordinates) <= 7


def test_gazetteer_csv(tmp_path: Path, city: DemoCity) -> None:
    write_demo(city, tmp_path)
    with (tmp_path / "gazetteer.csv").open(encoding="utf-8", newline="") as f:
        reader = csv.DictReader(f)
        rows = list(reader)
    assert reader.fieldnames == COLUMNS
    assert len(rows) == len(city.gazetteer)
    assert {r["coordsys"] for r in rows} == {"wgs84"}
    first = city.gazetteer[0]
    assert rows[0]["address"] == first.address
    assert float(rows[0]["lon"]) == pytest.approx(first.lon, abs=1e-9)


def test_unknown_scale_is_refused() -> None:
    with pytest.raises(ValueError, match="unknown demo scale 'town'"):
        generate_city(scale="town")


@pytest.mark.slow
def test_city_scale_counts() -> None:
    counts = Counter(r.level for r in generate_city(seed=1, scale="city").records)
    assert counts[1] == 40
    assert counts[2] == 350
    assert 4500 <= counts[3] <= 5500
    assert 70_000 <= counts[4] <= 85_000


def test_organic_grids_follow_streets_tile_their_community_and_validate(
        rect_city: DemoCity) -> None:
    """The organic shape: the same tree as the rectangles, grids of ~1,000 vertices that tile
    their community (but for the park), buildings inside them; the import validation passes."""
    organic = generate_city(seed=1, scale="small", shape="organic")
    assert [(r.code, r.name, r.level, r.parent_code) for r in organic.records if r.level <= 3] \
        == [(r.code, r.name, r.level, r.parent_code) for r in rect_city.records if r.level <= 3]
    grids = by_level(organic, 3)
    vertices = shapely.get_num_coordinates(geoms(grids))
    assert np.median(vertices) > 700 and vertices.min() > 100
    for community in by_level(organic, 2):
        mine = [g for g in grids if g.parent_code == community.code]
        covered = shapely.union_all(geoms(mine))
        gap = community.geometry.difference(covered).area
        holes = sum(shapely.Polygon(h).area for h in community.geometry.interiors)
        parks = gap if holes else 0.0  # the park's community: its one cell has no grid
        assert gap == pytest.approx(parks, abs=1e-12)
    report = validate_records(organic.records, load_hierarchy()).report
    assert report.ok, format_report(report)


def test_names_past_the_word_lists_stay_distinct() -> None:
    """The province scale asks for more road, street and community names than the word
    lists give: numbered variants follow, and a request that fits gets the plain names."""
    from gridsvc.demo import names

    rng = np.random.default_rng(1)
    many = names.unique_names(rng, ["幸福", "阳光"], ["{}路", "{}街"], 9)
    assert len(set(many)) == 9
    assert {"幸福路", "阳光路", "幸福街", "阳光街", "幸福2路"} <= set(many)
    few = names.unique_names(np.random.default_rng(1), ["幸福", "阳光"], ["{}路", "{}街"], 4)
    assert sorted(few) == sorted(["幸福路", "阳光路", "幸福街", "阳光街"])
    with pytest.raises(ValueError):
        names.unique_names(rng, [], ["{}路"], 1)

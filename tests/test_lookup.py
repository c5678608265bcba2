"""Lookups on the demo city, on both databases: points in every coordsys, the not-covered
cases, messy addresses, refusals, and batches. The city is loaded once per backend."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import numpy as np
import orjson
import pytest
import shapely
from conftest import empty_database

from gridsvc.access import cli_principal
from gridsvc.demo.city import DemoCity, generate_city
from gridsvc.services.boundaries import import_records
from gridsvc.services.contacts import ALL, NONE
from gridsvc.services.context import Services
from gridsvc.services.errors import InvalidInput
from gridsvc.services.gazetteer import import_gazetteer
from gridsvc.services.lookup import (
    AddressNotResolved,
    NotCovered,
    lookup_address,
    lookup_point,
)
from gridsvc.services.lookup_batch import lookup_batch
from gridsvc.settings import Settings
from gridsvc.spatial.coordsys import COORDSYS, from_wgs84
from gridsvc.storage.engine import Database

DEMO = Path(__file__).resolve().parents[1] / "boundaries" / "demo"
FULL_WIDTH = str.maketrans("0123456789", "０１２３４５６７８９")


@pytest.fixture(scope="module")
def city() -> DemoCity:
    return generate_city(seed=1, scale="small")


@pytest.fixture(scope="module", params=["spatialite", "postgis"])
def svc(request: pytest.FixtureRequest, _databases: dict[str, Database],
        city: DemoCity, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Services]:
    """The demo city and its gazetteer, plus a second 阳光小区 8栋 in 海门区 (an ambiguity)."""
    db = _databases[request.param]
    empty_database(db)
    settings = Settings(database_url=db.engine.url.render_as_string(hide_password=False),
                        instance_dir=tmp_path_factory.mktemp("lookup"), batch_limit=50)
    services = Services.from_settings(settings)
    assert import_records(services, city.records, viewer=cli_principal()).stored
    assert import_gazetteer(services, DEMO / "gazetteer.csv").stored == len(city.gazetteer)
    twin = city.gazetteer[0]
    extra = tmp_path_factory.mktemp("gaz") / "twin.csv"
    extra.write_text("address,district,lon,lat,coordsys\n"
                     f"人民路5号{twin.compound}{twin.building},海门区,121.17,31.89,wgs84\n",
                     encoding="utf-8")
    assert import_gazetteer(services, extra).stored == 1
    yield services
    services.close()
    empty_database(db)


def buildings(city: DemoCity) -> list:
    return [r for r in city.records if r.level == 4]


def test_a_building_point_gives_the_whole_chain(svc: Services, city: DemoCity) -> None:
    building = buildings(city)[7]
    point = shapely.point_on_surface(building.geometry)
    answer = lookup_point(svc, point.x, point.y, "wgs84")
    codes = [e["code"] for e in answer["chain"]]
    assert codes[-1] == building.code
    assert codes == [building.code[:n] for n in (9, 12, 15, 18)]
    assert [e["level"] for e in answer["chain"]] == [1, 2, 3, 4]
    assert answer["chain"][-1]["contact"] == {"name": building.leader, "phone": building.phone}
    assert answer["household"]["code"].startswith(building.code)
    assert answer["match"] == {"method": "point", "coordsys": "wgs84", "score": 1.0,
                               "level": "point", "fallback": False, "distance_m": 0.0}


@pytest.mark.parametrize("coordsys", COORDSYS)
def test_each_coordsys_round_trips_to_the_same_building(svc: Services, city: DemoCity,
                                                        coordsys: str) -> None:
    for building in buildings(city)[::97]:
        point = shapely.point_on_surface(building.geometry)
        lon, lat = from_wgs84(point.x, point.y, coordsys)
        answer = lookup_point(svc, lon, lat, coordsys)
        assert answer["chain"][-1]["code"] == building.code
        assert answer["match"]["coordsys"] == coordsys
        assert abs(answer["point"]["lon"] - point.x) < 1e-6


def test_a_gcj02_point_passed_as_wgs84_lands_elsewhere(svc: Services, city: DemoCity) -> None:
    building = buildings(city)[300]
    point = shapely.point_on_surface(building.geometry)
    lon, lat = from_wgs84(point.x, point.y, "gcj02")
    try:
        wrong = lookup_point(svc, lon, lat, "wgs84")["chain"][-1]["code"]
    except NotCovered:
        wrong = None
    assert wrong != building.code
    assert lookup_point(svc, lon, lat, "gcj02")["chain"][-1]["code"] == building.code


def test_park_road_and_gaps_are_not_covered(svc: Services, city: DemoCity) -> None:
    park = next(shapely.Polygon(r.geometry.interiors[0]) for r in city.records
                if r.level == 2 and r.geometry.geom_type == "Polygon" and r.geometry.interiors)
    centre = park.centroid
    with pytest.raises(NotCovered) as caught:
        lookup_point(svc, centre.x, centre.y, "wgs84")
    nearest = caught.value.extra["nearest"]
    assert nearest is None or nearest["distance_m"] > 0

    grids = [r for r in city.records if r.level == 3]
    road = shapely.Point(grids[0].geometry.bounds[2] + 0.00005, grids[0].geometry.centroid.y)
    assert not any(g.geometry.covers(road) for g in grids)  # between two blocks: a road
    with pytest.raises(NotCovered):
        lookup_point(svc, road.x, road.y, "wgs84")


def test_next_to_a_building_names_the_nearest_with_its_distance(svc: Services,
                                                                city: DemoCity) -> None:
    building = buildings(city)[0]
    minx, miny, maxx, _ = building.geometry.bounds
    point = shapely.Point((minx + maxx) / 2, miny - 0.00003)  # about 3 m south
    assert not any(b.geometry.covers(point) for b in buildings(city))
    with pytest.raises(NotCovered) as caught:
        lookup_point(svc, point.x, point.y, "wgs84")
    nearest = caught.value.extra["nearest"]
    assert nearest["code"] == building.code and nearest["fallback"] is True
    assert 2 < nearest["distance_m"] < 5
    far = shapely.Point(point.x, point.y - 0.05)  # 5 km south: nothing within 200 m
    with pytest.raises(NotCovered) as caught:
        lookup_point(svc, far.x, far.y, "wgs84")
    assert caught.value.extra["nearest"] is None


def test_shared_vertices_go_to_exactly_the_building_the_rule_names(svc: Services,
                                                                   city: DemoCity) -> None:
    """Where terrace buildings touch, the owner is the one containing the point moved a step
    east and then a smaller step north; when none does, the first building whose boundary
    holds it (gridsvc/spatial/index.py)."""
    geoms = np.array([b.geometry for b in buildings(city)], dtype=object)
    codes = [b.code for b in buildings(city)]
    tree = shapely.STRtree(geoms)
    checked = 0
    for i in range(0, len(geoms), 5):
        for x, y in shapely.get_coordinates(geoms[i])[:-1]:
            touching = tree.query(shapely.Point(x, y), predicate="intersects")
            if len(touching) < 2:
                continue
            shifted = shapely.Point(x + 1e-9, y + 1e-12)
            owners = sorted(j for j in touching if geoms[j].contains(shifted))
            expected = codes[owners[0]] if owners else codes[min(touching)]
            assert lookup_point(svc, x, y, "wgs84")["chain"][-1]["code"] == expected
            checked += 1
    assert checked >= 10


@pytest.mark.parametrize("lon, lat, field", [
    (32.0, 120.86, "lat"),  # swapped
    (2.35, 48.85, "lon"),  # Paris
    (120.86, 60.0, "lat"),  # Siberia
    ("abc", 32.0, "lon"),
    (120.86, None, "lat"),
])
def test_bad_points_are_refused_naming_the_field(svc: Services, lon: object, lat: object,
                                                 field: str) -> None:
    with pytest.raises(InvalidInput) as caught:
        lookup_point(svc, lon, lat, "wgs84")
    assert caught.value.extra["field"] == field


def test_a_missing_or_unknown_coordsys_is_refused(svc: Services) -> None:
    for coordsys in (None, "", "mars"):
        with pytest.raises(InvalidInput) as caught:
            lookup_point(svc, 120.86, 32.0, coordsys)
        assert caught.value.extra["field"] == "coordsys"


def _entry(city: DemoCity, number: str):
    """A gazetteer entry of the demo with this building number, not of the twin compound."""
    twin = city.gazetteer[0].compound
    return next(e for e in city.gazetteer if e.building == number and e.compound != twin)


def test_messy_addresses_resolve_to_the_right_building(svc: Services, city: DemoCity) -> None:
    e = _entry(city, "3栋")
    place = f"{e.road}{e.door_number}{e.compound}"
    typo = e.compound[:-2] + ("明" if e.compound[-2] != "明" else "光") + e.compound[-1]
    addresses = [
        f"{place}3栋",
        f"{place}３栋２单元３０１".translate(FULL_WIDTH),
        f"{place}三栋",
        f"{place}3号楼",
        f"{place}3幢",
        f"{e.compound}3#",
        f"江苏省南通市崇川区{place}3栋1单元",
        f"南通市{e.district}{e.compound}3栋",
        f"{e.district}{e.road}{e.door_number}{typo}3栋",
    ]
    for address in addresses:
        answer = lookup_address(svc, address)
        assert answer["chain"][-1]["code"] == e.building_code, address
        assert answer["match"]["method"] == "address"


def test_household_follows_the_address_unit(svc: Services, city: DemoCity) -> None:
    homes = [r for r in city.records if r.level == 5 and r.code.endswith("02")]
    home = homes[3]
    building = next(b for b in buildings(city) if b.code == home.parent_code)
    answer = lookup_address(svc, f"{building.address}2单元501室")
    assert answer["household"]["code"] == home.code
    assert answer["household"]["rule"] == "unit"


def test_ambiguous_and_compound_only_addresses_are_refused_with_candidates(
        svc: Services, city: DemoCity) -> None:
    twin = city.gazetteer[0]
    with pytest.raises(AddressNotResolved) as caught:
        lookup_address(svc, f"{twin.compound}{twin.building}")
    assert caught.value.extra["match_status"] == "ambiguous"
    districts = {c["district"] for c in caught.value.extra["candidates"]}
    assert {"海门区", "崇川区"} <= districts or None in districts
    with_district = lookup_address(svc, f"崇川区{twin.compound}{twin.building}")
    assert with_district["chain"][-1]["code"] == twin.building_code

    e = _entry(city, "2栋")
    with pytest.raises(AddressNotResolved) as caught:
        lookup_address(svc, e.compound)
    assert caught.value.extra["match_status"] == "weak"
    assert len(caught.value.extra["candidates"]) >= 2
    with pytest.raises(AddressNotResolved) as caught:
        lookup_address(svc, "火星基地99栋")
    assert caught.value.extra["match_status"] == "unmatched"
    with pytest.raises(InvalidInput):
        lookup_address(svc, "  ")


def test_batch_mixes_points_addresses_and_bad_items(svc: Services, city: DemoCity) -> None:
    building = buildings(city)[11]
    p = shapely.point_on_surface(building.geometry)
    glon, glat = from_wgs84(p.x, p.y, "bd09")
    e = _entry(city, "4栋")
    items = [
        {"lon": p.x, "lat": p.y, "coordsys": "wgs84"},
        {"address": f"{e.compound}4栋"},
        {"lon": glon, "lat": glat, "coordsys": "bd09"},
        {"lon": p.x, "lat": p.y},
        "nonsense",
        {"lon": 2.35, "lat": 48.85, "coordsys": "wgs84"},
        {"lon": p.x, "lat": p.y - 0.05, "coordsys": "wgs84"},
        {"address": e.compound},
    ]
    for compact in (False, True):
        body = lookup_batch(svc, items, compact=compact, contacts=ALL).as_dict()
        results = body["results"]
        assert [r["index"] for r in results] == list(range(len(items)))
        ok = {r["index"] for r in results if "result" in r}
        assert ok == {0, 1, 2}
        last = [r["result"]["chain"][-1] for r in results[:3]]
        codes = last if compact else [c["code"] for c in last]
        assert codes == [building.code, e.building_code, building.code]
        problems = {r["index"]: r["problem"] for r in results if "problem" in r}
        assert problems[3]["field"] == "coordsys"
        assert problems[4]["field"] == "item"
        assert problems[5]["field"] == "lon"
        assert problems[6]["type"] == "/problems/not-covered"
        assert problems[7]["type"] == "/problems/address-not-resolved"
        if compact:
            assert set(codes) <= set(body["units"])
            assert results[0]["result"]["household"]["code"] in body["units"]
        else:
            assert "units" not in body
            single = lookup_point(svc, p.x, p.y, "wgs84", ALL)
            assert results[0]["result"] == single


def test_batch_of_points_only_equals_single_lookups(svc: Services, city: DemoCity) -> None:
    points = [shapely.point_on_surface(b.geometry) for b in buildings(city)[:40]]
    items = [{"lon": p.x, "lat": p.y, "coordsys": "wgs84"} for p in points]
    results = lookup_batch(svc, items, contacts=ALL).as_dict()["results"]
    for p, r in zip(points, results, strict=True):
        assert r["result"] == lookup_point(svc, p.x, p.y, "wgs84", ALL)


def test_batch_answers_are_the_same_whatever_the_chunks(svc: Services, city: DemoCity) -> None:
    """The body is encoded a chunk of items at a time (and streamed over HTTP): problems,
    addresses and the first item's missing comma fall on either side of a chunk boundary."""
    points = [shapely.point_on_surface(b.geometry) for b in buildings(city)[:9]]
    e = _entry(city, "4栋")
    items: list = [{"lon": p.x, "lat": p.y, "coordsys": "wgs84"} for p in points]
    items[0:0] = ["nonsense"]
    items[4:4] = [{"address": f"{e.compound}4栋"}, {"lon": 2.35, "lat": 48.85,
                                                    "coordsys": "wgs84"}]
    items.append({"lon": points[0].x, "lat": points[0].y - 0.05, "coordsys": "wgs84"})
    for compact in (False, True):
        for contacts in (ALL, NONE):
            answer = lookup_batch(svc, items, compact=compact, contacts=contacts)
            whole = answer.to_json()
            results = orjson.loads(whole)["results"]
            assert [r["index"] for r in results] == list(range(len(items)))
            assert ["problem" in r for r in results] == [
                True, False, False, False, False, True, *[False] * 6, True]
            for size in (1, 2, 5, len(items), 1000):
                assert b"".join(answer.chunks(size)) == whole
    assert lookup_batch(svc, []).to_json() == b'{"results":[]}'
    assert lookup_batch(svc, [], compact=True).to_json() == b'{"results":[],"units":{}}'


def test_batch_limit_is_enforced(svc: Services) -> None:
    items = [{"lon": 120.86, "lat": 32.0, "coordsys": "wgs84"}] * 51
    with pytest.raises(InvalidInput) as caught:
        lookup_batch(svc, items)
    assert "at most 50" in caught.value.detail
    with pytest.raises(InvalidInput):
        lookup_batch(svc, {"lon": 1})

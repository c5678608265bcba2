"""The tree API over HTTP, on both databases."""

from __future__ import annotations

from urllib.parse import parse_qs, urlsplit

import pytest
from api_support import (
    ALL_CODES,
    B1,
    B2,
    C1,
    C2,
    G1,
    G2,
    G3,
    H1,
    S,
    app_client,
    sample_records,
    sign_in,
)
from shapely.geometry import Point

from gridsvc.access import cli_principal
from gridsvc.services.boundaries import import_records
from gridsvc.web.geojson import geometry

pytestmark = pytest.mark.storage

GEOJSON = "application/geo+json"
PROBLEM = "application/problem+json"


@pytest.fixture
def client(settings):
    """An administrator's client (tests/test_scope_units.py covers the other roles)."""
    with app_client(settings) as c:
        sign_in(c, settings)
        outcome = import_records(c.application.extensions["gridsvc"], sample_records(),
            viewer=cli_principal())
        assert outcome.stored, outcome.report.as_dict()
        yield c


@pytest.fixture
def empty_client(settings):
    """For requests refused before any data is read."""
    with app_client(settings) as c:
        yield sign_in(c, settings)


def codes(body: dict) -> list[str]:
    if body.get("type") == "FeatureCollection":
        return [f["id"] for f in body["features"]]
    return [item["code"] for item in body["items"]]


def assert_problem(resp, status: int, slug: str) -> dict:
    assert resp.status_code == status, resp.get_data(as_text=True)
    assert resp.mimetype == PROBLEM
    body = resp.get_json()
    assert body["type"] == f"/problems/{slug}"
    assert body["status"] == status
    assert body["instance"] == urlsplit(resp.request.url).path
    assert body["title"] and body["detail"]
    return body


def test_level_filter_by_number_and_key(client):
    by_number = client.get("/api/v1/units?level=2").get_json()
    by_key = client.get("/api/v1/units?level=community").get_json()
    assert codes(by_number) == codes(by_key) == [C1, C2]
    assert by_number["total"] == 2
    assert by_number["items"][0]["level_key"] == "community"
    assert "geometry" not in by_number["items"][0]


def test_parent_bbox_and_name_filters(client):
    assert codes(client.get(f"/api/v1/units?parent={G1}").get_json()) == [B1, B2]
    # a bbox inside the east community touches it, its grid and the street, nothing in C1
    east = client.get("/api/v1/units?bbox=120.9035,32.001,120.9055,32.003").get_json()
    assert codes(east) == [S, C2, G3]
    same = client.get("/api/v1/units?bbox=120.9035,32.001,120.9055,32.003&bbox-crs=cgcs2000")
    assert codes(same.get_json()) == [S, C2, G3]
    assert codes(client.get("/api/v1/units?q=阳光&level=3").get_json()) == [G1, G2]
    assert codes(client.get(f"/api/v1/units?q={C2}").get_json()) == [C2, G3]


def test_paging_links_walk_every_unit_once(client):
    seen: list[str] = []
    url: str | None = "/api/v1/units?limit=4&level="
    first = client.get(url).get_json()
    assert first["links"]["prev"] is None
    while url:
        body = client.get(url).get_json()
        assert body["total"] == len(ALL_CODES) and body["limit"] == 4
        seen += codes(body)
        url = body["links"]["next"]
        if url:
            assert parse_qs(urlsplit(url).query)["offset"] == [str(body["offset"] + 4)]
    assert seen == sorted(ALL_CODES)
    last = client.get("/api/v1/units?limit=4&offset=8").get_json()
    assert parse_qs(urlsplit(last["links"]["prev"]).query)["offset"] == ["4"]


def test_list_as_geojson_via_accept_and_f(client):
    by_accept = client.get("/api/v1/units?level=4", headers={"Accept": GEOJSON})
    by_f = client.get("/api/v1/units?level=4&f=geojson")
    for resp in (by_accept, by_f):
        assert resp.mimetype == GEOJSON
        body = resp.get_json()
        assert body["type"] == "FeatureCollection"
        assert codes(body) == [B1, B2]
        assert body["numberMatched"] == body["numberReturned"] == 2
        assert body["features"][0]["geometry"]["type"] == "MultiPolygon"
    plain = client.get("/api/v1/units?level=4&f=json", headers={"Accept": GEOJSON})
    assert plain.mimetype == "application/json"
    paged = client.get("/api/v1/units?f=geojson&limit=2").get_json()
    assert paged["numberMatched"] == len(ALL_CODES) and paged["numberReturned"] == 2
    assert {link["rel"] for link in paged["links"]} == {"self", "next"}
    by_accept = client.get("/api/v1/units?limit=2", headers={"Accept": GEOJSON}).get_json()
    following = client.get(next(x["href"] for x in by_accept["links"] if x["rel"] == "next"))
    assert following.mimetype == GEOJSON
    assert codes(following.get_json()) == sorted(ALL_CODES)[2:4]


def test_unit_detail_has_ancestors_and_counts(client):
    body = client.get(f"/api/v1/units/{B1}").get_json()
    assert body["code"] == B1 and body["name"] == "阳光小区1栋" and body["parent_code"] == G1
    assert [a["code"] for a in body["ancestors"]] == [S, C1, G1]
    assert [a["level_key"] for a in body["ancestors"]] == ["street", "community", "grid"]
    assert body["children"] == 1
    assert "geometry" not in body
    street = client.get(f"/api/v1/units/{S}").get_json()
    assert street["ancestors"] == [] and street["children"] == 2
    assert street["descendants"] == {"community": 2, "grid": 3, "building": 2, "household": 1}
    with_geom = client.get(f"/api/v1/units/{H1}?geometry=1").get_json()
    assert with_geom["geometry"] == {"type": "Point", "coordinates": [120.9007, 32.0007]}
    assert with_geom["service_area"]["type"] == "MultiPolygon"


def test_unit_detail_as_feature(client):
    resp = client.get(f"/api/v1/units/{C1}?f=geojson")
    assert resp.mimetype == GEOJSON
    body = resp.get_json()
    assert body["type"] == "Feature" and body["id"] == C1
    assert body["properties"]["children"] == 2
    assert [a["code"] for a in body["properties"]["ancestors"]] == [S]


def test_children_as_json_and_geojson(client):
    assert codes(client.get(f"/api/v1/units/{C1}/children").get_json()) == [G1, G2]
    resp = client.get(f"/api/v1/units/{C1}/children", headers={"Accept": GEOJSON})
    assert resp.mimetype == GEOJSON
    assert codes(resp.get_json()) == [G1, G2]
    assert codes(client.get(f"/api/v1/units/{H1}/children").get_json()) == []


def test_subtree_is_a_feature_collection(client):
    resp = client.get(f"/api/v1/units/{C1}/subtree")
    assert resp.status_code == 200 and resp.mimetype == GEOJSON
    body = resp.get_json()
    assert sorted(codes(body)) == sorted([C1, G1, G2, B1, B2, H1])
    assert codes(body)[0] == C1  # parents first
    household = next(f for f in body["features"] if f["id"] == H1)
    assert household["properties"]["service_area"]["type"] == "MultiPolygon"
    assert household["properties"]["level_key"] == "household"
    building = next(f for f in body["features"] if f["id"] == B1)
    (ring,) = building["geometry"]["coordinates"][0]
    assert min(x for x, _ in ring) == 120.9005 and max(y for _, y in ring) == 32.001
    shallow = client.get(f"/api/v1/units/{C1}/subtree?max_level=grid").get_json()
    assert codes(shallow) == [C1, G1, G2]
    whole = client.get("/api/v1/tree/subtree").get_json()
    assert sorted(codes(whole)) == sorted(ALL_CODES)
    assert codes(client.get("/api/v1/tree/subtree?max_level=2").get_json()) == [S, C1, C2]


def test_unknown_unit_is_a_not_found_problem(client):
    body = assert_problem(client.get("/api/v1/units/999999"), 404, "not-found")
    assert "999999" in body["detail"] and body["code"] == "999999"
    assert_problem(client.get("/api/v1/units/999999/children"), 404, "not-found")
    assert_problem(client.get("/api/v1/units/999999/subtree"), 404, "not-found")


@pytest.mark.parametrize(
    ("query", "field"),
    [
        ("bbox=120.9,32.0,120.8", "bbox"),
        ("bbox=a,b,c,d", "bbox"),
        ("bbox=121,32,120,33", "bbox"),
        ("bbox=120.9,32,121,32.1&bbox-crs=gcj02", "bbox-crs"),
        ("level=floor", "level"),
        ("level=9", "level"),
        ("limit=abc", "limit"),
        ("limit=0", "limit"),
        ("offset=-1", "offset"),
        ("f=kml", "f"),
        ("geometry=maybe", "geometry"),
    ],
)
def test_bad_parameters_are_invalid_input_naming_them(empty_client, query, field):
    body = assert_problem(empty_client.get(f"/api/v1/units?{query}"), 400, "invalid-input")
    assert body["field"] == field
    assert field.split("-")[0] in body["detail"]


def test_bad_max_level_names_max_level(empty_client):
    body = assert_problem(empty_client.get("/api/v1/tree/subtree?max_level=floor"), 400,
                          "invalid-input")
    assert body["field"] == "max_level"


def test_routing_errors_are_problems(empty_client):
    client = empty_client
    assert_problem(client.get("/api/v1/nothing-here"), 404, "not-found")
    resp = client.post("/api/v1/units")
    assert_problem(resp, 405, "method-not-allowed")
    assert "GET" in resp.headers["Allow"]
    page = client.get("/problems/not-found")
    assert page.status_code == 200 and page.mimetype == "text/html"
    assert "Not found" in page.get_data(as_text=True)
    assert_problem(client.get("/problems/no-such-problem"), 404, "not-found")


def test_unexpected_errors_are_logged_but_not_echoed(settings, caplog):
    with app_client(settings) as c:

        def explode():
            raise RuntimeError("secret connection string")

        c.application.add_url_rule("/explode", "explode", explode)
        resp = c.get("/explode")
    body = assert_problem(resp, 500, "internal-error")
    assert "secret" not in resp.get_data(as_text=True)
    assert body["detail"]
    assert "secret connection string" in caplog.text


def test_meta_pages(client):
    levels = client.get("/api/v1/levels").get_json()["levels"]
    assert [lv["key"] for lv in levels] == ["street", "community", "grid", "building",
                                            "household"]
    health = client.get("/healthz").get_json()
    assert health["status"] == "ok" and health["units"] == len(ALL_CODES)
    landing = client.get("/")
    hrefs = [link["href"] for link in landing.get_json()["links"]]
    assert "/api/v1/units" in hrefs
    for href in hrefs:
        assert client.get(href).status_code == 200, href


def test_json_keeps_chinese_readable(client):
    raw = client.get(f"/api/v1/units/{C1}").get_data(as_text=True)
    assert "阳光社区" in raw


def test_geojson_coordinates_are_rounded_to_7_decimals():
    rounded = geometry(Point(120.123456789, 32.00000004))
    assert rounded == {"type": "Point", "coordinates": (120.1234568, 32.0)}

"""Map pages and the layer API without a browser, on both databases: zoom thresholds, bbox,
simplification that keeps shared edges matched, the public distribution (counts only), the
validation map and link, and the CLI writing a static file."""

from __future__ import annotations

import io
import json
import re

import numpy as np
import pytest
import shapely
from api_support import (
    B1,
    B2,
    C1,
    C2,
    G1,
    G2,
    G3,
    S,
    app_client,
    bearer,
    sample_records,
    sign_in,
    write_geojson,
)
from click.testing import CliRunner
from shapely.geometry import Polygon, box, shape
from sqlalchemy import select

from gridsvc.access import cli_principal
from gridsvc.cli import cli
from gridsvc.io.records import BoundaryRecord
from gridsvc.maps.layers import LayerStore, simplified, tolerance_deg
from gridsvc.services.boundaries import import_records
from gridsvc.services.context import Services
from gridsvc.storage.models import Member, Unit

# Members' homes (wgs84) inside B1 and B2, with names and phones that must never be public.
HOMES = [(B1, "陈静怡", "13912340001", 120.90071, 32.00072),
         (B1, "刘建国", "13912340002", 120.90083, 32.00061),
         (B2, "周晓梅", "13912340003", 120.90171, 32.00077)]


@pytest.fixture
def client(settings):
    """An administrator's client (tests/test_scope_units.py covers the other roles)."""
    import dataclasses

    with app_client(dataclasses.replace(settings, basemap="none")) as c:
        sign_in(c, settings)
        svc = c.application.extensions["gridsvc"]
        assert import_records(svc, sample_records(), viewer=cli_principal()).stored
        with svc.db.session() as session:
            ids = dict(session.execute(select(Unit.code, Unit.id)).all())
            session.add_all(Member(name=name, phone=phone, lon=lon, lat=lat, status="assigned",
                                   building_id=ids[code]) for code, name, phone, lon, lat in HOMES)
        yield c


def layer(client, url: str) -> dict:
    resp = client.get(url)
    assert resp.status_code == 200, resp.get_data(as_text=True)
    assert resp.mimetype == "application/geo+json"
    return json.loads(resp.data)


def codes(collection: dict) -> set[str]:
    return {f["id"] for f in collection["features"]}


def test_levels_are_served_from_their_zoom(client):
    assert codes(layer(client, "/api/v1/layers/building?zoom=14")) == set()
    assert layer(client, "/api/v1/layers/building?zoom=14")["minZoom"] == 15
    assert codes(layer(client, "/api/v1/layers/building?zoom=15")) == {B1, B2}
    assert codes(layer(client, "/api/v1/layers/grid?zoom=12")) == set()
    assert codes(layer(client, "/api/v1/layers/grid?zoom=13")) == {G1, G2, G3}
    assert codes(layer(client, "/api/v1/layers/1?zoom=3")) == {S}
    assert codes(layer(client, "/api/v1/layers/household?zoom=15")) == set()
    assert len(layer(client, "/api/v1/layers/household?zoom=16")["features"]) == 1


def test_bbox_unit_limit_and_bad_input(client):
    west = layer(client, "/api/v1/layers/grid?zoom=14&bbox=120.9001,32.0001,120.9015,32.0015")
    assert codes(west) == {G1}
    assert codes(layer(client, "/api/v1/layers/grid?zoom=14&bbox=121.5,33,121.6,33.1")) == set()
    assert codes(layer(client, f"/api/v1/layers/grid?zoom=14&unit={C2}")) == {G3}
    capped = layer(client, "/api/v1/layers/grid?zoom=14&limit=2")
    assert len(capped["features"]) == 2 and capped["truncated"] and capped["numberMatched"] == 3
    props = layer(client, f"/api/v1/layers/building?zoom=16&unit={G1}")["features"][0]
    assert {"code", "name", "leader", "households", "members", "members_per_100",
            "needs_confirmation", "gaps"} <= props["properties"].keys()
    for url, status in (("/api/v1/layers/grid", 400), ("/api/v1/layers/nope?zoom=3", 400),
                        ("/api/v1/layers/grid?zoom=14&unit=999", 404),
                        ("/api/v1/layers/grid?zoom=14&bbox=1,2", 400),
                        ("/api/v1/layers/grid?zoom=14&view=secret", 400)):
        assert client.get(url).status_code == status, url


def zigzag_records() -> list[BoundaryRecord]:
    """Two communities sharing a zigzag edge of 200 vertices (a few metres of wiggle), and a
    third touching both along straight edges."""
    ys = np.linspace(32.0, 32.01, 200)
    xs = 120.905 + 0.00003 * np.sin(np.arange(200) * 1.7)
    edge = list(zip(xs, ys, strict=True))
    west = Polygon([(120.90, 32.0), *edge, (120.90, 32.01)])
    east = Polygon([(120.91, 32.0), (120.91, 32.01), *reversed(edge)])
    north = box(120.90, 32.01, 120.91, 32.015)
    street = shapely.union_all([west, east, north])
    rows = [("S9", "街道", 1, None, street), ("S9C1", "西社区", 2, "S9", west),
            ("S9C2", "东社区", 2, "S9", east), ("S9C3", "北社区", 2, "S9", north)]
    return [BoundaryRecord(row=i, code=c, name=n, level=lv, parent_code=p, geometry=g)
            for i, (c, n, lv, p, g) in enumerate(rows, start=1)]


def test_simplified_neighbours_still_share_their_edges(settings):
    svc = Services.from_settings(settings)
    try:
        assert import_records(svc, zigzag_records(), viewer=cli_principal()).stored
        store = LayerStore(svc)
        page = store.layer("community", zoom=12)
        geoms = {f["id"]: shape(f["geometry"]) for f in map(json.loads, page.features)}
        raw = {f["id"]: shape(f["geometry"]) for f in
               map(json.loads, store.layer("community", zoom=18).features)}
    finally:
        svc.close()
    west, east, north = geoms["S9C1"], geoms["S9C2"], geoms["S9C3"]
    # simplification happened: the zigzag lost most of its vertices
    assert shapely.get_num_coordinates(west) < shapely.get_num_coordinates(raw["S9C1"]) / 4
    for a, b in ((west, east), (west, north), (east, north)):
        assert a.intersection(b).area < 1e-12  # no overlap
        assert a.boundary.intersection(b.boundary).length > 0.004  # still touching
    union = shapely.union_all([west, east, north])
    assert union.geom_type == "Polygon" and not union.interiors  # no gap between them
    assert union.area == pytest.approx(shapely.union_all(list(raw.values())).area, rel=1e-3)
    # each polygon simplified alone would open gaps or overlaps along the zigzag
    tol = tolerance_deg(12)
    alone = [shapely.simplify(raw[c], tol) for c in ("S9C1", "S9C2")]
    assert alone[0].intersection(alone[1]).area > 1e-10 or \
        shapely.union_all(alone).area < shapely.union_all([west, east]).area - 1e-10


def test_simplified_keeps_points_and_rounds():
    geoms = np.array([shapely.Point(120.123456789, 32.0), box(0, 0, 1, 1)], dtype=object)
    out = simplified(geoms, 10)
    assert out[0].x == 120.123457 and out[1].equals(box(0, 0, 1, 1))


def test_public_distribution_has_counts_and_nothing_personal(client):
    page = client.get(f"/maps/distribution?unit={S}&inline=0")
    remote_url = '"url": "/api/v1/layers/building"'
    assert page.status_code == 200 and remote_url in page.get_data(as_text=True)
    data_urls = [f"/api/v1/layers/building?zoom={z}&view=counts&points=1&unit={S}"
                 for z in (10, 14, 16)]
    inline_page = client.get(f"/maps/distribution?unit={S}")
    bodies = [page.data, inline_page.data] + [client.get(u).data for u in data_urls]
    for body in bodies:
        text = body.decode()
        for _code, name, phone, lon, lat in HOMES:
            assert name not in text and phone not in text
            assert f"{lon:.5f}" not in text and f"{lat:.5f}" not in text
    counts = {f["id"]: f["properties"] for f in layer(client, data_urls[2])["features"]}
    assert counts == {B1: {"code": B1, "name": "阳光小区1栋", "members": 2},
                      B2: {"code": B2, "name": "阳光小区2栋", "members": 1}}
    aggregated = layer(client, data_urls[0])  # zoom 10: counts of communities
    assert {f["id"]: f["properties"]["members"] for f in aggregated["features"]} == {C1: 3}


def test_detailed_distribution_is_for_staff_only(client, settings):
    url = f"/maps/distribution?unit={S}&detail=1"
    assert client.get(url, headers={"Authorization": ""}).status_code == 401
    assert client.get(url, headers=bearer(settings, "planner")).status_code == 403
    resp = client.get(url, headers=bearer(settings, "staff"))
    assert resp.status_code == 200 and resp.headers["Cache-Control"] == "no-store"
    assert all(name in resp.get_data(as_text=True) for _c, name, *_ in HOMES)


def test_coverage_page_inlines_small_subtrees_and_fetches_large_ones(client):
    inline = client.get(f"/maps/coverage?unit={C1}").get_data(as_text=True)
    assert B1 in inline and G2 in inline and '"url": "/api/v1/layers/' not in inline
    assert "members per 100 households" in inline and "grids without secretary" in inline
    remote = client.get(f"/maps/coverage?unit={C1}&inline=0").get_data(as_text=True)
    assert B1 not in remote and '"url": "/api/v1/layers/building"' in remote
    assert not re.findall(r"https?://(?!127\.0\.0\.1)[^\s\"']+\.(?:js|css)", inline)
    assert client.get("/maps/coverage?unit=999").status_code == 404


def test_validation_map_of_an_upload_and_the_report_link(client, tmp_path):
    records = sample_records()
    records[4].geometry = box(120.900, 32.0015, 120.903, 32.004)  # G2 overlaps G1
    upload = write_geojson(records, tmp_path / "overlap.geojson").read_bytes()

    resp = client.post("/maps/validation", data={"file": (io.BytesIO(upload), "o.geojson")},
                       content_type="multipart/form-data")
    text = resp.get_data(as_text=True)
    assert resp.status_code == 200 and "overlapping-siblings" in text and '"Polygon"' in text
    report = client.get(f"/api/v1/boundaries/validate?unit={C1}").get_json()
    assert report["map"] == f"/maps/validation?unit={C1}"
    assert client.get(report["map"]).status_code == 200


def test_cli_writes_a_static_coverage_file(settings, tmp_path, monkeypatch):
    svc = Services.from_settings(settings)
    try:
        assert import_records(svc, sample_records(), viewer=cli_principal()).stored
    finally:
        svc.close()
    monkeypatch.setenv("GRIDSVC_DATABASE_URL", settings.database_url)
    monkeypatch.setenv("GRIDSVC_BASEMAP", "none")
    out = tmp_path / "maps" / "c.html"
    result = CliRunner().invoke(cli, ["map", "coverage", "--unit", C1, "--out", str(out)])
    assert result.exit_code == 0, result.output
    html = out.read_text(encoding="utf-8")
    assert G1 in html and G2 in html and G3 not in html  # C1's subtree only
    assert '"vendor/' in html and (out.parent / "vendor").is_dir()
    result = CliRunner().invoke(cli, ["map", "coverage", "--unit", "999", "--out", str(out)])
    assert result.exit_code != 0 and "999" in result.output

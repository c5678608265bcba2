"""The lookup API, the household rule, the live index and the lookup CLI on a small hand-made
tree (exact shared edges) on both databases.

Grid G1 holds four buildings in a 2 x 2 block: B1 (south-west), B2 (south-east), B3
(north-west), B4 (north-east), sharing the edges x = 120.9015 and y = 32.0015. Grid G2, east
across a road, holds B5. Households: H1 in B1 with a service area in B1's south-west corner,
H2 in B1 covering 单元 2, H3 in B2; B3, B4 and B5 have none.
"""

from __future__ import annotations

import io
import threading
from pathlib import Path

import numpy as np
import pytest
from api_support import app_client, bearer
from click.testing import CliRunner
from jsonschema import Draft202012Validator
from shapely.geometry import Point, box

from gridsvc.access import cli_principal
from gridsvc.cli import cli
from gridsvc.io.records import BoundaryRecord
from gridsvc.services.boundaries import import_records
from gridsvc.services.context import Services
from gridsvc.services.lookup import household_for, household_one, households_many, lookup_point
from gridsvc.settings import Settings
from gridsvc.web.openapi import openapi_document

S, C = "320602009", "320602009001"
G1, G2 = C + "001", C + "002"
B1, B2, B3, B4, B5 = (G1 + "001", G1 + "002", G1 + "003", G1 + "004", G2 + "001")
H1, H2, H3 = B1 + "01", B1 + "02", B2 + "01"
X, Y = 120.9015, 32.0015  # the shared edges


def tree(street_name: str = "和平街道", b1_name: str = "阳光小区1栋") -> list[BoundaryRecord]:
    rows = [
        (S, street_name, 1, None, box(120.900, 32.000, 120.910, 32.004), None),
        (C, "阳光社区", 2, S, box(120.900, 32.000, 120.910, 32.004), None),
        (G1, "阳光小区", 3, C, box(120.900, 32.000, 120.904, 32.004), None),
        (G2, "幸福小区", 3, C, box(120.905, 32.000, 120.909, 32.004), None),
        (B1, b1_name, 4, G1, box(120.9010, 32.0010, X, Y), "幸福路1号阳光小区1栋"),
        (B2, "阳光小区2栋", 4, G1, box(X, 32.0010, 120.9020, Y), "幸福路1号阳光小区2栋"),
        (B3, "阳光小区3栋", 4, G1, box(120.9010, Y, X, 32.0020), "幸福路1号阳光小区3栋"),
        (B4, "阳光小区4栋", 4, G1, box(X, Y, 120.9020, 32.0020), "幸福路1号阳光小区4栋"),
        (B5, "幸福小区1栋", 4, G2, box(120.906, 32.001, 120.907, 32.002), "幸福路9号幸福小区1栋"),
        (H1, "1单元中心户", 5, B1, Point(120.9011, 32.0011), None),
        (H2, "2单元中心户", 5, B1, Point(120.9014, 32.0014), None),
        (H3, "阳光小区2栋中心户", 5, B2, Point(120.9017, 32.0012), None),
    ]
    records = [
        BoundaryRecord(row=i, code=code, name=name, level=level, parent_code=parent,
                       geometry=geom, leader=f"组长{i}", phone=f"1380000000{i % 10}",
                       address=address)
        for i, (code, name, level, parent, geom, address) in enumerate(rows, start=1)
    ]
    records[-3].service_area = box(120.9010, 32.0010, 120.90115, 32.00115)
    records[-2].properties = {"covers": ["2"]}
    return records


@pytest.fixture
def client(settings: Settings):
    settings = Settings(database_url=settings.database_url, instance_dir=settings.instance_dir,
                        index_check_seconds=0, batch_limit=5)
    with app_client(settings) as c:
        assert import_records(c.application.extensions["gridsvc"], tree(),
            viewer=cli_principal()).stored
        yield c


def last_code(response) -> str:
    assert response.status_code == 200, response.get_json()
    return response.get_json()["chain"][-1]["code"]


def at(client, lon: float, lat: float, coordsys: str = "wgs84"):
    return client.get(f"/api/v1/lookup?lon={lon!r}&lat={lat!r}&coordsys={coordsys}")


def test_shared_edges_and_vertex_go_to_east_and_north(client) -> None:
    assert last_code(at(client, X, 32.00125)) == B2  # vertical edge: east wins
    assert last_code(at(client, 120.90125, Y)) == B3  # horizontal edge: north wins
    assert last_code(at(client, X, Y)) == B4  # four corners: north-east wins
    assert last_code(at(client, 120.9010, 32.00125)) == B1  # own west side
    # B2's outer east side: no one owns it by step 1, so the building whose boundary holds it
    assert last_code(at(client, 120.9020, 32.00125)) == B2
    assert at(client, 120.90201, 32.00125).status_code == 404


def test_not_covered_answers_404_with_the_nearest(client) -> None:
    response = at(client, 120.9025, 32.0012)  # about 47 m east of B2, in G1's yard
    assert response.status_code == 404
    assert response.mimetype == "application/problem+json"
    body = response.get_json()
    assert body["type"] == "/problems/not-covered"
    assert body["nearest"]["code"] == B2 and body["nearest"]["fallback"] is True
    assert 40 < body["nearest"]["distance_m"] < 55
    far = at(client, 120.95, 32.0012).get_json()
    assert far["type"] == "/problems/not-covered" and far["nearest"] is None
    assert client.get("/problems/not-covered").status_code == 200


def test_bad_requests_name_the_field(client) -> None:
    cases = {
        f"/api/v1/lookup?lon={X}&lat=32.0012": "coordsys",
        f"/api/v1/lookup?lon=32.0012&lat={X}&coordsys=wgs84": "lat",
        "/api/v1/lookup?lon=2.35&lat=48.85&coordsys=wgs84": "lon",
        f"/api/v1/lookup?lon={X}&lat=32.0012&coordsys=mars": "coordsys",
        "/api/v1/lookup": "lon",
        f"/api/v1/lookup?lon={X}&lat=32.0012&coordsys=wgs84&address=x": "address",
    }
    for url, field in cases.items():
        response = client.get(url)
        assert response.status_code == 400, url
        assert response.get_json()["field"] == field, url


def test_household_rule(client) -> None:
    svc: Services = client.application.extensions["gridsvc"]
    index = svc.locator.current()
    row = index.row_of_code

    def rule(building: str, lon: float, lat: float, unit: str | None = None,
             radius: float = 300.0) -> tuple[str, str] | None:
        found = household_for(index, row[building], lon, lat, unit, radius)
        return (str(index.codes[found[0].row]), found[1]) if found else None

    assert rule(B1, 120.9014, 32.0014) == (H2, "building")  # nearest in the building
    assert rule(B1, 120.90105, 32.00105) == (H1, "area")  # in H1's service area
    assert rule(B1, 120.90105, 32.00105, "2") == (H1, "area")  # the area comes first
    assert rule(B1, 120.9011, 32.0014, "2") == (H2, "unit")  # covers 单元 2
    assert rule(B1, 120.9014, 32.0013, "7") == (H2, "building")  # no one covers 单元 7
    assert rule(B2, 120.9019, 32.0014) == (H3, "building")
    assert rule(B4, 120.9016, 32.0019) == (H2, "grid")  # B4 has none: nearest in G1
    assert rule(B4, 120.9016, 32.0019, radius=10) is None  # ... but not beyond the radius
    assert rule(B5, 120.9065, 32.0015) is None  # no household in G2 at all

    body = at(client, 120.90105, 32.00105).get_json()
    assert body["household"]["code"] == H1 and body["household"]["rule"] == "area"
    assert body["household"]["contact"] is None  # a member's own home: not to the public


def test_address_lookup_and_refusals(client) -> None:
    ok = client.get("/api/v1/lookup", query_string={"address": "阳光小区1栋2单元301室"})
    assert last_code(ok) == B1
    assert ok.get_json()["household"] == ok.get_json()["household"] | {"code": H2,
                                                                          "rule": "unit"}
    weak = client.get("/api/v1/lookup", query_string={"address": "幸福路1号阳光小区"})
    assert weak.status_code == 404
    body = weak.get_json()
    assert body["type"] == "/problems/address-not-resolved"
    assert body["match_status"] == "weak" and len(body["candidates"]) == 4


def test_batch_endpoint(client) -> None:
    items = [{"lon": X, "lat": 32.00125, "coordsys": "wgs84"}, {"address": "阳光小区3栋"},
             {"lon": X}, {"lon": 120.95, "lat": 32.0, "coordsys": "gcj02"}]
    response = client.post("/api/v1/lookup/batch?compact=1", json=items)
    assert response.status_code == 200
    body = response.get_json()
    assert [r["result"]["chain"][-1] for r in body["results"][:2]] == [B2, B3]
    assert body["results"][2]["problem"]["field"] == "lat"
    assert body["results"][3]["problem"]["type"] == "/problems/not-covered"
    assert body["units"][B2]["name"] == "阳光小区2栋"
    too_many = client.post("/api/v1/lookup/batch", json=items * 2)
    assert too_many.status_code == 400 and too_many.get_json()["field"] == "body"
    broken = client.post("/api/v1/lookup/batch", data=b"[{", content_type="application/json")
    assert broken.status_code == 400 and broken.get_json()["field"] == "body"


def _upload(text: str, name: str = "addresses.csv") -> dict:
    return {"data": {"file": (io.BytesIO(text.encode("utf-8")), name)},
            "content_type": "multipart/form-data"}


def test_gazetteer_import_is_admin_only_and_reports_rows(client, settings: Settings) -> None:
    csv_text = ("address,lon,lat,coordsys,unit_code\n"
                f"人民路7号阳光小区3栋,120.9012,32.0017,wgs84,{B3}\n"
                ",120.9,32.0,wgs84,\n"
                "人民路8号,120.9,32.0,,\n")
    assert client.post("/api/v1/gazetteer/import", **_upload(csv_text)).status_code == 401
    wrong = {"Authorization": "Bearer nope"}
    response = client.post("/api/v1/gazetteer/import", headers=wrong, **_upload(csv_text))
    assert response.status_code == 401
    assert response.headers["WWW-Authenticate"].startswith("Bearer")
    for role in ("planner", "staff"):  # the address list is city-wide: admin only
        response = client.post("/api/v1/gazetteer/import", headers=bearer(settings, role),
                               **_upload(csv_text))
        assert response.status_code == 403
        assert response.get_json()["type"] == "/problems/forbidden"
    good = bearer(settings, "admin")
    response = client.post("/api/v1/gazetteer/import", headers=good, **_upload(csv_text))
    assert response.status_code == 200
    report = response.get_json()
    assert report["stored"] == 1 and report["rejected"] == 2
    assert [(p["row"], p["field"]) for p in report["problems"]] == [(2, "address"),
                                                                    (3, "coordsys")]
    found = client.get("/api/v1/lookup", query_string={"address": "人民路7号阳光小区3栋"})
    assert last_code(found) == B3
    bad = client.post("/api/v1/gazetteer/import", headers=good, **_upload("x", "a.txt"))
    assert bad.status_code == 400 and bad.get_json()["field"] == "file"


def test_index_follows_changes_made_by_another_process(client, settings: Settings) -> None:
    reader: Services = client.application.extensions["gridsvc"]
    assert lookup_point(reader, 120.9012, 32.0012, "wgs84")["chain"][-1]["name"] == "阳光小区1栋"
    writer = Services.from_settings(settings)  # a second process
    try:
        assert import_records(writer, tree(b1_name="阳光小区一号楼"), viewer=cli_principal()).stored
    finally:
        writer.close()
    assert lookup_point(reader, 120.9012, 32.0012, "wgs84")["chain"][-1]["name"] == (
        "阳光小区一号楼")


def test_readers_only_see_complete_indexes_during_rebuilds(client) -> None:
    svc: Services = client.application.extensions["gridsvc"]
    versions = [tree("和平街道", "阳光小区1栋"), tree("新和平街道", "新阳光小区1栋")]
    seen: set[tuple[str, str]] = set()
    errors: list[BaseException] = []
    stop = threading.Event()

    def read() -> None:
        try:
            while not stop.is_set():
                chain = lookup_point(svc, 120.9012, 32.0012, "wgs84")["chain"]
                assert len(chain) == 4
                seen.add((chain[0]["name"], chain[-1]["name"]))
        except BaseException as exc:  # reported below
            errors.append(exc)

    threads = [threading.Thread(target=read) for _ in range(3)]
    for t in threads:
        t.start()
    for n in range(6):
        import_records(svc, versions[(n + 1) % 2], viewer=cli_principal())
        svc.locator.refresh()
    stop.set()
    for t in threads:
        t.join()
    assert not errors
    assert seen <= {("和平街道", "阳光小区1栋"), ("新和平街道", "新阳光小区1栋")}
    assert len(seen) == 2


def test_lookup_responses_match_the_openapi_document(client) -> None:
    doc = openapi_document()
    good = {"Authorization": "Bearer s3cret"}
    calls = [
        ("get", "/api/v1/lookup", {"query_string": {"lon": X, "lat": 32.0012,
                                                    "coordsys": "wgs84"}}),
        ("get", "/api/v1/lookup", {"query_string": {"address": "阳光小区2栋"}}),
        ("get", "/api/v1/lookup", {"query_string": {"address": "阳光小区"}}),
        ("get", "/api/v1/lookup", {"query_string": {"lon": 120.95, "lat": 32.0,
                                                    "coordsys": "wgs84"}}),
        ("get", "/api/v1/lookup", {"query_string": {"lon": X}}),
        ("post", "/api/v1/lookup/batch", {"json": [{"lon": X, "lat": 32.0012,
                                                    "coordsys": "bd09"}, {"address": "x"}]}),
        ("post", "/api/v1/lookup/batch?compact=1", {"json": [{"address": "阳光小区2栋"}]}),
        ("post", "/api/v1/lookup/batch", {"json": {"no": "list"}}),
        ("post", "/api/v1/gazetteer/import", {"headers": good, **_upload(
            "address,lon,lat,coordsys\n人民路7号,120.9,32.0,wgs84\n,1,2,wgs84\n")}),
        ("post", "/api/v1/gazetteer/import", _upload("address\n")),
    ]
    for method, url, kwargs in calls:
        response = getattr(client, method)(url, **kwargs)
        path = url.split("?")[0]
        responses = doc["paths"][path][method]["responses"]
        assert str(response.status_code) in responses, (url, response.status_code)
        entry = responses[str(response.status_code)]
        while "$ref" in entry:
            entry = doc["components"]["responses"][entry["$ref"].rsplit("/", 1)[1]]
        schema = entry["content"][response.mimetype]["schema"]
        validator = Draft202012Validator({**schema, "components": doc["components"]})
        errors = [e.message for e in validator.iter_errors(response.get_json())]
        assert not errors, (url, errors[:3])


def test_cli_lookup_and_gazetteer_import(client, settings: Settings, tmp_path: Path) -> None:
    runner = CliRunner()
    env = {"GRIDSVC_DATABASE_URL": settings.database_url}
    result = runner.invoke(cli, ["lookup", "--lon", "120.9012", "--lat", "32.0012",
                                 "--coordsys", "wgs84"], env=env)
    assert result.exit_code == 0, result.output
    assert B1 in result.output and "楼栋党小组" in result.output and H1 in result.output
    result = runner.invoke(cli, ["lookup", "--address", "阳光小区2栋", "--json"], env=env)
    assert result.exit_code == 0 and '"code": "' + B2 + '"' in result.output
    result = runner.invoke(cli, ["lookup", "--lon", "120.9025", "--lat", "32.0012",
                                 "--coordsys", "wgs84"], env=env)
    assert result.exit_code == 1 and f"nearest unit: {B2}" in result.output
    result = runner.invoke(cli, ["lookup", "--lon", "120.9"], env=env)
    assert result.exit_code == 1 and "lat is required" in result.output
    result = runner.invoke(cli, ["lookup"], env=env)
    assert result.exit_code == 2

    bad = tmp_path / "bad.csv"
    bad.write_text("address,lon,lat,coordsys\n,1,2,wgs84\n", encoding="utf-8")
    result = runner.invoke(cli, ["import-gazetteer", str(bad)], env=env)
    assert result.exit_code == 1 and "address is empty" in result.output
    good = tmp_path / "good.csv"
    good.write_text("address,lon,lat,coordsys\n人民路7号阳光小区3栋,120.9012,32.0017,gcj02\n",
                    encoding="gb18030")
    result = runner.invoke(cli, ["import-gazetteer", str(good)], env=env)
    assert result.exit_code == 0 and "1 stored, 0 rejected" in result.output


# --- the columnar batch form, the single-point fast path -------------------------------------


@pytest.fixture
def big_client(settings: Settings):
    settings = Settings(database_url=settings.database_url, instance_dir=settings.instance_dir,
                        index_check_seconds=0, batch_limit=100)
    with app_client(settings) as c:
        assert import_records(c.application.extensions["gridsvc"], tree(),
            viewer=cli_principal()).stored
        yield c


# Points in buildings whose households are chosen by each rule: area, building, grid and none.
INSIDE = [(120.90105, 32.00105), (120.9014, 32.0014), (X, 32.00125), (120.90125, Y), (X, Y),
          (120.9016, 32.0019), (120.9065, 32.0015)]


def from_columns(body: dict) -> list[dict]:
    """The per-item entries of the full form, rebuilt from a columns answer: each chain by
    following ``parent`` up from the micro-grid through ``units``."""
    cols, table = body["columns"], body["units"]
    levels = {lv["level"]: lv for lv in body["levels"]}
    units = {row[0]: dict(zip(table["fields"], row, strict=True)) for row in table["rows"]}
    assert len(units) == len(table["rows"])  # each unit once

    def entry(code: str) -> dict:
        unit = units[code]
        level = levels[unit["level"]]
        return {"level": unit["level"], "level_key": level["key"], "level_name": level["name"],
                "code": code, "name": unit["name"],
                "contact": None if unit["leader"] is unit["phone"] is None else {
                    "name": unit["leader"], "phone": unit["phone"]}}

    def chain(code: str | None) -> list[dict]:
        found = []
        while code is not None:
            found.append(entry(code))
            code = units[code]["parent"]
        return found[::-1]

    entries = {p["index"]: p for p in body["problems"]}
    for k, n in enumerate(cols["index"]):
        match = {name: cols[name][k] for name in ("method", "coordsys", "score", "level",
                                                  "fallback", "distance_m")}
        if cols["address"][k] is not None:
            match["address"] = cols["address"][k]
        household = cols["household"][k]
        entries[n] = {"index": n, "result": {
            "chain": chain(cols["unit"][k]),
            "household": None if household is None else entry(household) | {
                "rule": cols["rule"][k]},
            "point": {"lon": cols["lon"][k], "lat": cols["lat"][k], "coordsys": "wgs84"},
            "match": match,
        }}
    assert sorted(entries) == list(range(body["count"]))
    return [entries[n] for n in range(body["count"])]


def test_columns_form_has_the_content_of_the_full_form(big_client) -> None:
    points = [{"lon": x, "lat": y, "coordsys": "wgs84"} for x, y in INSIDE]
    mixed = [*points[:3], {"address": "阳光小区1栋2单元301室"}, {"lon": X},
             {"lon": 120.9014, "lat": 32.0014, "coordsys": "gcj02"}, "nonsense",
             {"lon": 120.9025, "lat": 32.0012, "coordsys": "wgs84"},
             {"address": "幸福路1号阳光小区"}, *points[3:],
             {"lon": 2.35, "lat": 48.85, "coordsys": "wgs84"}]
    for items in (points, mixed, points[:1], []):
        full = big_client.post("/api/v1/lookup/batch", json=items)
        columns = big_client.post("/api/v1/lookup/batch?format=columns", json=items)
        assert full.status_code == columns.status_code == 200
        body = columns.get_json()
        assert body["format"] == "columns" and body["count"] == len(items)
        assert len({len(v) for v in body["columns"].values()}) <= 1  # parallel arrays
        assert from_columns(body) == full.get_json()["results"]
    body = big_client.post("/api/v1/lookup/batch?format=columns", json=mixed).get_json()
    assert body["columns"]["index"] == [0, 1, 2, 3, 9, 10, 11, 12]  # located, in item order
    assert [p["index"] for p in body["problems"]] == [4, 5, 6, 7, 8, 13]
    assert body["columns"]["rule"][:4] == ["area", "building", "building", "unit"]
    assert body["units"]["fields"] == ["code", "parent", "level", "name", "leader", "phone"]
    parent = {row[0]: row[1] for row in body["units"]["rows"]}
    assert parent[B1] == G1 and parent[S] is None and parent[H2] == B1


def test_a_big_batch_is_streamed_with_the_same_answer(big_client, monkeypatch) -> None:
    """Past ``CHUNK_ITEMS`` items the results form is streamed (chunked, no Content-Length),
    with the body a one-piece answer would have."""
    from gridsvc.services import lookup_batch as batch

    items = [{"lon": x, "lat": y, "coordsys": "wgs84"} for x, y in INSIDE] + [{"lon": X}]
    for query in ("", "?compact=1"):
        whole = big_client.post("/api/v1/lookup/batch" + query, json=items)
        assert whole.headers.get("Content-Length") == str(len(whole.data))
        assert not whole.is_streamed
        monkeypatch.setattr(batch, "CHUNK_ITEMS", 3)
        streamed = big_client.post("/api/v1/lookup/batch" + query, json=items)
        monkeypatch.undo()
        assert streamed.status_code == 200 and "Content-Length" not in streamed.headers
        assert streamed.data == whole.data
        assert len(streamed.get_json()["results"]) == len(items)


def test_batch_format_is_checked(big_client) -> None:
    response = big_client.post("/api/v1/lookup/batch?format=rows", json=[])
    assert response.status_code == 400 and response.get_json()["field"] == "format"
    response = big_client.post("/api/v1/lookup/batch?format=columns", json={"no": "list"})
    assert response.status_code == 400 and response.get_json()["field"] == "body"


def test_single_lookup_answers_as_the_service_does(big_client) -> None:
    svc: Services = big_client.application.extensions["gridsvc"]
    for x, y in INSIDE:
        for coordsys in ("wgs84", "gcj02", "cgcs2000"):
            response = at(big_client, x, y, coordsys)
            if response.status_code == 404:  # a gcj02 input shifted off the buildings
                assert coordsys == "gcj02"
                continue
            assert response.get_json() == lookup_point(svc, x, y, coordsys)
    rules = [at(big_client, x, y).get_json()["household"] for x, y in INSIDE]
    assert [h and h["rule"] for h in rules] == ["area", "building", "building", "grid", "grid",
                                                "grid", None]


def test_single_point_household_rule_equals_the_vectorised_rule(big_client) -> None:
    index = big_client.application.extensions["gridsvc"].locator.current()
    rng = np.random.default_rng(7)
    # around B1-B4 and around B5, plus a vertex and points in and on H1's service area
    lon = np.concatenate([rng.uniform(120.9009, 120.9021, 3000),
                          rng.uniform(120.9059, 120.9071, 1000), [X, 120.9011, 120.90115]])
    lat = np.concatenate([rng.uniform(32.0009, 32.0021, 4000), [Y, 32.0011, 32.00115]])
    rows = index.polygons.locate_many(lon, lat)
    inside = rows >= 0
    assert inside.sum() > 2000
    for radius in (300.0, 10.0):
        hh, rule = households_many(index, rows[inside], lon[inside], lat[inside], radius)
        one = [household_one(index, r, x, y, radius) for r, x, y in zip(
            rows[inside].tolist(), lon[inside].tolist(), lat[inside].tolist(), strict=True)]
        assert one == list(zip(hh.tolist(), rule.tolist(), strict=True))
        if radius == 300.0:  # area, building, grid and none all occur
            assert set(rule.tolist()) == {0, 2, 3, -1}


def test_columns_answer_matches_the_openapi_document(big_client) -> None:
    doc = openapi_document()
    entry = doc["paths"]["/api/v1/lookup/batch"]["post"]["responses"]["200"]
    validator = Draft202012Validator({**entry["content"]["application/json"]["schema"],
                                      "components": doc["components"]})
    items = [{"lon": X, "lat": 32.0012, "coordsys": "bd09"}, {"address": "阳光小区2栋"},
             {"lon": 120.90105, "lat": 32.00105, "coordsys": "wgs84"}, {"address": "x"}]
    for query in ("?format=columns", "", "?compact=1&format=results"):
        body = big_client.post("/api/v1/lookup/batch" + query, json=items).get_json()
        errors = [e.message for e in validator.iter_errors(body)]
        assert not errors, (query, errors[:3])
    params = {p["name"]: p for p in doc["paths"]["/api/v1/lookup/batch"]["post"]["parameters"]}
    assert params["format"]["schema"]["enum"] == ["results", "columns"]

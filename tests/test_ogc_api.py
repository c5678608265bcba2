"""OGC API - Features at /ogc through Flask's test client, on both databases: the Part 1
resources (links, paging, bbox, HTML, OpenAPI), scoping to the token's subtree, and the Part 4
writes (validation as an import, If-Match / version, 428 / 412 / 409 / 403 / 415)."""

from __future__ import annotations

import re
from urllib.parse import parse_qs, urlsplit

import pytest
import shapely
from api_support import ALL_CODES, B1, B2, C1, C2, G1, G2, G3, H1, S, app_client, bearer
from ogc_support import FREE_IN_C2, G3_BOX, OUTSIDE_C2, add_members, feature, ogc_records
from shapely.geometry import box, mapping
from sqlalchemy import select

from gridsvc.access import cli_principal
from gridsvc.services import audit
from gridsvc.services.boundaries import import_records
from gridsvc.storage.models import Member, Unit
from gridsvc.web.ogc import CONFORMANCE
from gridsvc.web.ogc_openapi import OPENAPI_MEDIA

pytestmark = pytest.mark.storage

LEVELS = ["street", "community", "grid", "building", "household"]
PROPERTIES = ["code", "name", "level", "parent_code", "leader", "phone", "households",
              "address", "version"]
NEW = C2 + "09"  # a new grid in the free strip of C2


@pytest.fixture
def client(settings):
    with app_client(settings) as c:
        svc = c.application.extensions["gridsvc"]
        assert import_records(svc, ogc_records(), viewer=cli_principal()).stored
        yield c


@pytest.fixture
def admin(settings):
    return bearer(settings, "admin")


def stored(client, code: str) -> tuple[int, shapely.Geometry, str] | None:
    """(version, geometry, name) of a stored unit, read from the database."""
    svc = client.application.extensions["gridsvc"]
    with svc.db.session() as s:
        unit = s.scalar(select(Unit).where(Unit.code == code))
        if unit is None:
            return None
        from gridsvc.storage import units as q
        return unit.version, q.geometries([unit])[0], unit.name


def rels(body: dict) -> dict[str, dict]:
    """Each rel's first link."""
    out: dict[str, dict] = {}
    for link in body["links"]:
        out.setdefault(link["rel"], link)
    return out


def item_url(collection: str, code: str) -> str:
    return f"/ogc/collections/{collection}/items/{code}"


# -- Part 1 ------------------------------------------------------------------------------------

def test_landing_conformance_and_api_are_public_and_linked(client):
    for path in ("/ogc", "/ogc/"):
        body = client.get(path).get_json()
        links = rels(body)
        assert {"self", "alternate", "service-desc", "service-doc", "conformance",
                "data"} <= set(links)
        assert links["service-desc"]["type"] == OPENAPI_MEDIA
        assert links["alternate"]["type"] == "text/html"
        assert urlsplit(links["data"]["href"]).path == "/ogc/collections"
    conformance = client.get("/ogc/conformance").get_json()["conformsTo"]
    assert conformance == CONFORMANCE
    assert {"core", "geojson", "html", "oas30", "create-replace-delete", "update"} <= {
        c.rsplit("/", 1)[-1] for c in conformance}
    api = client.get("/ogc/api")
    assert api.headers["Content-Type"].startswith(OPENAPI_MEDIA)
    assert api.get_json()["openapi"].startswith("3.0")


def test_the_openapi_document_lists_exactly_the_ogc_routes(client):
    doc = client.get("/ogc/api").get_json()
    documented = {(m, p.rstrip("/") or "/") for p, item in doc["paths"].items() for m in item}
    routes = set()
    for rule in client.application.url_map.iter_rules():
        if rule.rule == "/ogc" or rule.rule.startswith("/ogc/"):
            path = re.sub(r"<(?:[^:<>]+:)?([^<>]+)>", r"{\1}", rule.rule[len("/ogc"):]) or "/"
            path = path.replace("{collection_id}", "{collectionId}").replace(
                "{feature_id}", "{featureId}")
            routes |= {(m.lower(), path.rstrip("/") or "/") for m in rule.methods or ()
                       if m not in ("HEAD", "OPTIONS")}
    assert documented == routes
    params = doc["paths"]["/collections/{collectionId}"]["get"]["parameters"]
    assert params[0]["schema"]["enum"] == LEVELS
    refs = re.findall(r"'\$ref': '#/([^']+)'", repr(doc))
    assert len(refs) > 10
    for ref in refs:  # every reference resolves
        node = doc
        for part in ref.split("/"):
            node = node[part]


def test_reads_need_a_live_token_that_may_read_units(client, settings):
    for path in ("/ogc/collections", "/ogc/collections/grid", "/ogc/collections/grid/items",
                 item_url("grid", G1)):
        for headers in ({}, {"Authorization": "Bearer gs_nope"}):
            resp = client.get(path, headers=headers)
            assert resp.status_code == 401 and resp.mimetype == "application/problem+json"
    staff = client.get("/ogc/collections/grid/items", headers=bearer(settings, "staff"))
    assert staff.status_code == 200 and staff.get_json()["numberMatched"] == 3


def test_collections_have_one_per_level_with_crs84_extents(client, admin):
    body = client.get("/ogc/collections", headers=admin).get_json()
    assert [c["id"] for c in body["collections"]] == LEVELS
    by_id = {c["id"]: c for c in body["collections"]}
    assert by_id["street"]["extent"]["spatial"]["bbox"] == [[120.9, 32.0, 120.906, 32.004]]
    assert by_id["household"]["extent"]["spatial"]["bbox"] == [[120.9007, 32.0007] * 2]
    assert all(c["itemType"] == "feature" for c in body["collections"])
    grid = client.get("/ogc/collections/grid", headers=admin).get_json()
    assert grid["id"] == "grid" and rels(grid)["items"]["type"] == "application/geo+json"
    assert client.get("/ogc/collections/nope", headers=admin).status_code == 404


def test_items_page_with_links_until_every_feature_is_read(client, admin):
    url = "/ogc/collections/grid/items?limit=1"
    codes, pages = [], 0
    while url:
        resp = client.get(url, headers=admin)
        assert resp.status_code == 200 and resp.mimetype == "application/geo+json"
        body = resp.get_json()
        assert body["numberMatched"] == 3 and body["numberReturned"] == 1
        assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", body["timeStamp"])
        links = rels(body)
        assert ("prev" in links) == (pages > 0)
        codes += [f["id"] for f in body["features"]]
        assert list(body["features"][0]["properties"]) == PROPERTIES
        url = links["next"]["href"] if "next" in links else None
        pages += 1
    assert codes == [G1, G2, G3] and pages == 3
    last = client.get("/ogc/collections/grid/items?limit=1&offset=2", headers=admin).get_json()
    prev = parse_qs(urlsplit(rels(last)["prev"]["href"]).query)
    assert prev["offset"] == ["1"] and prev["limit"] == ["1"]
    big = client.get("/ogc/collections/building/items?limit=5000", headers=admin).get_json()
    assert big["numberReturned"] == 2 and "limit=1000" in rels(big)["self"]["href"]


@pytest.mark.parametrize("query, field", [
    ("limit=0", "limit"), ("offset=-1", "offset"), ("limit=x", "limit"),
    ("bbox=1,2,3", "bbox"), ("bbox=120.91,32,120.90,32.1", "bbox"),
    ("bbox=120,32,121,33&bbox-crs=http://www.opengis.net/def/crs/EPSG/0/3857", "bbox-crs"),
    ("bbox=120,32,121,33&bbox-crs=http://www.opengis.net/def/crs/EPSG/0/4326", "bbox"),  # lat
    ("bbox=3542654,585612,3542206,585045&bbox-crs=EPSG:4549", "bbox"),  # min > max
    ("crs=EPSG:3857", "crs"), ("crs=http://www.opengis.net/def/crs/EPSG/0/4555", "crs"),
    ("sortby=colour", "sortby"), ("f=xml", "f"), ("households=x", "households"),
    ("filter=name ((", "filter"), ("filter=colour = 'red'", "filter"),
    ("filter=households = 'three'", "filter"), ("filter=T_AFTER(name, '2020')", "filter"),
    ("filter-lang=xml&filter=code='x'", "filter-lang"), ("filter={&filter-lang=cql2-json",
                                                         "filter"),
    ("filter-crs=EPSG:3857&filter=code='x'", "filter-crs"),
])
def test_bad_item_queries_are_400_naming_the_parameter(client, admin, query, field):
    resp = client.get(f"/ogc/collections/grid/items?{query}", headers=admin)
    assert resp.status_code == 400 and resp.get_json()["field"] == field


def test_bbox_keeps_the_features_that_intersect_it(client, admin):
    def codes(bbox: str, collection: str = "grid") -> list[str]:
        body = client.get(f"/ogc/collections/{collection}/items?bbox={bbox}",
                          headers=admin).get_json()
        assert body["numberMatched"] == len(body["features"])
        return [f["id"] for f in body["features"]]

    assert codes("120.9041,32.0001,120.9059,32.0039") == [G3]
    assert codes("120.9001,32.0021,120.9029,32.0039") == [G2]
    assert codes("120.9001,32.0001,120.9029,32.0039") == [G1, G2]
    assert codes("120.91,32.01,120.92,32.02") == []
    crs84 = "&bbox-crs=http://www.opengis.net/def/crs/OGC/1.3/CRS84"
    assert codes("120.9016,32.0006,120.9019,32.0009" + crs84, "building") == [B2]
    assert codes("120.9016,32.0006,0,120.9019,32.0009,10", "building") == [B2]  # 3D bbox


def test_an_item_has_its_etag_links_and_answers_if_none_match(client, admin):
    resp = client.get(item_url("household", H1), headers=admin)
    assert resp.status_code == 200 and resp.headers["ETag"] == f'"{H1}-1"'
    body = resp.get_json()
    assert body["id"] == H1 and body["geometry"] == {"type": "Point",
                                                     "coordinates": [120.9007, 32.0007]}
    assert body["properties"]["parent_code"] == B1 and body["properties"]["phone"]
    assert {"self", "alternate", "collection"} <= set(rels(body))
    again = client.get(item_url("household", H1), headers=admin | {"If-None-Match": f'"{H1}-1"'})
    assert again.status_code == 304
    assert client.get(item_url("grid", H1), headers=admin).status_code == 404  # other level
    assert client.get(item_url("grid", "nope"), headers=admin).status_code == 404


def test_html_by_f_or_by_a_browsers_accept(client, admin):
    browser = {"Accept": "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8"}
    for path in ("/ogc", "/ogc/conformance", "/ogc/api", "/ogc/collections",
                 "/ogc/collections/grid", "/ogc/collections/grid/items",
                 item_url("grid", G1)):
        resp = client.get(path, headers=admin | browser)
        assert resp.status_code == 200 and resp.mimetype == "text/html", path
        assert "Accept" in resp.vary
    page = client.get("/ogc/collections/grid/items?f=html&limit=2", headers=admin).get_data(
        as_text=True)
    assert "阳光第一网格" in page and f"/ogc/collections/grid/items/{G1}?f=html" in page
    assert "offset=2" in page  # the next page's link
    item = client.get(item_url("grid", G1) + "?f=html", headers=admin).get_data(as_text=True)
    assert "阳光第一网格" in item and "MultiPolygon" in item
    assert client.get("/ogc/collections/grid/items?f=json", headers=admin | browser
                      ).mimetype == "application/geo+json"


def test_a_scoped_planner_sees_only_their_subtree(client, settings):
    c1 = bearer(settings, "planner", unit=C1)
    body = client.get("/ogc/collections", headers=c1).get_json()
    counts = {c["id"]: c.get("extent", {}).get("spatial", {}).get("bbox") for c in
              body["collections"]}
    assert counts["street"] is None  # the street is above the scope: not theirs to read
    assert counts["grid"] == [[120.9, 32.0, 120.903, 32.004]]
    items = client.get("/ogc/collections/grid/items", headers=c1).get_json()
    assert [f["id"] for f in items["features"]] == [G1, G2] and items["numberMatched"] == 2
    assert client.get(item_url("grid", G3), headers=c1).status_code == 404
    assert client.get(item_url("street", S), headers=c1).status_code == 404
    everything = [f["id"] for level in LEVELS for f in client.get(
        f"/ogc/collections/{level}/items", headers=c1).get_json()["features"]]
    assert everything == [C1, G1, G2, B1, B2, H1]
    assert set(ALL_CODES) - set(everything) == {S, C2, G3}


# -- Part 4 ------------------------------------------------------------------------------------

def test_create_replace_update_delete_a_grid(client, admin):
    new = feature(NEW, FREE_IN_C2, C2, leader="李娜", phone="13900000000")
    resp = client.post("/ogc/collections/grid/items", json=new, headers=admin)
    assert resp.status_code == 201, resp.get_json()
    assert resp.headers["Location"].endswith(item_url("grid", NEW))
    assert resp.headers["ETag"] == f'"{NEW}-1"'
    assert resp.get_json()["properties"]["parent_code"] == C2
    version, geom, _ = stored(client, NEW)
    assert version == 1 and shapely.equals(geom, FREE_IN_C2)

    again = client.post("/ogc/collections/grid/items", json=new, headers=admin)
    assert again.status_code == 409 and again.get_json()["type"] == "/problems/conflict"

    smaller = box(120.9031, 32.0005, 120.9039, 32.0025)
    replaced = feature(NEW, smaller, C2, name="新网格(改)")
    resp = client.put(item_url("grid", NEW), json=replaced, headers=admin | {
        "If-Match": f'"{NEW}-1"'})
    assert resp.status_code == 200 and resp.headers["ETag"] == f'"{NEW}-2"'
    body = resp.get_json()
    assert body["properties"]["leader"] is None  # a replace clears what it leaves out
    assert stored(client, NEW)[0] == 2 and stored(client, NEW)[2] == "新网格(改)"

    resp = client.patch(item_url("grid", NEW), data='{"properties": {"version": 2, '
                        '"leader": "王强"}}', content_type="application/merge-patch+json",
                        headers=admin)
    assert resp.status_code == 200 and resp.get_json()["properties"]["leader"] == "王强"
    assert resp.get_json()["properties"]["name"] == "新网格(改)"  # a patch keeps the rest
    assert shapely.equals(stored(client, NEW)[1], smaller)

    assert client.delete(item_url("grid", NEW), headers=admin).status_code == 428
    assert client.delete(item_url("grid", NEW), headers=admin | {
        "If-Match": f'"{NEW}-2"'}).status_code == 412
    gone = client.delete(item_url("grid", NEW), headers=admin | {"If-Match": f'"{NEW}-3"'})
    assert gone.status_code == 200 and gone.get_json()["deleted"] == NEW
    assert stored(client, NEW) is None
    assert client.get(item_url("grid", NEW), headers=admin).status_code == 404

    svc = client.application.extensions["gridsvc"]
    entries = audit.query(svc, viewer=cli_principal(), target=f"unit:{NEW}", limit=20)
    actions = [(e["action"], e["status"]) for e in reversed(entries["items"])]
    assert [a for a in actions if a[1] < 300] == [
        ("POST /ogc/collections/<collection_id>/items", 201),
        ("PUT /ogc/collections/<collection_id>/items/<feature_id>", 200),
        ("PATCH /ogc/collections/<collection_id>/items/<feature_id>", 200),
        ("DELETE /ogc/collections/<collection_id>/items/<feature_id>", 200)]


@pytest.mark.parametrize("geometry, parent, extra, rule", [
    (OUTSIDE_C2, C2, {}, "outside-parent"),  # a grid outside its community
    (box(120.9031, 32.0005, 120.9045, 32.0035), C2, {}, "overlapping-siblings"),  # into G3
    (FREE_IN_C2, C2, {"level": "building"}, "wrong-collection"),
    (FREE_IN_C2, G3, {}, "parent-wrong-level"),
    (FREE_IN_C2, C2 + "x", {}, "unknown-parent"),
])
def test_an_invalid_create_is_422_with_the_report_and_stores_nothing(client, admin, geometry,
                                                                     parent, extra, rule):
    resp = client.post("/ogc/collections/grid/items", json=feature(NEW, geometry, parent,
                                                                    **extra), headers=admin)
    body = resp.get_json()
    assert resp.status_code == 422 and resp.mimetype == "application/problem+json", body
    assert body["type"] == "/problems/validation-failed"
    assert rule in {p["rule"] for p in body["report"]["problems"]}
    assert stored(client, NEW) is None


def test_an_invalid_update_is_422_and_changes_nothing(client, admin):
    into_g2 = mapping(box(120.900, 32.000, 120.903, 32.0025))
    resp = client.patch(item_url("grid", G1), json={"geometry": into_g2}, headers=admin | {
        "If-Match": f'"{G1}-1"'})
    assert resp.status_code == 422
    [overlap] = [p for p in resp.get_json()["report"]["problems"]
                 if p["rule"] == "overlapping-siblings"]
    assert {overlap["code"], overlap["other_code"]} == {G1, G2}
    version, geom, _ = stored(client, G1)
    assert version == 1 and shapely.equals(geom, box(120.900, 32.000, 120.903, 32.002))


def test_replace_and_update_need_the_version_they_change(client, admin):
    body = feature(G3, G3_BOX, C2, name="幸福网格")
    resp = client.put(item_url("grid", G3), json=body, headers=admin)
    assert resp.status_code == 428 and resp.get_json()["type"] == "/problems/precondition-required"
    assert client.patch(item_url("grid", G3), json={"properties": {"name": "x"}},
                        headers=admin).status_code == 428
    assert client.put(item_url("grid", G3), json=body, headers=admin | {
        "If-Match": "*"}).status_code == 428
    stale = client.put(item_url("grid", G3), json=body, headers=admin | {
        "If-Match": f'"{G3}-0"'})
    assert stale.status_code == 412 and stale.get_json()["type"] == "/problems/precondition-failed"
    body["properties"]["version"] = 3
    assert client.put(item_url("grid", G3), json=body, headers=admin).status_code == 412
    body["properties"]["version"] = 1
    ok = client.put(item_url("grid", G3), json=body | {"properties": body["properties"] | {
        "name": "幸福网格(新)"}}, headers=admin)
    assert ok.status_code == 200 and ok.headers["ETag"] == f'"{G3}-2"'
    assert client.put(item_url("grid", G3), json=body, headers=admin | {
        "If-Match": f'"{G3}-2"'}).status_code == 400  # If-Match and version disagree
    assert stored(client, G3)[2] == "幸福网格(新)"


def test_a_patch_and_a_delete_move_members_as_an_editor_save_does(client, admin):
    svc = client.application.extensions["gridsvc"]
    members = add_members(svc)
    zhao = members["13800000003"]  # at 120.9017 in B2
    wider = mapping(box(120.9005, 32.0005, 120.9012, 32.0010))  # B1 grows east: nobody moves
    resp = client.patch(item_url("building", B1), json={"geometry": wider, "properties": {
        "version": 1}}, headers=admin)
    assert resp.status_code == 200 and resp.get_json()["moves"] == []
    east = mapping(box(120.9018, 32.0005, 120.9020, 32.0010))  # B2 shrinks off 赵敏's home
    resp = client.patch(item_url("building", B2), json={"geometry": east}, headers=admin | {
        "If-Match": f'"{B2}-1"'})
    [move] = resp.get_json()["moves"]
    assert move["id"] == zhao and move["to"][-1] == B2 and move["fallback"]
    with svc.db.session() as s:
        assert s.get(Member, zhao).status == "needs-confirmation"
    gone = client.delete(item_url("building", B2), headers=admin | {"If-Match": f'"{B2}-2"'})
    [move] = gone.get_json()["moves"]
    assert move["id"] == zhao and move["from"][-1] == B2 and move["to"][-1] == B1
    with svc.db.session() as s:
        b1 = s.scalar(select(Unit.id).where(Unit.code == B1))
        assert s.get(Member, zhao).building_id == b1


def test_writes_keep_to_the_planners_subtree(client, settings):
    c1 = bearer(settings, "planner", unit=C1)
    new = feature(NEW, FREE_IN_C2, C2)
    resp = client.post("/ogc/collections/grid/items", json=new, headers=c1)
    assert resp.status_code == 403 and resp.get_json()["type"] == "/problems/forbidden"
    assert stored(client, NEW) is None
    for method in ("put", "patch"):
        resp = getattr(client, method)(item_url("grid", G3), json=feature(
            G3, G3_BOX, C2, version=1), headers=c1)
        assert resp.status_code == 403, method
    assert client.delete(item_url("grid", G3), headers=c1 | {
        "If-Match": f'"{G3}-1"'}).status_code == 403
    moved = client.patch(item_url("grid", G2), json={"properties": {"parent_code": C2,
                                                                    "version": 1}}, headers=c1)
    assert moved.status_code == 403  # moving a unit out of the subtree
    top = client.post("/ogc/collections/street/items", json=feature(
        "9", box(121, 32, 121.01, 32.01), None), headers=c1)
    assert top.status_code == 403
    inside = client.patch(item_url("grid", G2), json={"properties": {"name": "二网格",
                                                                      "version": 1}}, headers=c1)
    assert inside.status_code == 200 and stored(client, G2)[2] == "二网格"
    assert stored(client, G3)[0] == 1


def test_writes_need_edit_rights_and_a_json_feature(client, settings, admin):
    new = feature(NEW, FREE_IN_C2, C2)
    assert client.post("/ogc/collections/grid/items", json=new).status_code == 401
    staff = client.post("/ogc/collections/grid/items", json=new,
                        headers=bearer(settings, "staff"))
    assert staff.status_code == 403
    xml = client.post("/ogc/collections/grid/items", data="<x/>", content_type="text/xml",
                      headers=admin)
    assert xml.status_code == 415 and xml.mimetype == "application/problem+json"
    for body, field in ([1, 2], "body"), ({"type": "Feature", "geometry": None,
                                           "properties": {"code": NEW}}, "geometry"), (
            new | {"properties": new["properties"] | {"colour": "red"}}, "colour"), (
            new | {"id": "other"}, "code"):
        resp = client.post("/ogc/collections/grid/items", json=body, headers=admin)
        assert resp.status_code == 400 and resp.get_json()["field"] == field, body
    renamed = client.put(item_url("grid", G3), json=feature("other", G3_BOX, C2, version=1),
                         headers=admin)
    assert renamed.status_code == 400 and renamed.get_json()["field"] == "code"
    assert stored(client, NEW) is None and stored(client, G3)[0] == 1


def test_optional_preconditions_let_desktop_clients_write_against_the_stored_version(
        settings):
    """GRIDSVC_OGC_PRECONDITION=optional: a PATCH or DELETE with neither If-Match nor a version
    (as QGIS sends them) is still validated, and applies to the version stored now."""
    import dataclasses

    with app_client(dataclasses.replace(settings, ogc_precondition="optional")) as c:
        assert import_records(c.application.extensions["gridsvc"], ogc_records(),
            viewer=cli_principal()).stored
        admin = bearer(settings, "admin")
        renamed = c.patch(item_url("grid", G3), json={"properties": {"name": "新幸福网格"}},
                          headers=admin)
        assert renamed.status_code == 200, renamed.get_json()
        assert stored(c, G3)[0] == 2 and stored(c, G3)[2] == "新幸福网格"
        outside = c.patch(item_url("grid", G3), headers=admin, json={
            "type": "Feature", "geometry": mapping(box(120.95, 32.0, 120.96, 32.01))})
        assert outside.status_code == 422  # still validated as an import
        assert stored(c, G3)[0] == 2
        stale = c.patch(item_url("grid", G3), json={"properties": {"name": "x", "version": 1}},
                        headers=admin)
        assert stale.status_code == 412  # a version that is sent is still checked


# -- Part 2 (CRS) ------------------------------------------------------------------------------

EPSG = "http://www.opengis.net/def/crs/EPSG/0/"
CRS84 = "http://www.opengis.net/def/crs/OGC/1.3/CRS84"


def gauss_kruger(epsg: int, lon: float, lat: float) -> tuple[float, float]:
    """(northing, easting) of a CGCS2000 lon/lat in a 3-degree zone, by pyproj directly."""
    from pyproj import Transformer

    easting, northing = Transformer.from_crs("EPSG:4490", f"EPSG:{epsg}",
                                             always_xy=True).transform(lon, lat)
    return northing, easting


def test_collections_offer_the_supported_crs_and_store_crs84(client, admin):
    grid = client.get("/ogc/collections/grid", headers=admin).get_json()
    assert grid["storageCrs"] == CRS84 and grid["crs"][0] == CRS84
    assert {EPSG + "4326", EPSG + "4490", EPSG + "4513", EPSG + "4549", EPSG + "4554"} <= set(
        grid["crs"])
    assert len(grid["crs"]) == 1 + 2 + 42
    conformance = client.get("/ogc/conformance").get_json()["conformsTo"]
    assert "http://www.opengis.net/spec/ogcapi-features-2/1.0/conf/crs" in conformance


@pytest.mark.parametrize("name", ["EPSG:4549", EPSG + "4549", "[EPSG:4549]",
                                  "urn:ogc:def:crs:EPSG::4549"])
def test_items_in_a_gauss_kruger_zone_are_northing_easting(client, admin, name):
    resp = client.get(f"/ogc/collections/household/items?crs={name}", headers=admin)
    assert resp.status_code == 200 and resp.headers["Content-Crs"] == f"<{EPSG}4549>"
    [house] = resp.get_json()["features"]
    north, east = house["geometry"]["coordinates"]
    expected = gauss_kruger(4549, 120.9007, 32.0007)
    assert north == pytest.approx(expected[0], abs=1e-3) and 3.5e6 < north < 3.6e6
    assert east == pytest.approx(expected[1], abs=1e-3) and 5e5 < east < 6e5
    one = client.get(item_url("household", H1) + f"?crs={name}", headers=admin)
    assert one.headers["Content-Crs"] == f"<{EPSG}4549>"
    assert one.get_json()["geometry"]["coordinates"] == pytest.approx([north, east])
    zone40 = client.get(item_url("household", H1) + "?crs=EPSG:4528", headers=admin).get_json()
    assert zone40["geometry"]["coordinates"][1] == pytest.approx(40e6 + east)  # zone prefix


def test_epsg_4326_and_4490_are_lat_lon_and_crs84_is_lon_lat(client, admin):
    for code in ("4326", "4490"):
        resp = client.get(item_url("household", H1) + f"?crs={EPSG}{code}", headers=admin)
        assert resp.get_json()["geometry"]["coordinates"] == pytest.approx([32.0007, 120.9007])
        assert resp.headers["Content-Crs"] == f"<{EPSG}{code}>"
    plain = client.get(item_url("household", H1), headers=admin)
    assert plain.headers["Content-Crs"] == f"<{CRS84}>"
    assert plain.get_json()["geometry"]["coordinates"] == [120.9007, 32.0007]


def test_bbox_in_another_crs_selects_what_its_crs84_twin_does(client, admin):
    def codes(query: str) -> list[str]:
        body = client.get(f"/ogc/collections/grid/items?{query}", headers=admin).get_json()
        return [f["id"] for f in body["features"]]

    south, west = gauss_kruger(4549, 120.9041, 32.0001)
    north, east = gauss_kruger(4549, 120.9059, 32.0039)
    gk = f"bbox={south},{west},{north},{east}&bbox-crs=EPSG:4549"
    assert codes(gk) == codes("bbox=120.9041,32.0001,120.9059,32.0039") == [G3]
    assert codes(f"bbox=32.0021,120.9001,32.0039,120.9029&bbox-crs={EPSG}4326") == [G2]
    both = codes(f"bbox=32.0021,120.9001,32.0039,120.9029&bbox-crs={EPSG}4326&crs=EPSG:4549")
    assert both == [G2]


def test_an_unsupported_crs_is_a_400_listing_the_supported_ones(client, admin):
    for query, field in (("crs=EPSG:3857", "crs"), ("bbox-crs=EPSG:2385&bbox=1,2,3,4",
                                                     "bbox-crs")):
        resp = client.get(f"/ogc/collections/grid/items?{query}", headers=admin)
        body = resp.get_json()
        assert resp.status_code == 400 and resp.mimetype == "application/problem+json"
        assert body["field"] == field and EPSG + "4549" in body["supported"]
        assert "4513" in body["detail"] and "4554" in body["detail"]
    one = client.get(item_url("grid", G1) + "?crs=EPSG:900913", headers=admin)
    assert one.status_code == 400 and one.get_json()["field"] == "crs"
    written = client.post("/ogc/collections/grid/items", json=feature(NEW, FREE_IN_C2, C2),
                          headers=admin | {"Content-Crs": "<EPSG:3857>"})
    assert written.status_code == 400 and written.get_json()["field"] == "Content-Crs"
    assert stored(client, NEW) is None


def test_writes_take_their_geometry_in_the_content_crs(client, admin):
    from shapely import transform

    def to_gk(geom):
        return transform(geom, lambda c: [gauss_kruger(4549, x, y) for x, y in c])

    new = feature(NEW, to_gk(FREE_IN_C2), C2)
    resp = client.post("/ogc/collections/grid/items", json=new,
                       headers=admin | {"Content-Crs": f"<{EPSG}4549>"})
    assert resp.status_code == 201, resp.get_json()
    assert resp.headers["Content-Crs"] == f"<{EPSG}4549>"
    answered = shapely.geometry.shape(resp.get_json()["geometry"])
    assert answered.hausdorff_distance(to_gk(FREE_IN_C2)) < 1e-3  # metres
    _version, geom, _ = stored(client, NEW)
    assert geom.hausdorff_distance(FREE_IN_C2) < 1e-9  # degrees
    smaller = box(32.0005, 120.9031, 32.0025, 120.9039)  # lat, lon
    patched = client.patch(item_url("grid", NEW), json={"geometry": mapping(smaller)},
                           headers=admin | {"If-Match": f'"{NEW}-1"', "Content-Crs":
                                            f"<{EPSG}4490>"})
    assert patched.status_code == 200, patched.get_json()
    assert stored(client, NEW)[1].hausdorff_distance(box(120.9031, 32.0005, 120.9039,
                                                         32.0025)) < 1e-9
    far = client.patch(item_url("grid", NEW), json={"geometry": mapping(box(
        120.9031, 32.0005, 120.9039, 32.0025))}, headers=admin | {
        "If-Match": f'"{NEW}-2"', "Content-Crs": f"<{EPSG}4490>"})  # lon, lat: wrong order
    assert far.status_code in (400, 422), (far.get_json(), stored(client, NEW))
    assert stored(client, NEW)[0] == 2


# -- sign-in with HTTP Basic, caching ----------------------------------------------------------

def basic(token_header: dict[str, str], user: str = "qgis") -> dict[str, str]:
    import base64

    token = token_header["Authorization"].split()[1]
    return {"Authorization": "Basic " + base64.b64encode(f"{user}:{token}".encode()).decode()}


REMOTE = {"REMOTE_ADDR": "10.1.2.3"}


def test_basic_with_the_token_as_password_signs_in_on_ogc_only(client, settings):
    c1 = bearer(settings, "planner", unit=C1)
    body = client.get("/ogc/collections/grid/items", headers=basic(c1)).get_json()
    assert [f["id"] for f in body["features"]] == [G1, G2]  # the planner's subtree
    assert client.get("/ogc/collections/grid/items", headers=basic(c1, "任何人")).status_code == 200
    for bad in ({"Authorization": "Basic " + "eDp4"}, {"Authorization": "Basic !!"},
                basic({"Authorization": "Bearer gs_nope"})):
        resp = client.get("/ogc/collections", headers=bad)
        assert resp.status_code == 401 and resp.mimetype == "application/problem+json"
        assert "Basic" in resp.headers["WWW-Authenticate"]
    assert client.get(f"/api/v1/units/{G1}", headers=basic(c1)).status_code == 401  # not /ogc


def test_basic_over_plain_http_is_refused_unless_allowed(settings):
    import dataclasses

    with app_client(settings) as c:
        assert import_records(c.application.extensions["gridsvc"], ogc_records(),
            viewer=cli_principal()).stored
        planner = bearer(settings, "planner", unit=C1)
        far = c.get("/ogc/collections", headers=basic(planner), environ_base=REMOTE,
                    base_url="http://gis.example.cn")
        assert far.status_code == 401 and "HTTPS" in far.get_json()["detail"]
        assert "Basic" not in far.headers["WWW-Authenticate"]
        named = c.get("/ogc/collections", headers=basic(planner),
                      base_url="http://gis.example.cn")  # from this host, to a public name
        assert named.status_code == 401
        tls = c.get("/ogc/collections", headers=basic(planner), environ_base=REMOTE,
                    base_url="https://gis.example.cn")
        assert tls.status_code == 200
        assert c.get("/ogc/collections", headers=planner, environ_base=REMOTE,
                      base_url="http://gis.example.cn").status_code == 200  # bearer is fine
    with app_client(dataclasses.replace(settings, allow_basic_http=True)) as c:
        assert c.get("/ogc/collections", headers=basic(planner), environ_base=REMOTE,
                     base_url="http://gis.example.cn").status_code == 200


def test_token_dependent_answers_are_never_stored_by_caches(client, admin):
    for path in ("/ogc/collections", "/ogc/collections/grid/items", item_url("grid", G1),
                 "/ogc/collections/nope", f"/api/v1/units/{G1}", "/api/v1/layers/grid"):
        resp = client.get(path, headers=admin)
        assert resp.headers["Cache-Control"] == "private, no-store", path
        assert {"Authorization", "Cookie"} <= set(resp.vary), path
    anonymous = client.get("/ogc/collections")
    assert anonymous.status_code == 401 and anonymous.headers["Cache-Control"] == (
        "private, no-store")
    for path in ("/ogc", "/ogc/conformance", "/ogc/api"):
        assert client.get(path).headers["Cache-Control"] == "no-cache", path


# -- Part 3 (filtering), schema ----------------------------------------------------------------

def found(client, admin, query: str, collection: str = "grid") -> list[str]:
    from urllib.parse import quote

    parts = [p.split("=", 1) for p in query.split("&")]
    encoded = "&".join(f"{k}={quote(v)}" for k, v in parts)
    resp = client.get(f"/ogc/collections/{collection}/items?{encoded}", headers=admin)
    assert resp.status_code == 200, resp.get_json()
    body = resp.get_json()
    if "limit=" not in query:
        assert body["numberMatched"] == len(body["features"])
    return [f["id"] for f in body["features"]]


def test_queryables_and_schema_say_the_real_types(client, admin):
    grid = rels(client.get("/ogc/collections/grid", headers=admin).get_json())
    assert urlsplit(grid["http://www.opengis.net/def/rel/ogc/1.0/queryables"]["href"]).path == (
        "/ogc/collections/grid/queryables")
    assert urlsplit(grid["describedby"]["href"]).path == "/ogc/collections/grid/schema"
    resp = client.get("/ogc/collections/grid/queryables", headers=admin)
    assert resp.mimetype == "application/schema+json"
    props = resp.get_json()["properties"]
    assert props["households"]["type"] == "integer" and props["name"]["type"] == "string"
    assert props["geometry"]["format"] == "geometry-multipolygon"
    schema = client.get("/ogc/collections/household/schema", headers=admin).get_json()
    assert schema["properties"]["households"]["type"] == ["integer", "null"]
    assert schema["properties"]["geometry"]["format"] == "geometry-point"
    assert client.get("/ogc/collections/grid/schema").status_code == 401
    assert client.get("/ogc/collections/nope/queryables", headers=admin).status_code == 404


def test_simple_property_filters_with_wildcards(client, admin):
    assert found(client, admin, f"parent_code={C2}") == [G3]
    assert found(client, admin, f"code={G1}") == [G1]
    assert found(client, admin, "name=阳光*") == [G1, G2]
    assert found(client, admin, "name=*网格") == [G1, G2, G3]
    assert found(client, admin, "name=阳光") == []  # no wildcard: the whole name
    assert found(client, admin, f"code={G1.lower()}x*") == []  # case-sensitive


def test_sortby_orders_and_keeps_paging_stable(client, admin):
    assert found(client, admin, "sortby=-code") == [G3, G2, G1]
    assert found(client, admin, "sortby=-parent_code,code") == [G3, G1, G2]
    names = {f["id"]: f["properties"]["name"] for f in client.get(
        "/ogc/collections/grid/items", headers=admin).get_json()["features"]}
    assert found(client, admin, "sortby=+name") == sorted(names, key=names.get)
    assert found(client, admin, "sortby=-name&limit=1&offset=1") == [
        sorted(names, key=names.get, reverse=True)[1]]


def test_cql2_text_and_json_filters(client, admin):
    assert found(client, admin, f"filter=parent_code = '{C1}' AND name LIKE '阳光%'") == [G1, G2]
    assert found(client, admin, f"filter=code IN ('{G1}', '{G3}')") == [G1, G3]
    assert found(client, admin, f"filter=NOT code = '{G1}'") == [G2, G3]
    assert found(client, admin, "filter=households IS NULL") == [G1, G2, G3]
    assert found(client, admin, "filter=version BETWEEN 1 AND 1") == [G1, G2, G3]
    assert found(client, admin, "filter=version > 1") == []
    assert found(client, admin, "filter=name LIKE '%网_'") == [G1, G2, G3]
    assert found(client, admin, f"filter=code LIKE '{G1[:-1]}_'") == [G1, G2]  # not G3
    assert found(client, admin, "filter=S_INTERSECTS(geometry, BBOX(120.9041,32.0001,"
                                "120.9059,32.0039))") == [G3]
    assert found(client, admin, "filter=S_INTERSECTS(geometry, POLYGON((120.9001 32.0021, "
                                "120.9029 32.0021, 120.9029 32.0039, 120.9001 32.0021)))"
                 ) == [G2]
    assert found(client, admin, "filter=S_WITHIN(geometry, BBOX(120.8,31.9,121,32.1)) AND "
                                f"parent_code <> '{C2}'") == [G1, G2]
    assert found(client, admin, "filter-crs=EPSG:4326&filter=S_INTERSECTS(geometry, "
                                "BBOX(32.0001,120.9041,32.0039,120.9059))") == [G3]
    cql_json = ('{"op": "=", "args": [{"property": "parent_code"}, "' + C2 + '"]}')
    assert found(client, admin, f"filter-lang=cql2-json&filter={cql_json}") == [G3]
    both = found(client, admin, "bbox=120.9001,32.0001,120.9059,32.0039&filter=S_INTERSECTS("
                                "geometry, BBOX(120.9041,32.0001,120.9059,32.0039))")
    assert both == [G3]


def test_filters_keep_to_the_planners_subtree(client, settings):
    c1 = bearer(settings, "planner", unit=C1)
    assert found(client, c1, f"parent_code={C2}") == []
    assert found(client, c1, "filter=code LIKE '%'") == [G1, G2]

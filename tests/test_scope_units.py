"""Roles and subtrees on the tree, boundaries, coverage, layers, maps and the editor, on both
databases, over api_support's small city: a planner and a staff member scoped to community C1
must never see community C2 or its grid G3, nor change them; the public and members see no
units; an administrator sees everything. Also the token itself (unknown, revoked, expired)
and the browser session (the gridsvc_token cookie)."""

from __future__ import annotations

import io
import json
import re
from datetime import timedelta

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
    bearer,
    sample_records,
    write_geojson,
)
from shapely.geometry import box, mapping
from sqlalchemy import select, update

from gridsvc.access import cli_principal
from gridsvc.services.accounts import create_token, revoke_token
from gridsvc.services.boundaries import import_records
from gridsvc.storage.models import ApiToken, Member, Unit, utcnow
from gridsvc.web.auth import TOKEN_COOKIE

pytestmark = pytest.mark.storage

C1_SUBTREE = {C1, G1, G2, B1, B2, H1}
OUTSIDE = {S, C2, G3}
EAST_NAME = "幸福"  # in the names of C2 and G3 only
HOMES = [("陈静怡", "13912340001", B1), ("周晓梅", "13912340002", G3)]  # G3: across the line


@pytest.fixture
def client(settings):
    """The sample tree and one assigned member on each side of the C1/C2 line; no token."""
    with app_client(settings) as c:
        svc = c.application.extensions["gridsvc"]
        assert import_records(svc, sample_records(), viewer=cli_principal()).stored
        with svc.db.session() as session:
            ids = dict(session.execute(select(Unit.code, Unit.id)).all())
            session.add_all(Member(name=name, phone=phone, lon=120.9007, lat=32.0007,
                                   status="assigned", building_id=ids[code])
                            for name, phone, code in HOMES)
        yield c


@pytest.fixture(params=["planner", "staff"])
def scoped(request, settings) -> dict[str, str]:
    """The header of a planner's or a staff member's token for community C1."""
    return bearer(settings, request.param, C1)


def codes(body: dict) -> set[str]:
    if body.get("type") == "FeatureCollection":
        return {f["id"] if "id" in f else f["properties"]["code"] for f in body["features"]}
    return {item["code"] for item in body["items"]}


def geojson_upload(records, tmp_path, name: str = "file.geojson") -> dict:
    content = write_geojson(records, tmp_path / name).read_bytes()
    return {"data": {"file": (io.BytesIO(content), name)}, "content_type": "multipart/form-data"}


def stored_names(client) -> dict[str, str]:
    svc = client.application.extensions["gridsvc"]
    with svc.db.session() as session:
        return dict(session.execute(select(Unit.code, Unit.name)).all())


# -- reads -------------------------------------------------------------------------------------


def test_unit_lists_keep_to_the_subtree(client, scoped):
    def listed(query: str) -> set[str]:
        resp = client.get(f"/api/v1/units?{query}", headers=scoped)
        assert resp.status_code == 200, resp.get_json()
        return codes(resp.get_json())

    everything = client.get("/api/v1/units?limit=1000", headers=scoped).get_json()
    assert codes(everything) == C1_SUBTREE and everything["total"] == len(C1_SUBTREE)
    assert listed("f=geojson&limit=1000") == C1_SUBTREE
    assert listed("level=2") == {C1}
    assert listed(f"q={EAST_NAME}") == set() and listed(f"q={C2}") == set()
    assert listed("bbox=120.9035,32.001,120.9055,32.003") == set()  # inside C2 only
    assert listed(f"parent={S}") == {C1}  # the unit above the subtree filters it
    resp = client.get(f"/api/v1/units?parent={C2}", headers=scoped)
    assert resp.status_code == 404 and resp.get_json()["field"] == "parent"


def test_a_unit_outside_the_subtree_is_not_found(client, scoped):
    for code in OUTSIDE:
        for suffix in ("", "/children", "/subtree"):
            if code == S and suffix:
                continue  # the root's children and subtree are filtered (next test)
            resp = client.get(f"/api/v1/units/{code}{suffix}", headers=scoped)
            assert resp.status_code == 404, (code, suffix)
            assert resp.get_json()["type"] == "/problems/not-found"
            assert resp.get_json()["detail"] == f"no unit with code {code!r}"  # as if missing
    missing = client.get("/api/v1/units/999", headers=scoped).get_json()
    assert missing["detail"] == "no unit with code '999'"


def test_children_subtree_and_tree_are_the_subtrees_part(client, scoped):
    assert codes(client.get(f"/api/v1/units/{S}/children", headers=scoped).get_json()) == {C1}
    for url in ("/api/v1/tree/subtree", f"/api/v1/units/{S}/subtree"):
        assert codes(client.get(url, headers=scoped).get_json()) == C1_SUBTREE, url
    shallow = client.get("/api/v1/tree/subtree?max_level=3", headers=scoped).get_json()
    assert codes(shallow) == {C1, G1, G2}
    detail = client.get(f"/api/v1/units/{B1}", headers=scoped).get_json()
    # the chain above the subtree is shown by code and name only
    assert detail["ancestors"][0] == {"code": S, "name": "和平街道", "level": 1,
                                      "level_key": "street"}
    assert detail["children"] == 1


def test_export_and_validation_leave_the_other_community_out(client, scoped):
    export = client.get("/api/v1/boundaries/export", headers=scoped)
    assert export.status_code == 200
    assert export.headers["Content-Disposition"].endswith(f"gridsvc-{C1}.geojson")
    assert codes(json.loads(export.data)) == C1_SUBTREE
    grid = json.loads(client.get(f"/api/v1/boundaries/export?unit={G1}", headers=scoped).data)
    assert codes(grid) == {G1, B1, B2, H1}
    report = client.get("/api/v1/boundaries/validate", headers=scoped).get_json()
    assert report["features"] == len(C1_SUBTREE)
    assert report["map"] == "/maps/validation"
    for url in (f"/api/v1/boundaries/export?unit={C2}", f"/api/v1/boundaries/validate?unit={S}",
                f"/api/v1/boundaries/validate?unit={G3}"):
        assert client.get(url, headers=scoped).status_code == 404, url


def test_coverage_starts_at_the_scope_root(client, scoped):
    default = client.get("/api/v1/coverage", headers=scoped).get_json()
    assert [i["code"] for i in default["items"]] == [C1]  # not the street
    assert default["summary"]["buildings"] == 2 and default["summary"]["grids"] == 2
    grids = client.get(f"/api/v1/coverage?level=grid&parent={S}", headers=scoped).get_json()
    assert [i["code"] for i in grids["items"]] == [G1, G2] and grids["total"] == 2
    unit = client.get(f"/api/v1/coverage?unit={C1}", headers=scoped).get_json()
    assert [c["code"] for c in unit["children"]] == [G1, G2]
    as_geojson = client.get("/api/v1/coverage?level=grid&f=geojson", headers=scoped).get_json()
    assert codes(as_geojson) == {G1, G2}
    for url in (f"/api/v1/coverage?unit={C2}", f"/api/v1/coverage?unit={S}",
                f"/api/v1/coverage?level=grid&parent={C2}"):
        assert client.get(url, headers=scoped).status_code == 404, url


def test_layers_and_map_pages_show_the_subtree_only(client, scoped):
    def layer(url: str) -> set[str]:
        resp = client.get(url, headers=scoped)
        assert resp.status_code == 200, resp.get_data(as_text=True)
        return codes(json.loads(resp.data))

    assert layer("/api/v1/layers/grid?zoom=14") == {G1, G2}
    assert layer("/api/v1/layers/street?zoom=3") == set()
    assert layer("/api/v1/layers/building?zoom=16&view=counts&points=1") == {B1}
    assert layer(f"/api/v1/layers/grid?zoom=14&unit={G1}") == {G1}
    assert client.get(f"/api/v1/layers/grid?zoom=14&unit={C2}", headers=scoped).status_code == 404

    for page in ("/maps/coverage", "/maps/validation", "/maps/distribution",
                 "/maps/coverage?inline=0"):
        resp = client.get(page, headers=scoped)
        assert resp.status_code == 200, page
        text = resp.get_data(as_text=True)
        assert G3 not in text and EAST_NAME not in text and "周晓梅" not in text, page
    inline = client.get("/maps/coverage", headers=scoped).get_data(as_text=True)
    assert G1 in inline and G2 in inline
    remote = client.get("/maps/coverage?inline=0", headers=scoped).get_data(as_text=True)
    assert f'"unit": "{C1}"' in remote  # the layers it fetches are the subtree's
    for page in (f"/maps/coverage?unit={C2}", f"/maps/distribution?unit={G3}",
                 f"/maps/validation?unit={S}"):
        assert client.get(page, headers=scoped).status_code == 404, page


def test_members_on_the_detailed_map_are_the_staffs_subtree_only(client, settings):
    detail = "/maps/distribution?detail=1"
    planner = client.get(detail, headers=bearer(settings, "planner", C1))
    assert planner.status_code == 403
    staff = client.get(detail, headers=bearer(settings, "staff", C1)).get_data(as_text=True)
    assert "陈静怡" in staff and "周晓梅" not in staff
    admin = client.get(detail, headers=bearer(settings, "admin")).get_data(as_text=True)
    assert "陈静怡" in admin and "周晓梅" in admin


def test_a_planner_may_not_read_members(client, settings):
    resp = client.get("/api/v1/members", headers=bearer(settings, "planner", C1))
    assert resp.status_code == 403 and resp.get_json()["type"] == "/problems/forbidden"


# -- writes ------------------------------------------------------------------------------------


def test_a_planner_import_reaching_outside_is_refused_whole(client, settings, tmp_path):
    planner = bearer(settings, "planner", C1)
    records = {r.code: r for r in sample_records()}
    records[G1].name, records[G3].name = "阳光第一网格(新)", "幸福网格(新)"
    touching = [records[c] for c in (C1, G1, G2, C2, G3)]
    resp = client.post("/api/v1/boundaries/import", headers=planner,
                       **geojson_upload(touching, tmp_path))
    assert resp.status_code == 403
    body = resp.get_json()
    assert body["type"] == "/problems/forbidden" and body["scope"] == C1
    assert [(f["row"], f["code"]) for f in body["features"]] == [(4, C2), (5, G3)]
    assert C2 in body["detail"] and G3 in body["detail"]
    names = stored_names(client)
    assert names[G1] == "阳光第一网格" and names[G3] == "幸福网格"  # nothing stored
    checked = client.post("/api/v1/boundaries/validate", headers=planner,
                          **geojson_upload(touching, tmp_path))
    assert checked.status_code == 403  # a check of the same file says so too

    inside = [records[c] for c in (C1, G1, G2)]
    ok = client.post("/api/v1/boundaries/import", headers=planner,
                     **geojson_upload(inside, tmp_path))
    assert ok.status_code == 201, ok.get_json()
    assert stored_names(client)[G1] == "阳光第一网格(新)"


def test_a_scoped_planner_may_not_add_a_top_level_unit_or_move_one_out(client, settings,
                                                                          tmp_path):
    planner = bearer(settings, "planner", C1)
    new_street = records_new_street()
    resp = client.post("/api/v1/boundaries/import", headers=planner,
                       **geojson_upload(new_street, tmp_path))
    assert resp.status_code == 403 and resp.get_json()["features"][0]["code"] == "S9"
    moved = {r.code: r for r in sample_records()}[G2]
    moved.parent_code = C2  # G2 would leave C1 for C2
    resp = client.post("/api/v1/boundaries/import", headers=planner,
                       **geojson_upload([moved], tmp_path))
    assert resp.status_code == 403 and resp.get_json()["features"][0]["code"] == G2
    city_wide = bearer(settings, "planner")
    resp = client.post("/api/v1/boundaries/import", headers=city_wide,
                       **geojson_upload(new_street, tmp_path))
    assert resp.status_code == 201, resp.get_json()
    staff = client.post("/api/v1/boundaries/import", headers=bearer(settings, "staff", C1),
                        **geojson_upload(new_street, tmp_path))
    assert staff.status_code == 403  # staff read units but do not edit them


def records_new_street():
    record = sample_records()[0]
    record.code, record.name = "S9", "新街道"
    record.geometry = box(121.0, 32.0, 121.01, 32.01)
    return [record]


def test_the_editor_refuses_units_outside_the_planners_subtree(client, settings):
    planner = bearer(settings, "planner", C1)
    g3 = box(120.903, 32.000, 120.906, 32.0039)
    check = client.post(f"/api/v1/units/{G3}/geometry/check", json=mapping(g3),
                        headers=planner)
    assert check.status_code == 403 and check.get_json()["code"] == G3
    save = client.put(f"/api/v1/units/{G3}/geometry", json=mapping(g3),
                      headers={**planner, "If-Match": f'"{G3}-1"'})
    assert save.status_code == 403
    assert save.get_json()["type"] == "/problems/forbidden"
    svc = client.application.extensions["gridsvc"]
    with svc.db.session() as session:
        assert session.scalar(select(Unit.version).where(Unit.code == G3)) == 1
    g2 = box(120.900, 32.002, 120.903, 32.0039)
    inside = client.post(f"/api/v1/units/{G2}/geometry/check", json=mapping(g2),
                         headers=planner)
    assert inside.status_code == 200 and inside.get_json()["code"] == G2


# -- who may at all ----------------------------------------------------------------------------

READ_URLS = ["/api/v1/units", f"/api/v1/units/{C1}", f"/api/v1/units/{C1}/children",
             "/api/v1/tree/subtree", "/api/v1/coverage", "/api/v1/boundaries/export",
             "/api/v1/boundaries/validate", "/api/v1/layers/grid?zoom=14", "/maps/coverage",
             "/maps/distribution", "/maps/validation"]


def test_the_public_and_members_see_no_units(client, settings):
    svc = client.application.extensions["gridsvc"]
    with svc.db.session() as session:
        member_id = session.scalar(select(Member.id).limit(1))
    member = bearer(settings, "member", member_id=member_id)
    for url in READ_URLS:
        public = client.get(url)
        assert public.status_code == 401, url
        assert public.headers["WWW-Authenticate"].startswith("Bearer"), url
        assert client.get(url, headers=member).status_code == 403, url
    upload = {"data": {"file": (io.BytesIO(b"{}"), "x.geojson")},
              "content_type": "multipart/form-data"}
    assert client.post("/api/v1/boundaries/import", **upload).status_code == 401


def test_a_browser_asking_for_a_page_gets_a_link_to_sign_in(client):
    resp = client.get(f"/maps/coverage?unit={C1}", headers={"Accept": "text/html"})
    assert resp.status_code == 401 and resp.mimetype == "text/html"
    text = resp.get_data(as_text=True)
    assert "/session?next=" in text and C1 in text
    assert client.get("/maps/coverage").mimetype == "application/problem+json"  # no Accept


def test_an_administrator_sees_everything(client, settings):
    admin = bearer(settings, "admin")
    assert client.get("/api/v1/units?limit=1000", headers=admin).get_json()["total"] == len(
        ALL_CODES)
    assert client.get(f"/api/v1/units/{C2}", headers=admin).status_code == 200
    streets = client.get("/api/v1/coverage", headers=admin).get_json()
    assert [i["code"] for i in streets["items"]] == [S] and streets["summary"]["grids"] == 3
    assert codes(json.loads(client.get("/api/v1/layers/grid?zoom=14", headers=admin).data)) == {
        G1, G2, G3}
    assert G3 in client.get("/maps/coverage", headers=admin).get_data(as_text=True)


def test_unknown_revoked_and_expired_tokens_are_401(client, settings):
    svc = client.application.extensions["gridsvc"]
    revoked, revoked_row = create_token(svc, "revoked", "planner", unit=C1)
    revoke_token(svc, revoked_row["id"])
    expired, expired_row = create_token(svc, "expired", "admin", expires_days=1)
    with svc.db.session() as session:
        session.execute(update(ApiToken).where(ApiToken.id == expired_row["id"])
                        .values(expires_at=utcnow() - timedelta(minutes=1)))
    for token in ("gs_" + "x" * 43, revoked, expired, "not-even-a-gridsvc-token"):
        resp = client.get("/api/v1/units", headers={"Authorization": f"Bearer {token}"})
        assert resp.status_code == 401, token
        assert resp.get_json()["type"] == "/problems/unauthorized"
        assert resp.headers["WWW-Authenticate"].startswith("Bearer")
        assert client.get("/maps/coverage", headers={"Cookie": f"{TOKEN_COOKIE}={token}"}
                          ).status_code == 401, token


# -- the browser session -----------------------------------------------------------------------


def test_signing_in_sets_an_http_only_strict_cookie(client, settings, tmp_path):
    token = bearer(settings, "planner", C1)["Authorization"].removeprefix("Bearer ")
    assert "<form" in client.get("/session").get_data(as_text=True)
    refused = client.post("/session", data={"token": "gs_nope"})
    assert refused.status_code == 401 and refused.headers["WWW-Authenticate"]
    assert client.get_cookie(TOKEN_COOKIE) is None

    signed = client.post("/session", data={"token": token})
    assert signed.status_code == 204
    cookie = signed.headers["Set-Cookie"]
    assert cookie.startswith(f"{TOKEN_COOKIE}={token}") and "HttpOnly" in cookie
    assert "SameSite=Strict" in cookie and "Path=/" in cookie and "Secure" not in cookie
    assert codes(client.get("/api/v1/units?limit=1000").get_json()) == C1_SUBTREE
    assert client.get("/maps/coverage").status_code == 200
    records = [r for r in sample_records() if r.code in (C1, G1, G2)]
    for path in ("/api/v1/boundaries/validate", "/api/v1/boundaries/import"):
        refused = client.post(path, **geojson_upload(records, tmp_path))
        assert refused.status_code == 403  # a POST needs the page's CSRF token with the cookie
    page = client.get("/maps/coverage").get_data(as_text=True)
    csrf = re.search(r'<meta name="csrf-token" content="([0-9a-f]{64})">', page)[1]
    checked = client.post("/api/v1/boundaries/validate", **geojson_upload(records, tmp_path),
                          headers={"X-CSRF-Token": csrf})
    assert checked.status_code == 200

    assert client.delete("/session").status_code == 204
    assert client.get("/api/v1/units").status_code == 401

    secure = client.post("/session", data={"token": token}, base_url="https://localhost")
    assert "Secure" in secure.headers["Set-Cookie"]


def test_signing_in_redirects_home_only_and_refuses_other_sites(client, settings):
    token = bearer(settings, "staff", C1)["Authorization"].removeprefix("Bearer ")
    back = client.post("/session", data={"token": token, "next": f"/maps/coverage?unit={G1}"})
    assert back.status_code == 303 and back.headers["Location"] == f"/maps/coverage?unit={G1}"
    for elsewhere in ("//evil.example/x", "https://evil.example/", "/\\evil.example"):
        resp = client.post("/session", data={"token": token, "next": elsewhere})
        assert resp.status_code == 204, elsewhere
    forged = client.post("/session", data={"token": token},
                         headers={"Origin": "https://evil.example"})
    assert forged.status_code == 403 and "Set-Cookie" not in forged.headers
    logout = client.post("/session/logout", headers={"Origin": "https://evil.example"})
    assert logout.status_code == 403

"""The registration API: public self-registration, staff-only member, roster and work-unit
endpoints, and their answers checked against the OpenAPI document."""

from __future__ import annotations

import io
import json

import pytest
from api_support import bearer
from jsonschema import Draft202012Validator
from members_support import (
    STAFF_ROUTES,
    city,
    city_services,
    community_of,
    if_match,
    road_point,
    write_csv,
)

from gridsvc.web import create_app
from gridsvc.web.openapi import openapi_document


@pytest.fixture
def make_client(settings, tmp_path):
    """A client factory on the demo city (stored once)."""
    city_services(settings, tmp_path).close()
    apps = []

    def make():
        app = create_app(settings)
        apps.append(app)
        return app.test_client()

    yield make
    for app in apps:
        app.extensions["gridsvc"].close()


def check_schema(resp, path: str, method: str) -> None:
    """The response fits the schema the OpenAPI document gives for its status."""
    doc = openapi_document()
    responses = doc["paths"][path][method]["responses"]
    assert str(resp.status_code) in responses, (path, method, resp.status_code)
    node = responses[str(resp.status_code)]
    while "$ref" in node:
        node = doc["components"]["responses"][node["$ref"].rsplit("/", 1)[1]]
    schema = node["content"][resp.mimetype]["schema"]
    errors = [e.message for e in Draft202012Validator(
        {**schema, "components": doc["components"]}).iter_errors(resp.get_json())]
    assert not errors, (path, method, errors[:3])


def me(**extra) -> dict:
    e = city().gazetteer[0]
    return {"name": "张三", "phone": "138-1234-1234", "home_address": e.address + "1单元201室",
            "skills": "电工、维修", "roles": ["党员先锋"], "work_unit": "市供电公司"} | extra


def test_public_registration_masks_the_phone_and_answers_a_duplicate_alike(make_client):
    client = make_client()
    e = city().gazetteer[0]
    resp = client.post("/api/v1/members", json=me())
    assert resp.status_code == 202, resp.get_json()
    check_schema(resp, "/api/v1/members", "post")
    body = resp.get_json()
    assert body["status"] == "assigned" and "id" not in body
    assert body["member"]["phone"] == "138****1234" and "13812341234" not in resp.text
    assert [u["level"] for u in body["chain"]] == [1, 2, 3, 4]
    assert body["chain"][-1]["code"] == e.building_code
    assert body["household"]["code"].startswith(e.building_code)

    again = client.post("/api/v1/members", json=me())  # the same submission, phone taken
    assert again.status_code == 202
    check_schema(again, "/api/v1/members", "post")
    first, second = body, again.get_json()
    assert first.pop("request") != second.pop("request")
    assert first == second  # nothing tells the two apart

    bad = client.post("/api/v1/members", json=me(phone="12345"))
    assert bad.status_code == 400 and bad.get_json()["field"] == "phone"
    nowhere = client.post("/api/v1/members", json=me(phone="13900000000",
                                                     home_address="不存在路1号无名小区9栋"))
    assert nowhere.status_code == 400 and nowhere.get_json()["field"] == "home_address"
    check_schema(nowhere, "/api/v1/members", "post")


@pytest.fixture
def STAFF(make_client, settings):
    """A city-wide staff token's header."""
    return bearer(settings, "staff")


def test_staff_endpoints_refuse_the_public_a_wrong_token_and_other_roles(make_client,
                                                                         settings):
    client = make_client()
    planner = bearer(settings, "planner")
    for method, url in STAFF_ROUTES:
        anonymous = getattr(client, method)(url, json={})
        assert anonymous.status_code == 401, (method, url)
        assert anonymous.headers["WWW-Authenticate"].startswith("Bearer")
        wrong = getattr(client, method)(url, headers={"Authorization": "Bearer nope"}, json={})
        assert wrong.status_code == 401, (method, url)
        refused = getattr(client, method)(url, headers=planner, json={})
        assert refused.status_code == 403, (method, url)
        assert refused.get_json()["type"] == "/problems/forbidden"


def test_staff_roster_confirmation_update_and_work_org_report(make_client, tmp_path, STAFF):
    client = make_client()
    g = city().gazetteer
    lon, lat, nearest, _ = road_point()
    rows = [["甲", "13600000001", "ABC科技公司", g[10].address, "", "", "", "", "", ""],
            ["乙", "13600000002", "", "", lon, lat, "wgs84", "", "", ""],
            ["丙", "136", "", g[11].address, "", "", "", "", "", ""]]
    data = write_csv(tmp_path / "名单.csv", rows, encoding="gbk").read_bytes()
    resp = client.post("/api/v1/rosters", headers=STAFF, content_type="multipart/form-data",
                       data={"file": (io.BytesIO(data), "名单.csv")})
    assert resp.status_code == 201, resp.get_json()
    check_schema(resp, "/api/v1/rosters", "post")
    roster = resp.get_json()
    assert {k: roster["counts"][k] for k in ("assigned", "needs-confirmation", "rejected")} == {
        "assigned": 1, "needs-confirmation": 1, "rejected": 1}
    got = client.get(f"/api/v1/rosters/{roster['id']}", headers=STAFF)
    check_schema(got, "/api/v1/rosters/{roster_id}", "get")
    rejected = client.get(f"/api/v1/rosters/{roster['id']}/rows?status=rejected", headers=STAFF)
    check_schema(rejected, "/api/v1/rosters/{roster_id}/rows", "get")
    assert [(r["row"], r["problems"][0]["field"]) for r in rejected.get_json()["items"]] == [
        (4, "phone")]

    listed = client.get("/api/v1/members?status=needs-confirmation", headers=STAFF)
    check_schema(listed, "/api/v1/members", "get")
    (pending,) = listed.get_json()["items"]
    assert pending["match"]["fallback"] is True and pending["building"]["code"] == nearest
    confirmed = client.post(f"/api/v1/members/{pending['id']}/confirm", headers=STAFF,
                            json={"building": nearest})
    check_schema(confirmed, "/api/v1/members/{member_id}/confirm", "post")
    assert (confirmed.get_json()["status"], confirmed.get_json()["match"]["method"]) == (
        "assigned", "staff")
    community = nearest[:12]
    in_unit = client.get(f"/api/v1/members?unit={community}", headers=STAFF).get_json()
    assert pending["id"] in {m["id"] for m in in_unit["items"]}
    bad = client.post(f"/api/v1/members/{pending['id']}/confirm", headers=STAFF,
                      json={"building": community})
    assert bad.status_code == 400 and bad.get_json()["field"] == "building"

    updated = client.put(f"/api/v1/members/{pending['id']}", headers=if_match(
                         client, pending["id"], STAFF),
                         json={"lon": None, "lat": None, "coordsys": None,
                               "home_address": g[12].address})
    check_schema(updated, "/api/v1/members/{member_id}", "put")
    assert updated.get_json()["building"]["code"] == g[12].building_code
    assert updated.get_json()["version"] > pending["version"]
    one = client.get(f"/api/v1/members/{pending['id']}", headers=STAFF)
    check_schema(one, "/api/v1/members/{member_id}", "get")
    assert one.get_json()["chain"][-1]["code"] == g[12].building_code
    missing = client.get("/api/v1/members/99999", headers=STAFF)
    check_schema(missing, "/api/v1/members/{member_id}", "get")

    org = client.post("/api/v1/work-orgs", headers=STAFF, json={
        "name": "ＡＢＣ 科技公司", "office_address": g[30].address, "contact_name": "王"})
    assert org.status_code == 201, org.get_json()
    check_schema(org, "/api/v1/work-orgs", "post")
    assert org.get_json()["community"]["code"] == community_of(g[30].lon, g[30].lat)
    dup = client.post("/api/v1/work-orgs", headers=STAFF, json={"name": "ABC科技公司",
                                                                "office_address": "x"})
    assert dup.status_code in (400, 409)
    orgs = client.get("/api/v1/work-orgs", headers=STAFF)
    check_schema(orgs, "/api/v1/work-orgs", "get")
    report = client.get(f"/api/v1/work-orgs/{org.get_json()['id']}/report", headers=STAFF)
    check_schema(report, "/api/v1/work-orgs/{org_id}/report", "get")
    (member,) = report.get_json()["members"]
    assert member["residence"]["building"]["code"] == g[10].building_code
    assert json.dumps(report.get_json(), ensure_ascii=False).count("13600000001") == 1

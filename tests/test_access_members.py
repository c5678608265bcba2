"""Roles and subtrees on members' personal data, masking, and the audit log of it.

Each test would fail if a scoped caller saw or changed a member outside their subtree, if a
masked field came out in full, or if a read of personal data went unrecorded.
"""

from __future__ import annotations

import io
import re

import pytest
from api_support import bearer
from members_support import city, city_services, if_match, units, write_csv

from gridsvc.access import cli_principal
from gridsvc.services import audit
from gridsvc.services.context import Services
from gridsvc.storage.models import Member, Unit
from gridsvc.web import create_app

pytestmark = pytest.mark.storage


def community_of_code(code: str) -> str:
    return next(c.code for c in units(2) if code.startswith(c.code))


def entries_in(community: str) -> list:
    return [e for e in city().gazetteer if e.building_code.startswith(community)]


@pytest.fixture
def world(settings, tmp_path):
    """The demo city with four members, two in each of two communities, registered by the CLI
    (full access); a client; the two community codes."""
    city_services(settings, tmp_path).close()
    a, b = units(2)[0].code, units(2)[1].code
    rows = []
    for i, community in enumerate([a, a, b, b]):
        e = entries_in(community)[i]
        rows.append([f"测试{i}号", f"1390000000{i}", "ABC科技公司", e.address,
                     "", "", "", "", "", ""])
    svc = Services.from_settings(settings)
    from gridsvc.services.members import import_members
    summary = import_members(svc, write_csv(tmp_path / "r.csv", rows), viewer=cli_principal())
    assert summary["counts"]["assigned"] == 4, summary
    from gridsvc.services.work_orgs import register_work_org
    org = register_work_org(svc, {"name": "ABC科技公司",
                                  "office_address": entries_in(a)[5].address},
                                      viewer=cli_principal())
    with svc.db.session() as session:
        ids = {m.phone: m.id for m in session.query(Member)}
    svc.close()
    app = create_app(settings)
    yield {"client": app.test_client(), "a": a, "b": b, "org": org["id"],
           "in_a": [ids["13900000000"], ids["13900000001"]],
           "in_b": [ids["13900000002"], ids["13900000003"]], "settings": settings}
    app.extensions["gridsvc"].close()


def _paths_of_members(settings, ids: list[int]) -> list[str]:
    svc = Services.from_settings(settings)
    with svc.db.session() as session:
        paths = [session.get(Unit, session.get(Member, i).building_id).path for i in ids]
    svc.close()
    return paths


def test_staff_of_a_community_see_and_change_only_its_members(world):
    c, a, b = world["client"], world["a"], world["b"]
    staff_a = bearer(world["settings"], "staff", unit=a)
    listed = c.get("/api/v1/members?limit=1000", headers=staff_a).get_json()
    ids = {m["id"] for m in listed["items"]}
    assert ids == set(world["in_a"]) and listed["total"] == 2
    assert all(p.split("/")[2] == a for p in _paths_of_members(world["settings"], list(ids)))
    assert c.get(f"/api/v1/members?unit={b}", headers=staff_a).status_code == 404
    for other in world["in_b"]:
        assert c.get(f"/api/v1/members/{other}", headers=staff_a).status_code == 404
        assert c.put(f"/api/v1/members/{other}", headers=staff_a,
                     json={"skills": ["x"]}).status_code == 404
    own = c.get(f"/api/v1/members/{world['in_a'][0]}", headers=staff_a).get_json()
    assert own["phone"] == "13900000000" and own["name"] == "测试0号"

    # moving a member of A to an address in B is refused, and nothing changes
    there = entries_in(b)[7].address
    moved = c.put(f"/api/v1/members/{world['in_a'][0]}",
                  headers=if_match(c, world["in_a"][0], staff_a),
                  json={"home_address": there})
    assert moved.status_code == 403 and moved.get_json()["type"] == "/problems/forbidden"
    again = c.get(f"/api/v1/members/{world['in_a'][0]}", headers=staff_a).get_json()
    assert again["home_address"] == own["home_address"] and again["version"] == own["version"]
    building_b = entries_in(b)[0].building_code
    confirm = c.post(f"/api/v1/members/{world['in_a'][1]}/confirm", headers=staff_a,
                     json={"building": building_b})
    assert confirm.status_code == 403

    # the admin and city-wide staff see all four
    for token in (bearer(world["settings"], "admin"), bearer(world["settings"], "staff")):
        assert c.get("/api/v1/members", headers=token).get_json()["total"] == 4


def test_a_scoped_roster_places_members_in_the_subtree_only(world, tmp_path):
    c, a, b = world["client"], world["a"], world["b"]
    staff_a, staff_b = (bearer(world["settings"], "staff", unit=u) for u in (a, b))
    rows = [["新甲", "13700000001", "", entries_in(a)[9].address, "", "", "", "", "", ""],
            ["新乙", "13700000002", "", entries_in(b)[9].address, "", "", "", "", "", ""],
            ["旧丙", "13900000002", "", entries_in(a)[10].address, "", "", "", "", "", ""]]
    data = write_csv(tmp_path / "scoped.csv", rows).read_bytes()
    resp = c.post("/api/v1/rosters", headers=staff_a, content_type="multipart/form-data",
                  data={"file": (io.BytesIO(data), "scoped.csv")})
    assert resp.status_code == 201, resp.get_json()
    roster = resp.get_json()
    assert roster["counts"]["assigned"] == 1 and roster["counts"]["rejected"] == 2
    got = c.get(f"/api/v1/rosters/{roster['id']}/rows?status=rejected", headers=staff_a)
    reasons = [p["message"] for r in got.get_json()["items"] for p in r["problems"]]
    assert any("outside your subtree" in m for m in reasons)
    assert any("registered outside your subtree" in m for m in reasons)
    # the member of B (phone 13900000002) kept their home; nobody was created in B
    admin = bearer(world["settings"], "admin")
    kept = c.get(f"/api/v1/members/{world['in_b'][0]}", headers=admin).get_json()
    assert kept["building"]["code"].startswith(b)
    assert c.get("/api/v1/members?q=新乙", headers=admin).get_json()["total"] == 0
    # another community's staff cannot read this roster's rows (they hold raw personal data)
    assert c.get(f"/api/v1/rosters/{roster['id']}/rows", headers=staff_b).status_code == 404
    assert c.get(f"/api/v1/rosters/{roster['id']}", headers=staff_b).status_code == 404
    assert c.get(f"/api/v1/rosters/{roster['id']}/rows", headers=admin).status_code == 200


def test_a_member_reads_their_own_record_and_nothing_else(world):
    c = world["client"]
    mine, other = world["in_a"][0], world["in_a"][1]
    token = bearer(world["settings"], "member", member_id=mine)
    me = c.get("/api/v1/members/me", headers=token)
    assert me.status_code == 200 and me.get_json()["id"] == mine
    assert me.get_json()["phone"] == "13900000000"
    assert c.get(f"/api/v1/members/{mine}", headers=token).status_code == 200
    assert c.get(f"/api/v1/members/{other}", headers=token).status_code == 404
    assert c.get("/api/v1/members", headers=token).status_code == 403
    assert c.put(f"/api/v1/members/{mine}", headers=token, json={}).status_code == 403
    assert c.get("/api/v1/work-orgs", headers=token).status_code == 403
    staff = bearer(world["settings"], "staff")
    assert c.get("/api/v1/members/me", headers=staff).status_code == 403


def test_planners_and_the_public_get_no_personal_data(world):
    c = world["client"]
    planner = bearer(world["settings"], "planner")
    for url in ("/api/v1/members", f"/api/v1/members/{world['in_a'][0]}", "/api/v1/work-orgs",
                f"/api/v1/work-orgs/{world['org']}/report"):
        for headers in (planner, {}):
            resp = c.get(url, headers=headers)
            assert resp.status_code in (401, 403), (url, resp.status_code)
            assert "1390000000" not in resp.text and "测试" not in resp.text
    registered = c.post("/api/v1/members", json={
        "name": "欧阳娜娜", "phone": "13512345678",
        "home_address": entries_in(world["a"])[3].address})
    assert registered.status_code == 202
    shown = registered.get_json()["member"]
    assert shown["name"] == "欧***" and shown["phone"] == "135****5678"
    assert "13512345678" not in registered.text and "欧阳娜娜" not in registered.text


def test_the_work_org_report_masks_members_living_outside_the_subtree(world):
    c, a, b = world["client"], world["a"], world["b"]
    staff_a = bearer(world["settings"], "staff", unit=a)
    report = c.get(f"/api/v1/work-orgs/{world['org']}/report", headers=staff_a)
    assert report.status_code == 200
    rows = {r["id"]: r for r in report.get_json()["members"]}
    assert set(rows) == set(world["in_a"] + world["in_b"])
    for i in world["in_a"]:
        assert re.fullmatch(r"1390000000\d", rows[i]["phone"])
        assert rows[i]["name"].startswith("测试")
        assert "building" in rows[i]["residence"]
    for i in world["in_b"]:
        assert rows[i]["phone"].startswith("139****") and rows[i]["name"] == "测***"
        assert set(rows[i]["residence"]) == {"street", "community"}
        assert rows[i]["residence"]["community"]["code"] == b
    assert "13900000002" not in report.text and "13900000003" not in report.text
    staff_b = bearer(world["settings"], "staff", unit=b)
    assert c.get(f"/api/v1/work-orgs/{world['org']}/report", headers=staff_b).status_code == 404
    assert c.get("/api/v1/work-orgs", headers=staff_b).get_json()["total"] == 0


def test_reads_of_personal_data_and_writes_are_audited_without_personal_data(world):
    c, a = world["client"], world["a"]
    staff_a = bearer(world["settings"], "staff", unit=a)
    member = world["in_a"][0]
    c.get(f"/api/v1/members/{member}", headers=staff_a)
    c.get(f"/api/v1/members/{world['in_b'][0]}", headers=staff_a)  # refused: 404
    c.put(f"/api/v1/members/{member}", headers=if_match(c, member, staff_a),
          json={"skills": ["电工"]})
    c.get("/api/v1/members", headers={})  # refused: 401
    c.get("/api/v1/lookup?lon=1&lat=2")  # public, no personal data: not recorded
    admin = bearer(world["settings"], "admin")
    log = c.get(f"/api/v1/audit?target=member:{member}", headers=admin).get_json()["items"]
    actions = [(e["action"], e["result"], e["actor"]) for e in log]
    assert ("PUT /api/v1/members/<int:member_id>", "ok", f"test staff {a}") in actions
    assert ("GET /api/v1/members/<int:member_id>", "ok", f"test staff {a}") in actions
    refused = c.get(f"/api/v1/audit?target=member:{world['in_b'][0]}", headers=admin).get_json()
    assert [e["result"] for e in refused["items"]] == ["not-found"]
    anonymous = c.get("/api/v1/audit?actor=public", headers=admin).get_json()["items"]
    assert any(e["action"] == "GET /api/v1/members" and e["status"] == 401 for e in anonymous)
    everything = c.get("/api/v1/audit?limit=1000", headers=admin)
    assert not any("lookup" in e["action"] for e in everything.get_json()["items"])
    for secret in ("13900000000", "测试0号", entries_in(a)[0].address):
        assert secret not in everything.text
    assert c.get("/api/v1/audit", headers=staff_a).status_code == 403
    assert c.get("/api/v1/audit?since=yesterday", headers=admin).status_code == 400


def test_audit_retention_purges_old_entries_only(settings):
    from datetime import timedelta

    from gridsvc.access import PUBLIC
    from gridsvc.storage.models import AuditEntry, utcnow

    svc = Services.from_settings(settings)
    try:
        audit.record(svc, PUBLIC, "old thing", target="unit:1")
        audit.record(svc, PUBLIC, "new thing", target="unit:2")
        with svc.db.session() as session:
            old = session.query(AuditEntry).filter_by(action="old thing").one()
            old.at = utcnow() - timedelta(days=181)
        assert audit.purge(svc) == 1
        left = [e["action"] for e in audit.query(svc, viewer=cli_principal())["items"]]
        assert left == ["new thing"]
        with pytest.raises(Exception, match="at least one day"):
            audit.purge(svc, 0)
    finally:
        svc.close()

"""The whole service loop through the HTTP API on both databases: a resident orders, staff
file and dispatch, a unit declines, a member claims, serves and records, three parties rate,
points accrue, the month-end job reminds the zero-point members, a reopen reverses points."""

from __future__ import annotations

from datetime import date

import pytest
from api_support import app_client
from loop_support import loop_city

from gridsvc.access import Principal, Role
from gridsvc.services.accounts import create_token
from gridsvc.services.loop.points import remind_zero_points

pytestmark = pytest.mark.storage


def token(svc, role, **kw):
    secret, _ = create_token(svc, f"test {role}", role, **kw)
    return {"Authorization": f"Bearer {secret}"}


def test_the_loop_over_http(db, settings, tmp_path):
    town = loop_city(settings, tmp_path)
    svc = town.svc
    admin = token(svc, "admin")
    staff = token(svc, "staff", unit=town.community.code)
    with app_client(settings) as client:
        made = client.post("/api/v1/residents", json={"name": "王阿姨", "phone": "13811112222"},
                           headers=staff)
        assert made.status_code == 201, made.get_json()
        resident = token(svc, "resident", resident_id=made.get_json()["id"])
        unit = token(svc, "unit", work_org_id=town.work_org)
        unit_member = token(svc, "member", member_id=town.unit_member)
        lon, lat = town.point
        ordered = client.post("/api/v1/needs", headers=resident, json={
            "kind": "family", "category": "邻里守望帮扶", "title": "换灯泡",
            "detail": "独居，三楼", "point": {"lon": lon, "lat": lat, "coordsys": "wgs84"}})
        assert ordered.status_code == 201, ordered.get_json()
        need = ordered.get_json()
        url = f"/api/v1/needs/{need['id']}"

        def do(action, who, **body):
            return client.post(f"{url}/actions/{action}", headers=who, json=body)

        assert do("file", staff).status_code == 200
        # the public sees nothing of a filed need; the pool later shows no person
        assert client.get(url).status_code == 404
        assert do("dispatch", staff, taker={"kind": "work_org", "id": town.work_org}
                  ).status_code == 200
        refused = do("decline", unit)
        assert refused.status_code == 400  # a refusal carries a reason
        assert do("decline", unit, reason="不符合单位职能").get_json()["state"] == "open"
        public = client.get(url).get_json()
        assert public["state"] == "open" and "detail" not in public
        wrong = do("close", resident, outcome="resolved")
        assert wrong.status_code == 403
        assert wrong.get_json()["allowed"] == ["withdraw"]
        assert wrong.get_json()["state"] == "open"
        claimed = do("claim", unit_member)
        assert claimed.status_code == 200 and claimed.get_json()["state"] == "claimed"
        again = do("claim", token(svc, "member", member_id=town.members[0]))
        assert again.status_code == 409 and again.get_json()["state"] == "claimed"
        assert do("start", unit_member).status_code == 200
        recorded = do("record", unit_member, hours=1.5, summary="换好了",
                      started_at="2026-12-01T09:00:00+08:00")
        assert recorded.status_code == 200, recorded.get_json()
        assert do("close", staff, outcome="resolved").get_json()["outcome"] == "resolved"
        for who in (resident, staff, unit):
            rated = client.post(f"{url}/ratings", headers=who, json={"rating": "满意"})
            assert rated.status_code == 201, rated.get_json()
        assert rated.get_json()["final"] and rated.get_json()["weighted"] == 1.0
        shown = client.get(f"/api/v1/needs/figures?unit={town.community.code}",
                           headers=staff).get_json()
        assert shown["needs"] == 1 and shown["resolved_rate"] == 1.0
        assert shown["claimed_rate"] == 1.0 and shown["service_hours"] == 1.5
        assert shown["service_rate"] == 1 / 4  # one of the four members living there served
        assert shown["satisfaction"] == 1.0 and "王阿姨" not in str(shown)
        assert client.get(f"/api/v1/needs/figures?unit={town.other_community.code}",
                          headers=staff).status_code == 404  # outside the subtree
        mine = client.get(f"/api/v1/points/member/{town.unit_member}", headers=unit_member)
        assert mine.get_json()["year"]["points"] == 2  # served, rated well
        # month end: the members without points are reminded (the job's work)
        remind_zero_points(svc, Principal(Role.ADMIN, "cli:test"),
                           date.today().replace(day=1))
        queued = client.get("/api/v1/outbox?limit=1000", headers=admin).get_json()["items"]
        reminded = {m["recipient"]["id"] for m in queued if m["template"] == "zero-points"
                    and m["recipient"]["kind"] == "member"}
        assert town.members[0] in reminded
        # a reopen reverses the points
        assert do("reopen", staff, reason="灯又坏了").get_json()["state"] == "open"
        after = client.get(f"/api/v1/points/member/{town.unit_member}", headers=unit_member)
        assert after.get_json()["year"]["points"] == 0
        assert [e["delta"] for e in after.get_json()["entries"]] == [1, 1, -1, -1]
    svc.close()

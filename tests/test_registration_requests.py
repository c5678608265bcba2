"""No membership oracle (issue 9, item 2): a self-registration answers the same whether or
not the phone is a member's; a duplicate changes nothing and waits for the staff who hold
that member; registration and the staff endpoints that compare personal data are
rate-limited."""

from __future__ import annotations

import dataclasses

import pytest
from api_support import bearer
from test_access_members import entries_in, world  # noqa: F401  (the fixture)

from gridsvc.web import create_app

pytestmark = pytest.mark.storage


def _strip(body: dict) -> dict:
    """The answer without what differs by the submission: the reference, the masked phone."""
    out = {k: v for k, v in body.items() if k != "request"}
    out["member"] = {k: v for k, v in out["member"].items() if k != "phone"}
    return out


def test_a_registered_phone_gets_the_same_answer_and_changes_nothing(world):  # noqa: F811
    c, a, b = world["client"], world["a"], world["b"]
    admin = bearer(world["settings"], "admin")
    held = world["in_b"][0]  # phone 13900000002, lives in b
    before = c.get(f"/api/v1/members/{held}", headers=admin).get_json()
    there = entries_in(a)[12].address
    guess = {"name": "冒充者", "phone": "13900000002", "home_address": there}
    fresh = {"name": "冒充者", "phone": "13700009999", "home_address": there}
    taken, new = (c.post("/api/v1/members", json=body) for body in (guess, fresh))
    assert taken.status_code == new.status_code == 202
    assert _strip(taken.get_json()) == _strip(new.get_json())
    assert set(taken.headers) == set(new.headers)
    assert taken.get_json()["request"] != new.get_json()["request"]
    after = c.get(f"/api/v1/members/{held}", headers=admin).get_json()
    assert after == before  # the member is untouched

    # the duplicate waits for the staff of b (who hold the member), unseen by a's staff
    staff_a, staff_b = (bearer(world["settings"], "staff", unit=u) for u in (a, b))
    waiting_b = c.get("/api/v1/registration-requests?status=duplicate", headers=staff_b)
    assert waiting_b.status_code == 200
    (req,) = waiting_b.get_json()["items"]
    assert req["member_id"] == held and req["submitted"]["name"] == "冒充者"
    assert req["reference"] == taken.get_json()["request"]
    seen_a = c.get("/api/v1/registration-requests", headers=staff_a).get_json()["items"]
    assert [r["status"] for r in seen_a] == ["registered"]  # the new member in a, only
    assert "13900000002" not in c.get("/api/v1/registration-requests",
                                      headers=staff_a).get_data(as_text=True)
    url = f"/api/v1/registration-requests/{req['id']}/resolve"
    assert c.post(url, headers=staff_a, json={"action": "dismiss"}).status_code == 404

    # b's staff may not apply it (the address lies in a), the city-wide staff may; once
    assert c.post(url, headers=staff_b, json={"action": "apply"}).status_code == 403
    assert c.post(url, headers=staff_b, json={"action": "maybe"}).status_code == 400
    staff = bearer(world["settings"], "staff")
    applied = c.post(url, headers=staff, json={"action": "apply"})
    assert applied.status_code == 200 and applied.get_json()["status"] == "applied"
    moved = c.get(f"/api/v1/members/{held}", headers=admin).get_json()
    assert moved["name"] == "冒充者" and moved["building"]["code"].startswith(a)
    again = c.post(url, headers=staff, json={"action": "dismiss"})
    assert again.status_code == 409


def test_a_dismissed_duplicate_leaves_the_member(world):  # noqa: F811
    c, b = world["client"], world["b"]
    staff_b = bearer(world["settings"], "staff", unit=b)
    c.post("/api/v1/members", json={"name": "某人", "phone": "13900000003",
                                    "home_address": entries_in(b)[20].address})
    (req,) = c.get("/api/v1/registration-requests?status=duplicate",
                   headers=staff_b).get_json()["items"]
    done = c.post(f"/api/v1/registration-requests/{req['id']}/resolve", headers=staff_b,
                  json={"action": "dismiss"})
    assert done.status_code == 200 and done.get_json()["status"] == "dismissed"
    assert done.get_json()["resolved_by"]
    member = c.get(f"/api/v1/members/{world['in_b'][1]}", headers=staff_b).get_json()
    assert member["name"] == "测试3号"


def test_registration_and_member_comparisons_are_rate_limited(world):  # noqa: F811
    settings = dataclasses.replace(world["settings"], registration_rate_limit="2/minute",
                                   members_rate_limit="3/minute")
    app = create_app(settings)
    try:
        c = app.test_client()
        body = {"name": "甲", "phone": "13700000001",
                "home_address": entries_in(world["a"])[3].address}
        answers = [c.post("/api/v1/members", json=body).status_code for _ in range(3)]
        assert answers == [202, 202, 429]
        refused = c.post("/api/v1/members", json=body)
        problem = refused.get_json()
        assert problem["type"] == "/problems/rate-limited"
        assert problem["setting"] == "GRIDSVC_REGISTRATION_RATE_LIMIT"
        assert int(refused.headers["Retry-After"]) >= 1
        # search, update and roster share one count per token
        staff = bearer(settings, "staff")
        calls = [c.get("/api/v1/members?q=测试", headers=staff).status_code,
                 c.put(f"/api/v1/members/{world['in_a'][0]}", headers=staff,
                       json={}).status_code,
                 c.get("/api/v1/members?q=x", headers=staff).status_code,
                 c.get("/api/v1/members?q=y", headers=staff).status_code]
        assert calls == [200, 428, 200, 429], calls
        limited = c.get("/api/v1/members", headers=staff).get_json()
        assert limited["setting"] == "GRIDSVC_MEMBERS_RATE_LIMIT"
        other = bearer(settings, "staff")  # another token counts on its own
        assert c.get("/api/v1/members", headers=other).status_code == 200
        assert c.get(f"/api/v1/members/{world['in_a'][0]}", headers=staff).status_code == 200
    finally:
        app.extensions["gridsvc"].close()

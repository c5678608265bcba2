"""Bulk harvest of contacts (issue 9, item 3): a public batch carries codes and names, no
contact; a 党员中心户 head's contact goes only to tokens that read the members of its subtree;
the single public lookup keeps the 楼栋长's posted contact; a public batch counts against the
rate limit by its items."""

from __future__ import annotations

import json

import pytest
from api_support import B1, C1, C2, H1, app_client, bearer, sample_records

from gridsvc.access import cli_principal
from gridsvc.services.boundaries import import_records
from gridsvc.settings import Settings

pytestmark = pytest.mark.storage

IN_B1 = {"lon": 120.9007, "lat": 32.0007, "coordsys": "wgs84"}  # H1's service area
IN_B2 = {"lon": 120.9017, "lat": 32.0007, "coordsys": "wgs84"}
ROAD = {"lon": 120.9012, "lat": 32.0007, "coordsys": "wgs84"}  # between B1 and B2
LEADER = "张伟"


@pytest.fixture
def client(settings, request):
    rate = getattr(request, "param", "1000/minute")
    with app_client(Settings(database_url=settings.database_url,
                             instance_dir=settings.instance_dir,
                             lookup_rate_limit=rate)) as c:
        assert import_records(c.application.extensions["gridsvc"], sample_records(),
            viewer=cli_principal()).stored
        yield c


def contacts(body) -> dict[str, object]:
    """code -> contact (or (leader, phone) in a columns table) of every unit in an answer."""
    found: dict[str, object] = {}

    def walk(node):
        if isinstance(node, dict):
            if "code" in node and "contact" in node:
                found[node["code"]] = node["contact"]
            for value in node.values():
                walk(value)
        elif isinstance(node, list):
            for value in node:
                walk(value)

    walk(body)
    if body.get("format") == "columns":
        for row in body["units"]["rows"]:
            found[row[0]] = None if row[4] is None and row[5] is None else row[4:]
    return found


def batch(client, query: str = "", headers=None):
    resp = client.post("/api/v1/lookup/batch" + query, json=[IN_B1, IN_B2, ROAD],
                       headers=headers or {})
    assert resp.status_code == 200, resp.get_json()
    return resp.get_json()


def test_a_public_batch_carries_codes_and_names_but_no_contact(client):
    for query in ("", "?compact=1", "?format=columns"):
        body = batch(client, query)
        found = contacts(body)
        assert B1 in found and H1 in found, query
        assert set(found.values()) == {None}, (query, found)
        assert LEADER not in json.dumps(body, ensure_ascii=False)
        assert "阳光小区1栋" in json.dumps(body, ensure_ascii=False)  # names stay


def test_the_single_public_lookup_keeps_the_posted_contact_not_the_household_head(client):
    body = client.get("/api/v1/lookup", query_string=IN_B1).get_json()
    assert body["chain"][-1]["code"] == B1
    assert body["chain"][-1]["contact"] == {"name": LEADER, "phone": "13800000000"}
    assert body["household"]["code"] == H1 and body["household"]["contact"] is None
    near = client.get("/api/v1/lookup", query_string=ROAD).get_json()
    assert near["nearest"]["contact"]["name"] == LEADER  # a building's posted contact


def test_tokens_get_the_contacts_of_their_subtree_and_households_only_with_members(
        client, settings):
    staff_c1 = bearer(settings, "staff", unit=C1)
    staff_c2 = bearer(settings, "staff", unit=C2)
    planner_c1 = bearer(settings, "planner", unit=C1)
    admin = bearer(settings, "admin")
    for query in ("", "?compact=1", "?format=columns"):
        found = contacts(batch(client, query, staff_c1))
        assert found[B1] and found[H1] and found[C1], query
        assert found["320602001"] is None, query  # the street is above the subtree
        found = contacts(batch(client, query, staff_c2))
        assert set(found.values()) == {None}, query
        found = contacts(batch(client, query, planner_c1))
        assert found[B1] and found[H1] is None, query
        found = contacts(batch(client, query, admin))
        assert all(found.values()), query
    single = client.get("/api/v1/lookup", query_string=IN_B1, headers=staff_c1).get_json()
    assert single["household"]["contact"]["name"] == LEADER
    single = client.get("/api/v1/lookup", query_string=IN_B1, headers=staff_c2).get_json()
    assert single["household"]["contact"] is None


@pytest.mark.parametrize("client", ["10/minute"], indirect=True)
def test_a_public_batch_counts_its_items_against_the_rate_limit(client, settings):
    assert client.post("/api/v1/lookup/batch", json=[IN_B1] * 6).status_code == 200
    refused = client.post("/api/v1/lookup/batch", json=[IN_B1] * 5)  # 11 lookups > 10
    assert refused.status_code == 429 and refused.headers["Retry-After"]
    assert "one lookup per item" in refused.get_json()["detail"]
    staff = bearer(settings, "staff")  # counted per token, one per request
    for _ in range(3):
        resp = client.post("/api/v1/lookup/batch", json=[IN_B1] * 11, headers=staff)
        assert resp.status_code == 200

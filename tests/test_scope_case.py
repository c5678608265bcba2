"""Scope by letter case (issue 9, item 4): codes are case-sensitive, and a token scoped to
``ZS1`` sees nothing of ``zs1`` on lists, single reads, exports, coverage and maps, on both
databases (SQLite's LIKE ignores ASCII case)."""

from __future__ import annotations

import copy
import json

import numpy as np
import pytest
import shapely
from api_support import S, app_client, bearer, sample_records
from members_support import member_id as registered_id

from gridsvc.access import cli_principal
from gridsvc.services.boundaries import import_records

pytestmark = pytest.mark.storage

UPPER, LOWER = "ZS1", "zs1"
SHIFT = 0.01  # degrees east between the two trees


def twin_trees():
    """The sample tree twice: codes starting ZS1, and the same codes starting zs1, 1 km east."""
    out = []
    for prefix, dx in ((UPPER, 0.0), (LOWER, SHIFT)):
        for rec in sample_records():
            r = copy.copy(rec)
            r.code = prefix + rec.code[len(S):]
            r.parent_code = prefix + rec.parent_code[len(S):] if rec.parent_code else None
            r.geometry = shapely.transform(rec.geometry, lambda c, dx=dx: c + np.array([dx, 0]))
            if rec.service_area is not None:
                r.service_area = shapely.transform(rec.service_area,
                                                   lambda c, dx=dx: c + np.array([dx, 0]))
            r.name = f"{rec.name}{prefix}"
            out.append(r)
    return out


def test_a_token_of_one_case_sees_nothing_of_the_other(settings):
    with app_client(settings) as client:
        svc = client.application.extensions["gridsvc"]
        assert import_records(svc, twin_trees(), viewer=cli_principal()).stored
        home = {"name": "张三", "phone": "13812341234", "lon": 120.9007 + SHIFT,
                "lat": 32.0007, "coordsys": "wgs84"}
        created = client.post("/api/v1/members", json=home)
        assert created.status_code == 202, created.get_json()
        member_id = registered_id(client, home["phone"])
        admin = bearer(settings, "admin")
        assert client.get(f"/api/v1/members/{member_id}", headers=admin).status_code == 200

        for role in ("staff", "planner"):
            token = bearer(settings, role, unit=UPPER)

            def body(url: str, token=token) -> str:
                resp = client.get(url, headers=token)
                assert resp.status_code == 200, (url, resp.get_json())
                return resp.get_data(as_text=True)

            for url in ("/api/v1/units", "/api/v1/units?level=building",
                        f"/api/v1/units/{UPPER}/subtree", "/api/v1/tree/subtree",
                        "/api/v1/boundaries/export?format=geojson",
                        "/api/v1/coverage?level=grid", "/ogc/collections/building/items",
                        "/maps/coverage", "/api/v1/layers/building?zoom=18"):
                text = body(url)
                assert LOWER not in text, url
                assert UPPER in text, url
            for url in (f"/api/v1/units/{LOWER}", f"/api/v1/units/{LOWER}001/children",
                        f"/api/v1/coverage?unit={LOWER}",
                        f"/ogc/collections/street/items/{LOWER}"):
                assert client.get(url, headers=token).status_code == 404, url
        staff = bearer(settings, "staff", unit=UPPER)
        listed = json.loads(client.get("/api/v1/members", headers=staff).get_data())
        assert listed["items"] == []
        assert client.get(f"/api/v1/members/{member_id}", headers=staff).status_code == 404
        assert client.get(f"/api/v1/members?unit={LOWER}", headers=staff).status_code in (
            403, 404)
        page = client.get("/maps/distribution?detail=1", headers=staff)
        assert page.status_code == 200 and "张" not in page.get_data(as_text=True)

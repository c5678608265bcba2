"""Members have an optimistic lock, as units do (issue 9, item 9): GET sends an ETag, PUT
needs If-Match (428 without it, 412 when stale), a confirmation honours it when sent; two
staff cannot overwrite each other silently."""

from __future__ import annotations

import pytest
from api_support import bearer
from members_support import city, city_services

from gridsvc.access import cli_principal
from gridsvc.services import members
from gridsvc.web import create_app

pytestmark = pytest.mark.storage


@pytest.fixture
def world(settings, tmp_path):
    svc = city_services(settings, tmp_path)
    g = city().gazetteer
    ids = []
    for i, phone in enumerate(("13900001111", "13900002222")):
        members.register_member(svc, {"name": f"测试{i}", "phone": phone,
                                      "home_address": g[i].address})
    from gridsvc.storage.models import Member
    with svc.db.session() as s:
        ids = sorted(s.scalars(Member.__table__.select().with_only_columns(Member.id)))
    svc.close()
    app = create_app(settings)
    yield app.test_client(), ids, bearer(settings, "staff")
    app.extensions["gridsvc"].close()


def test_a_stale_or_missing_if_match_stores_nothing(world):
    c, (one, two), staff = world
    read = c.get(f"/api/v1/members/{one}", headers=staff)
    etag = read.headers["ETag"]
    assert etag == f'"member-{one}-{read.get_json()["version"]}"'
    assert c.get("/api/v1/members/me", headers=staff).status_code == 403  # staff: no record

    missing = c.put(f"/api/v1/members/{one}", headers=staff, json={"skills": ["电工"]})
    assert missing.status_code == 428, missing.get_json()
    assert missing.get_json()["type"] == "/problems/precondition-required"
    for wrong in (f'"member-{one}-99"', f'"member-{two}-1"', '""', f'"{one}-1"'):
        refused = c.put(f"/api/v1/members/{one}", headers=staff | {"If-Match": wrong},
                        json={"skills": ["电工"]})
        assert refused.status_code == 412, (wrong, refused.get_json())
        assert refused.get_json()["type"] == "/problems/precondition-failed"
    assert c.get(f"/api/v1/members/{one}", headers=staff).get_json()["skills"] == []

    # two staff read the same version; the first save wins, the second is refused
    first = c.put(f"/api/v1/members/{one}", headers=staff | {"If-Match": etag},
                  json={"skills": ["电工"]})
    assert first.status_code == 200, first.get_json()
    assert first.headers["ETag"] == f'"member-{one}-{first.get_json()["version"]}"' != etag
    second = c.put(f"/api/v1/members/{one}", headers=staff | {"If-Match": etag},
                   json={"skills": ["维修"]})
    assert second.status_code == 412
    assert c.get(f"/api/v1/members/{one}", headers=staff).get_json()["skills"] == ["电工"]
    star = c.put(f"/api/v1/members/{one}", headers=staff | {"If-Match": "*"},
                 json={"skills": ["维修"]})
    assert star.status_code == 428  # '*' is not accepted, as for units


def test_a_confirmation_honours_if_match_when_sent(world):
    c, (one, _two), staff = world
    read = c.get(f"/api/v1/members/{one}", headers=staff)
    building = read.get_json()["building"]["code"]
    stale = f'"member-{one}-{read.get_json()["version"] + 5}"'
    refused = c.post(f"/api/v1/members/{one}/confirm", headers=staff | {"If-Match": stale},
                     json={"building": building})
    assert refused.status_code == 412
    ok = c.post(f"/api/v1/members/{one}/confirm", headers=staff | {
        "If-Match": read.headers["ETag"]}, json={"building": building})
    assert ok.status_code == 200 and ok.get_json()["match"]["method"] == "staff"
    assert ok.headers["ETag"] != read.headers["ETag"]
    plain = c.post(f"/api/v1/members/{one}/confirm", headers=staff,
                   json={"building": building})
    assert plain.status_code == 200


def test_the_service_refuses_a_stale_version(world, settings):
    from gridsvc.services.context import Services
    from gridsvc.services.errors import PreconditionRequired, VersionConflict

    _c, (one, _two), _staff = world
    svc = Services.from_settings(settings)
    try:
        version = members.get_member(svc, one, viewer=cli_principal())["version"]
        with pytest.raises(VersionConflict):
            members.update_member(svc, one, {"skills": ["x"]}, expected_version=version + 1,
                viewer=cli_principal())
        with pytest.raises(PreconditionRequired):
            members.update_member(svc, one, {"skills": ["x"]}, require_version=True,
                viewer=cli_principal())
        done = members.update_member(svc, one, {"skills": ["x"]}, expected_version=version,
            viewer=cli_principal())
        assert done["version"] == version + 1
    finally:
        svc.close()

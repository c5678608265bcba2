"""Poisoned text (issue 9, item 5): lone surrogates, NUL and other control characters and
overlong strings are refused at the edge with a 400 (or the boundary report's ``bad-text``)
naming the field, the same way on both databases, and nothing is stored."""

from __future__ import annotations

import io

import pytest
from api_support import C2, app_client, bearer
from members_support import HEADER, city, city_services, write_csv
from members_support import member_id as registered_id
from ogc_support import FREE_IN_C2, feature, ogc_records
from sqlalchemy import func, select

from gridsvc.access import cli_principal
from gridsvc.services.boundaries import import_records
from gridsvc.storage.models import Member, RosterRow, Unit
from gridsvc.validation.text_rules import (
    TEXT_MAX,
    TextRuleError,
    check_text,
    limits_of,
    text_problem,
)

pytestmark = pytest.mark.storage


def test_the_checker_names_each_kind_of_poison():
    assert text_problem("张三 Zhang") is None
    assert "lone surrogate" in text_problem("a\udc00")
    assert "NUL" in text_problem("a\x00b")
    assert "U+001B" in text_problem("\x1b[31m")
    assert "U+0085" in text_problem("a\x85")  # C1
    assert text_problem("line\nbreak", multiline=True) is None
    assert "U+000A" in text_problem("line\nbreak")
    assert "at most 100" in text_problem("x" * 101, 100)
    assert text_problem("　全角空格") is None  # an ideographic space is text
    with pytest.raises(TextRuleError) as info:
        check_text("\x00", "name", row=3)
    assert info.value.field == "name" and info.value.row == 3
    assert limits_of(Member)["name"] == 100 and limits_of(Unit)["code"] == 64


@pytest.fixture
def members_app(settings, tmp_path):
    city_services(settings, tmp_path).close()
    with app_client(settings) as client:
        yield client


def _members(client) -> int:
    svc = client.application.extensions["gridsvc"]
    with svc.db.session() as s:
        return s.scalar(select(func.count()).select_from(Member))


def _body(**fields) -> dict:
    e = city().gazetteer[0]
    return {"name": "张三", "phone": "13812341234", "home_address": e.address} | fields


@pytest.mark.parametrize(("raw", "field", "why"), [
    ('"skills": ["\\udc00"]', "skills[0]", "lone surrogate"),
    ('"name": "张\\u0000三"', "name", "NUL"),
    ('"name": "张\\u001b三"', "name", "control character"),
    ('"name": "' + "张" * (TEXT_MAX + 1) + '"', "name", "at most"),
])
def test_poisoned_json_strings_are_400_naming_the_field(members_app, raw, field, why):
    e = city().gazetteer[0]
    body = '{"phone": "13812341234", "home_address": "' + e.address + '", ' + raw + "}"
    if '"name"' not in raw:
        body = body[:-1] + ', "name": "张三"}'
    resp = members_app.post("/api/v1/members", data=body, content_type="application/json")
    problem = resp.get_json()
    assert resp.status_code == 400, problem
    assert problem["field"] == field and why in problem["detail"]
    assert _members(members_app) == 0


@pytest.mark.parametrize(("fields", "field"), [
    ({"name": "张" * 101}, "name"),  # Member.name is String(100)
    ({"party_org": "党" * 201}, "party_org"),
    ({"skills": ["电" * 101]}, "skills[0]"),  # list items: ITEM_MAX
    ({"name": "张\n三"}, "name"),  # a line break is no part of a name
])
def test_each_field_is_held_to_its_column_length_and_line(members_app, settings, fields,
                                                          field):
    resp = members_app.post("/api/v1/members", json=_body(**fields))
    assert resp.status_code == 400 and resp.get_json()["field"] == field, resp.get_json()
    assert _members(members_app) == 0
    ok = members_app.post("/api/v1/members", json=_body())
    assert ok.status_code == 202, ok.get_json()
    member_id = registered_id(members_app, _body()["phone"])
    staff = bearer(settings, "staff")
    update = members_app.put(f"/api/v1/members/{member_id}", json=_body(**fields),
                             headers=staff)
    assert update.status_code == 400 and update.get_json()["field"] == field
    svc = members_app.application.extensions["gridsvc"]
    with svc.db.session() as s:
        assert s.get(Member, member_id).name == "张三"


def test_a_roster_cell_with_a_control_character_refuses_the_file_naming_row_and_column(
        members_app, settings, tmp_path):
    e = city().gazetteer[0]
    good = ["李四", "13900001111", "", e.address, "", "", "", "", "", ""]
    bad = ["王\x07五", "13900002222", "", e.address, "", "", "", "", "", ""]
    path = write_csv(tmp_path / "r.csv", [good, bad])
    staff = bearer(settings, "staff")
    resp = members_app.post("/api/v1/rosters", headers=staff, data={
        "file": (io.BytesIO(path.read_bytes()), "r.csv")})
    problem = resp.get_json()
    assert resp.status_code == 400, problem
    assert problem["row"] == 3 and problem["field"] == HEADER[0]
    assert _members(members_app) == 0
    svc = members_app.application.extensions["gridsvc"]
    with svc.db.session() as s:
        assert s.scalar(select(func.count()).select_from(RosterRow)) == 0


def test_a_roster_row_with_an_overlong_field_is_rejected_with_its_reason(
        members_app, settings, tmp_path):
    e = city().gazetteer[0]
    rows = [["李四", "13900001111", "", e.address, "", "", "", "", "", ""],
            ["王五", "13900002222", "单" * 201, e.address, "", "", "", "", "", ""]]
    path = write_csv(tmp_path / "r.csv", rows)
    resp = members_app.post("/api/v1/rosters", headers=bearer(settings, "staff"), data={
        "file": (io.BytesIO(path.read_bytes()), "r.csv")})
    assert resp.status_code == 201, resp.get_json()
    assert resp.get_json()["counts"]["rejected"] == 1
    rows = members_app.get(f"/api/v1/rosters/{resp.get_json()['id']}/rows?status=rejected",
                           headers=bearer(settings, "staff")).get_json()["items"]
    assert [(r["row"], r["problems"][0]["field"]) for r in rows] == [(3, "work_unit")]
    assert _members(members_app) == 1


@pytest.fixture
def ogc_client(settings):
    with app_client(settings) as c:
        assert import_records(c.application.extensions["gridsvc"], ogc_records(),
            viewer=cli_principal()).stored
        yield c


def test_ogc_writes_hold_unit_texts_to_their_columns(ogc_client, settings):
    admin = bearer(settings, "admin")
    new = C2 + "09"
    long_name = feature(new, FREE_IN_C2, C2, name="网" * 201)
    resp = ogc_client.post("/ogc/collections/grid/items", json=long_name, headers=admin)
    assert resp.status_code == 422, resp.get_json()
    problems = resp.get_json()["report"]["problems"]
    assert [(p["rule"], p["field"]) for p in problems if p["severity"] == "error"] == [
        ("bad-text", "name")]
    surrogate = ('{"type": "Feature", "geometry": null, "properties": {"code": "' + new
                 + '", "name": "\\ud800"}}')
    resp = ogc_client.post("/ogc/collections/grid/items", data=surrogate,
                           content_type="application/geo+json", headers=admin)
    assert resp.status_code == 400 and resp.get_json()["field"] == "properties.name"
    svc = ogc_client.application.extensions["gridsvc"]
    with svc.db.session() as s:
        assert s.scalar(select(Unit).where(Unit.code == new)) is None


def test_a_boundary_file_with_a_control_character_fails_validation_naming_row_and_field(
        settings):
    records = ogc_records()
    records[2].leader = "张\x00伟"
    records[4].properties = {"note": "x" * (TEXT_MAX + 1)}
    with app_client(settings) as c:
        svc = c.application.extensions["gridsvc"]
        outcome = import_records(svc, records, viewer=cli_principal())
        assert not outcome.stored
        found = [(p.rule, p.row, p.field) for p in outcome.report.errors]
        assert found == [("bad-text", records[2].row, "leader"),
                         ("bad-text", records[4].row, "properties.note")]
        with svc.db.session() as s:
            assert s.scalar(select(func.count()).select_from(Unit)) == 0

"""A planner's edit of one unit: the service (check, save with a version) and the edit API
(ETag / If-Match, 412, 428, 422, 404), on both databases."""

from __future__ import annotations

import dataclasses

import pytest
import shapely
from api_support import B1, B2, G1, G2, H1, app_client, bearer, sample_records, sign_in
from jsonschema import Draft202012Validator
from shapely.geometry import box, mapping
from sqlalchemy import select

from gridsvc.access import cli_principal
from gridsvc.services import editing
from gridsvc.services.boundaries import import_records
from gridsvc.services.context import Services
from gridsvc.services.errors import NotFound, ValidationFailed
from gridsvc.spatial.metric import area_m2
from gridsvc.storage.models import Member, Unit
from gridsvc.web.openapi import openapi_document

pytestmark = pytest.mark.storage

RECORDS = {r.code: r for r in sample_records()}
# (name, phone, lon, lat) in wgs84: two homes in B1, one in B2, one between B1 and B2
HOMES = [("王芳", "13800000001", 120.9007, 32.0008), ("李强", "13800000002", 120.9009, 32.0006),
         ("赵敏", "13800000003", 120.9017, 32.0007), ("孙丽", "13800000004", 120.9012, 32.0007)]
G1_INTO_G2 = box(120.900, 32.000, 120.903, 32.0025)  # G1 reaching 0.0005° into G2
B2_WIDER = box(120.9011, 32.0005, 120.9020, 32.0010)  # B2 grown west over 孙丽's home
BOWTIE = {"type": "Polygon", "coordinates": [[[120.9015, 32.0005], [120.9020, 32.0010],
                                              [120.9020, 32.0005], [120.9015, 32.0010],
                                              [120.9015, 32.0005]]]}


def building_of(lon: float, lat: float, buildings: dict[str, shapely.Geometry]) -> str | None:
    found = [code for code, geom in buildings.items() if geom.covers(shapely.Point(lon, lat))]
    return found[0] if found else None


@pytest.fixture
def svc(settings):
    """The sample tree, and members placed in the building that covers their home (found
    with shapely); the home between the buildings waits for confirmation."""
    services = Services.from_settings(settings)
    assert import_records(services, sample_records(), viewer=cli_principal()).stored
    buildings = {code: RECORDS[code].geometry for code in (B1, B2)}
    with services.db.session() as s:
        ids = {code: id_ for code, id_ in s.execute(select(Unit.code, Unit.id))}
        for name, phone, lon, lat in HOMES:
            code = building_of(lon, lat, buildings)
            s.add(Member(name=name, phone=phone, lon=lon, lat=lat, skills=[], intentions=[],
                         roles=[], building_id=ids[code] if code else None,
                         household_id=ids[H1] if code else None,
                         status="assigned" if code else "needs-confirmation",
                         match={"method": "point", "fallback": code is None}))
    yield services
    services.close()


@pytest.fixture
def client(svc, settings):
    """A city-wide planner's client (tests/test_scope_units.py covers scoped planners)."""
    with app_client(settings) as c:
        yield sign_in(c, settings, "planner")


def stored_geometry(client, code: str) -> shapely.Geometry:
    body = client.get(f"/api/v1/units/{code}?f=geojson").get_json()
    return shapely.geometry.shape(body["geometry"])


def member_buildings(svc: Services) -> dict[str, int | None]:
    with svc.db.session() as s:
        return {phone: b for phone, b in s.execute(select(Member.phone, Member.building_id))}


# -- service -----------------------------------------------------------------------------------

def test_check_reports_the_overlap_with_the_sibling_and_its_area(svc):
    result = editing.check_edit(svc, G1, geometry=G1_INTO_G2, viewer=cli_principal())
    assert not result.ok and result.version == 1
    [overlap] = [p for p in result.outcome.report.errors if p.rule == "overlapping-siblings"]
    assert (overlap.code, overlap.other_code) == (G1, G2)
    expected = area_m2(G1_INTO_G2.intersection(RECORDS[G2].geometry))
    assert overlap.area_m2 == pytest.approx(expected, rel=0.01)
    assert not result.outcome.stored


def test_a_valid_edit_previews_exactly_the_members_who_move_and_stores_nothing(svc):
    before = member_buildings(svc)
    old = {B1: RECORDS[B1].geometry, B2: RECORDS[B2].geometry}
    new = {B1: RECORDS[B1].geometry, B2: B2_WIDER}
    expected = sorted(name[0] + "*" for name, _p, lon, lat in HOMES
                      if building_of(lon, lat, old) != building_of(lon, lat, new))
    assert expected  # the edit does move someone
    result = editing.check_edit(svc, B2, geometry=B2_WIDER, viewer=cli_principal())
    assert result.ok
    assert sorted(m.label for m in result.outcome.moves) == expected
    assert all(m.to_code == B2 and not m.fallback for m in result.outcome.moves)
    assert member_buildings(svc) == before
    assert editing.stored_version(svc, B2) == 1


def test_save_stores_bumps_the_version_and_applies_the_moves(svc):
    result = editing.save_edit(svc, B2, 1, geometry=B2_WIDER, viewer=cli_principal())
    assert result.version == 2 and result.unit is not None
    assert shapely.equals(result.unit.geometry, B2_WIDER)
    moved = {m.id for m in result.outcome.moves}
    with svc.db.session() as s:
        b2 = s.scalar(select(Unit.id).where(Unit.code == B2))
        in_b2 = set(s.scalars(select(Member.id).where(Member.building_id == b2)))
    assert moved and moved <= in_b2


def test_save_with_an_old_version_or_a_failing_rule_stores_nothing(svc):
    editing.save_edit(svc, B2, 1, geometry=B2_WIDER, viewer=cli_principal())
    with pytest.raises(editing.VersionMismatch) as stale:
        editing.save_edit(svc, B2, 1, geometry=RECORDS[B2].geometry, viewer=cli_principal())
    assert stale.value.extra["version"] == 2
    with pytest.raises(ValidationFailed) as failed:
        editing.save_edit(svc, G1, 1, geometry=G1_INTO_G2, viewer=cli_principal())
    rules = {p["rule"] for p in failed.value.extra["report"]["problems"]}
    assert "overlapping-siblings" in rules
    assert editing.stored_version(svc, G1) == 1
    with pytest.raises(NotFound):
        editing.check_edit(svc, "NOPE", geometry=B2_WIDER, viewer=cli_principal())


@pytest.mark.parametrize("body", [
    None, [], {"type": "Polygon"}, {"type": "Polygon", "coordinates": [[[1, 2]]]},
    {"type": "LineString", "coordinates": [[1, 2], [3, 4]]}, {"type": "Feature"},
])
def test_geometry_that_is_not_geojson_is_refused_naming_the_field(body):
    with pytest.raises(editing.InvalidInput) as exc:
        editing.geometry_from_geojson(body)
    assert exc.value.extra["field"] == "geometry"


# -- API ---------------------------------------------------------------------------------------

def test_unit_responses_carry_the_version_as_etag(client):
    resp = client.get(f"/api/v1/units/{B2}")
    assert resp.status_code == 200
    assert resp.headers["ETag"] == f'"{B2}-{resp.get_json()["version"]}"'
    assert client.get(f"/api/v1/units/{B2}?f=geojson").headers["ETag"] == f'"{B2}-1"'


def test_check_over_http_names_the_overlap_and_draws_it(client):
    resp = client.post(f"/api/v1/units/{G1}/geometry/check", json=mapping(G1_INTO_G2))
    assert resp.status_code == 200
    body = resp.get_json()
    assert body["ok"] is False and body["version"] == 1
    [overlap] = [f for f in body["problem_features"]["features"]
                 if f["properties"]["rule"] == "overlapping-siblings"]
    assert overlap["properties"]["other_code"] == G2
    drawn = shapely.geometry.shape(overlap["geometry"])
    assert drawn.area == pytest.approx(G1_INTO_G2.intersection(RECORDS[G2].geometry).area,
                                       rel=0.01)
    assert stored_geometry(client, G1).equals(RECORDS[G1].geometry)


def test_check_over_http_previews_moves_and_needs_a_planner_token(client, settings):
    feature = {"type": "Feature", "geometry": mapping(B2_WIDER), "properties": {}}
    resp = client.post(f"/api/v1/units/{B2}/geometry/check", json=feature)
    assert resp.status_code == 200
    body = resp.get_json()
    assert body["ok"] is True
    assert [(m["subject"], m["label"], m["to"][-1]) for m in body["moves"]] == [
        ("member", "孙*", B2)]
    url = f"/api/v1/units/{B2}/geometry/check"
    assert client.post(url, json=feature, headers={"Authorization": ""}).status_code == 401
    assert client.post(url, json=feature, headers=bearer(settings, "staff")).status_code == 403


def test_put_with_if_match_stores_then_the_old_etag_gets_412(client, svc):
    etag = client.get(f"/api/v1/units/{B2}").headers["ETag"]
    first = client.put(f"/api/v1/units/{B2}/geometry", json=mapping(B2_WIDER),
                       headers={"If-Match": etag})
    assert first.status_code == 200, first.get_json()
    body = first.get_json()
    assert body["version"] == body["unit"]["version"] == 2
    assert first.headers["ETag"] == f'"{B2}-2"' != etag
    assert [m["label"] for m in body["moves"]] == ["孙*"]
    assert stored_geometry(client, B2).equals(B2_WIDER)
    assert client.get(f"/api/v1/units/{B2}").headers["ETag"] == first.headers["ETag"]

    other = box(120.9013, 32.0005, 120.9020, 32.0010)  # another planner, still at version 1
    second = client.put(f"/api/v1/units/{B2}/geometry", json=mapping(other),
                        headers={"If-Match": etag})
    assert second.status_code == 412
    problem = second.get_json()
    assert problem["type"] == "/problems/precondition-failed" and problem["version"] == 2
    assert stored_geometry(client, B2).equals(B2_WIDER)
    assert editing.stored_version(svc, B2) == 2


@pytest.mark.parametrize("if_match", [None, "*"])
def test_put_without_an_etag_is_428(client, if_match):
    headers = ({"If-Match": if_match} if if_match else {})
    resp = client.put(f"/api/v1/units/{B2}/geometry", json=mapping(B2_WIDER), headers=headers)
    assert resp.status_code == 428
    assert resp.get_json()["type"] == "/problems/precondition-required"
    assert stored_geometry(client, B2).equals(RECORDS[B2].geometry)


def test_put_of_an_invalid_geometry_is_422_with_the_report(client):
    resp = client.put(f"/api/v1/units/{B2}/geometry", json=BOWTIE,
                      headers={"If-Match": f'"{B2}-1"'})
    assert resp.status_code == 422
    problem = resp.get_json()
    assert problem["type"] == "/problems/validation-failed"
    assert problem["report"]["errors"] >= 1
    assert {p["code"] for p in problem["report"]["problems"] if p["severity"] == "error"} == {B2}
    assert stored_geometry(client, B2).equals(RECORDS[B2].geometry)
    assert client.get(f"/api/v1/units/{B2}").headers["ETag"] == f'"{B2}-1"'


def test_unknown_unit_is_404_and_bad_body_400(client):
    for method, url in (("post", "/api/v1/units/NOPE/geometry/check"),
                        ("put", "/api/v1/units/NOPE/geometry")):
        resp = getattr(client, method)(url, json=mapping(B2_WIDER),
                                       headers={"If-Match": '"NOPE-1"'})
        assert resp.status_code == 404, (method, resp.get_json())
    resp = client.post(f"/api/v1/units/{B2}/geometry/check", data="not json")
    assert resp.status_code == 400 and resp.get_json()["field"] == "geometry"


def test_edit_responses_match_the_documented_schemas(client):
    doc = openapi_document()
    ok = f'"{B2}-1"'
    calls = [
        ("post", "/api/v1/units/{code}/geometry/check", G1, {}, mapping(G1_INTO_G2)),
        ("put", "/api/v1/units/{code}/geometry", B2, {"If-Match": ok}, BOWTIE),
        ("put", "/api/v1/units/{code}/geometry", B2, {"If-Match": ok}, mapping(B2_WIDER)),
        ("put", "/api/v1/units/{code}/geometry", B2, {"If-Match": ok}, mapping(B2_WIDER)),
        ("put", "/api/v1/units/{code}/geometry", B2, {}, mapping(B2_WIDER)),
    ]
    statuses = []
    for method, path, code, headers, body in calls:
        resp = getattr(client, method)(path.replace("{code}", code), json=body,
                                       headers=headers)
        documented = doc["paths"][path][method]["responses"][str(resp.status_code)]
        if "$ref" in documented:  # #/components/responses/<name>
            documented = doc["components"]["responses"][documented["$ref"].split("/")[-1]]
        content = documented["content"]
        schema = content[resp.mimetype]["schema"]
        validator = Draft202012Validator({**schema, "components": doc["components"]})
        errors = [e.message for e in validator.iter_errors(resp.get_json())]
        assert not errors, (method, path, resp.status_code, errors[:3])
        statuses.append(resp.status_code)
    assert statuses == [200, 422, 200, 412, 428]


def test_attributes_are_edited_with_the_same_version_check(svc):
    result = editing.save_edit(svc, B2, 1, attributes={"name": "阳光小区2栋(改)", "leader": None},
        viewer=cli_principal())
    assert result.version == 2
    assert (result.unit.props["name"], result.unit.props["leader"]) == ("阳光小区2栋(改)", None)
    assert shapely.equals(result.unit.geometry, RECORDS[B2].geometry)
    for bad in ({"code": "X"}, {"households": "many"}):
        with pytest.raises(editing.InvalidInput) as exc:
            editing.save_edit(svc, B2, 2, attributes=bad, viewer=cli_principal())
        assert exc.value.extra["field"] == next(iter(bad))
    assert editing.stored_version(svc, B2) == 2


@pytest.mark.storage
def test_editor_refuses_a_gcj02_base_map_with_a_problem(settings):
    import dataclasses

    from api_support import app_client

    gcj = dataclasses.replace(settings, basemap="xyz", basemap_coordsys="gcj02",
                              basemap_url="http://127.0.0.1:1/{z}/{x}/{y}.png")
    with app_client(gcj) as client:
        response = client.get("/maps/editor")
        assert response.status_code == 503
        assert response.get_json()["type"] == "/problems/basemap-refused"
        assert "gcj02" in response.get_json()["detail"]


@pytest.mark.storage
def test_save_refuses_when_another_save_lands_after_the_version_check(settings, monkeypatch):
    """The window between save_edit's own check and the import's read is closed too."""
    from api_support import G1, sample_records

    from gridsvc.services import editing
    from gridsvc.services.boundaries import import_records
    from gridsvc.services.context import Services

    svc = Services.from_settings(settings)
    try:
        assert import_records(svc, sample_records(), viewer=cli_principal()).stored
        real_import = editing.import_records

        def someone_else_saves_first(svc_, records, **kwargs):
            other = [dataclasses.replace(r, name="别人改的") for r in records]
            assert real_import(svc_, other, viewer=cli_principal()).updated == 1
            return real_import(svc_, records, **kwargs)

        monkeypatch.setattr(editing, "import_records", someone_else_saves_first)
        with pytest.raises(editing.VersionMismatch):
            editing.save_edit(svc, G1, 1, attributes={"name": "我改的"}, viewer=cli_principal())
        assert editing.stored_version(svc, G1) == 2
    finally:
        svc.close()

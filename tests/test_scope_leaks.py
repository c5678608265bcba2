"""What a scoped token's write answers may not reveal about units outside its subtree
(issue 9, items 2 and 9): the editor's check names an out-of-scope neighbour it overlaps but
draws none of its boundary; a create or import with a code that exists outside the subtree
does not say it exists; conflict messages carry no ids of records the caller may not see."""

from __future__ import annotations

import pytest
import shapely
from api_support import B1, B2, C1, C2, G2, G3, app_client, bearer, write_geojson
from ogc_support import FREE_IN_C2, feature, ogc_records
from shapely.geometry import box, mapping

from gridsvc.access import cli_principal
from gridsvc.io.records import BoundaryRecord
from gridsvc.services.boundaries import import_records

pytestmark = pytest.mark.storage

B2_BOX = box(120.9015, 32.0005, 120.9020, 32.0010)
B1_OVER_B2 = box(120.9005, 32.0005, 120.9021, 32.0011)  # B1 grown over all of B2


@pytest.fixture
def client(settings):
    with app_client(settings) as c:
        assert import_records(c.application.extensions["gridsvc"], ogc_records(),
            viewer=cli_principal()).stored
        yield c


def shapes(body) -> list[shapely.Geometry]:
    """Every geometry anywhere in an answer (problem features, report geometry_wkt)."""
    found = []

    def walk(node):
        if isinstance(node, dict):
            if node.get("type") == "Feature" and node.get("geometry"):
                found.append(shapely.geometry.shape(node["geometry"]))
            if isinstance(node.get("geometry_wkt"), str):
                found.append(shapely.from_wkt(node["geometry_wkt"]))
            for value in node.values():
                walk(value)
        elif isinstance(node, list):
            for value in node:
                walk(value)

    walk(body)
    return found


def test_the_editor_check_names_an_out_of_scope_neighbour_but_draws_none_of_it(client,
                                                                               settings):
    url = f"/api/v1/units/{B1}/geometry/check"
    for token, sees_b2 in ((bearer(settings, "planner", unit=B1), False),
                           (bearer(settings, "planner", unit=C1), True)):
        body = client.post(url, json=mapping(B1_OVER_B2), headers=token).get_json()
        overlaps = [p for p in body["report"]["problems"]
                    if p["rule"] == "overlapping-siblings"]
        assert [p["other_code"] for p in overlaps] == [B2], body
        assert overlaps[0]["area_m2"] > 0
        drawn = shapely.union_all(shapes(body)) if shapes(body) else shapely.Point()
        seen = drawn.intersection(B2_BOX).area / B2_BOX.area
        assert (seen > 0.99) if sees_b2 else (seen < 0.01), (token, seen)
    # the same holds for the refused save
    v = client.get(f"/api/v1/units/{B1}", headers=bearer(settings, "admin")).get_json()[
        "version"]
    save = client.put(f"/api/v1/units/{B1}/geometry", json=mapping(B1_OVER_B2),
                      headers=bearer(settings, "planner", unit=B1) | {
                          "If-Match": f'"{B1}-{v}"'})
    assert save.status_code == 422
    assert all(s.intersection(B2_BOX).area < 0.01 * B2_BOX.area for s in shapes(save.get_json()))


def test_a_create_with_a_code_taken_outside_the_subtree_does_not_say_it_exists(client,
                                                                               settings):
    planner = bearer(settings, "planner", unit=C1)
    inside = client.post("/ogc/collections/grid/items", headers=planner,
                         json=feature(G2, box(120.9001, 32.0021, 120.9002, 32.0022), C1))
    assert inside.status_code == 409 and "exists" in inside.get_json()["detail"]
    outside = client.post("/ogc/collections/grid/items", headers=planner,
                          json=feature(G3, box(120.9001, 32.0021, 120.9002, 32.0022), C1))
    problem = outside.get_json()
    assert outside.status_code == 409, problem
    assert "exist" not in problem["detail"]
    assert set(problem) == {"type", "title", "status", "detail", "instance", "code"}
    admin = bearer(settings, "admin")
    assert client.get(f"/ogc/collections/grid/items/{G3}", headers=admin).get_json()[
        "properties"]["parent_code"] == C2  # untouched


def test_an_import_of_a_code_taken_outside_reads_like_a_parent_outside(client, settings,
                                                                      tmp_path):
    planner = bearer(settings, "planner", unit=C1)

    def refused(code: str, parent: str) -> str:
        rec = BoundaryRecord(row=1, code=code, name="新网格", level=3, parent_code=parent,
                             geometry=FREE_IN_C2)
        path = write_geojson([rec], tmp_path / f"{code}.geojson")
        resp = client.post("/api/v1/boundaries/import", headers=planner, data={
            "file": (path.open("rb"), path.name)})
        assert resp.status_code == 403, resp.get_json()
        return resp.get_json()["detail"].replace(code, "CODE")

    assert refused(G3, C1) == refused(C2 + "77", C2)  # taken outside / parent outside


def test_a_phone_conflict_names_no_member_id(settings, tmp_path):
    from members_support import city, city_services, if_match, member_id

    city_services(settings, tmp_path).close()
    e = city().gazetteer
    with app_client(settings) as c:
        ids = []
        for i, phone in enumerate(("13900001111", "13900002222")):
            resp = c.post("/api/v1/members", json={"name": "张三", "phone": phone,
                                                   "home_address": e[i].address})
            assert resp.status_code == 202, resp.get_json()
            ids.append(member_id(c, phone))
        resp = c.put(f"/api/v1/members/{ids[1]}", json={"phone": "13900001111"},
                     headers=if_match(c, ids[1], bearer(settings, "staff")))
        problem = resp.get_json()
        assert resp.status_code == 409 and problem["field"] == "phone", problem
        assert str(ids[0]) not in problem["detail"] and "id" not in problem

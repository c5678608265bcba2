"""Coverage figures: exact per-unit figures on a small tree, the API (JSON, GeoJSON, problems,
documented shapes) and the CLI. Members are inserted directly with the ORM.

The tree is api_support's sample plus B3 (grid G3) and B4 (grid G2):

    S ─ C1 ─ G1 ─ B1 (70 households, leader, 中心户 H1)
       │    │    └ B2 (45 households, no leader)
       │    └ G2 (no secretary) ─ B4 (households unknown)
       └ C2 ─ G3 ─ B3 (0 households)

Members (status, building, 中心户): B1: 2 assigned with H1, 1 assigned without, 1
needs-confirmation; B2: 2 assigned without, 1 rejected; B3: 1 needs-confirmation; B4: 1
assigned without; and 1 rejected with no building.
"""

from __future__ import annotations

import json

import pytest
from api_support import B1, B2, C1, C2, G1, G2, G3, H1, S, app_client, sample_records, sign_in
from click.testing import CliRunner
from jsonschema import Draft202012Validator
from shapely.geometry import box
from sqlalchemy import select

from gridsvc.access import cli_principal
from gridsvc.cli import cli
from gridsvc.io.records import BoundaryRecord
from gridsvc.services import coverage
from gridsvc.services.boundaries import import_records
from gridsvc.services.context import Services
from gridsvc.services.errors import InvalidInput, NotFound
from gridsvc.storage.models import Member, Unit
from gridsvc.web.openapi import openapi_document

B3, B4 = G3 + "01", G2 + "01"

# Figures worked out by hand from the module docstring. Columns: households, members,
# needs_confirmation, members_per_100, buildings, grids, buildings_households_unknown,
# buildings_without_leader, grids_without_secretary, buildings_without_member,
# buildings_without_household, homes_without_household, gaps.
COLUMNS = ("households", "members", "needs_confirmation", "members_per_100", "buildings",
           "grids", "buildings_households_unknown", "buildings_without_leader",
           "grids_without_secretary", "buildings_without_member",
           "buildings_without_household", "homes_without_household", "gaps")
EXPECTED = {
    # 300/70 = 4.29 -> 4.3; 200/45 = 4.44 -> 4.4
    B1: (70, 3, 1, 4.3, 1, 0, 0, 0, 0, 0, 0, 1, 1),
    B2: (45, 2, 0, 4.4, 1, 0, 0, 1, 0, 0, 1, 2, 4),
    B3: (0, 0, 1, None, 1, 0, 0, 0, 0, 1, 1, 0, 2),
    B4: (None, 1, 0, None, 1, 0, 1, 0, 0, 0, 1, 1, 2),
    # 500/115 = 4.35 -> 4.3
    G1: (115, 5, 1, 4.3, 2, 1, 0, 1, 0, 0, 1, 3, 5),
    G2: (None, 1, 0, None, 1, 1, 1, 0, 1, 0, 1, 1, 3),
    G3: (0, 0, 1, None, 1, 1, 0, 0, 0, 1, 1, 0, 2),
    # B4's member is left out of the rate (its households are unknown): 5/115, not 6/115
    C1: (115, 6, 1, 4.3, 3, 2, 1, 1, 1, 0, 2, 4, 8),
    C2: (0, 0, 1, None, 1, 1, 0, 0, 0, 1, 1, 0, 2),
    S: (115, 6, 2, 4.3, 4, 3, 1, 1, 1, 1, 3, 4, 10),
}


def expected(code: str) -> dict:
    figures = dict(zip(COLUMNS, EXPECTED[code], strict=True))
    figures["assigned"] = figures["members"]
    return figures


def tree_records() -> list[BoundaryRecord]:
    records = sample_records()
    records += [
        BoundaryRecord(row=10, code=B3, name="幸福小区3栋", level=4, parent_code=G3,
                       geometry=box(120.9040, 32.0010, 120.9045, 32.0015), leader="李强"),
        BoundaryRecord(row=11, code=B4, name="阳光小区4栋", level=4, parent_code=G2,
                       geometry=box(120.9005, 32.0025, 120.9010, 32.0030), leader="赵敏"),
    ]
    by_code = {r.code: r for r in records}
    for code, households in ((B1, 70), (B2, 45), (B3, 0), (B4, None)):
        by_code[code].households = households
    for code in (B2, G2):
        by_code[code].leader = by_code[code].phone = None
    return records


def add_members(svc: Services) -> None:
    with svc.db.session() as session:
        ids = dict(session.execute(select(Unit.code, Unit.id)).all())
        rows = [
            (B1, "assigned", H1), (B1, "assigned", H1), (B1, "assigned", None),
            (B1, "needs-confirmation", None),
            (B2, "assigned", None), (B2, "assigned", None), (B2, "rejected", None),
            (B3, "needs-confirmation", None),
            (B4, "assigned", None),
            (None, "rejected", None),
        ]
        session.add_all(
            Member(name=f"党员{n}", phone=f"1390000{n:04d}", status=status,
                   building_id=ids[building] if building else None,
                   household_id=ids[home] if home else None)
            for n, (building, status, home) in enumerate(rows)
        )


@pytest.fixture
def svc(settings):
    services = Services.from_settings(settings)
    assert import_records(services, tree_records(), viewer=cli_principal()).stored
    add_members(services)
    yield services
    services.close()


def figures_of(item: dict) -> dict:
    return {k: item[k] for k in (*COLUMNS, "assigned")}


def test_figures_of_every_unit_match_the_hand_count(svc):
    for code in EXPECTED:
        result = coverage.unit_coverage(svc, code, viewer=cli_principal())
        assert result.unit["code"] == code
        assert figures_of(result.unit) == expected(code), code


def test_unit_lists_its_children_with_their_figures(svc):
    result = coverage.unit_coverage(svc, C1, viewer=cli_principal())
    assert [c["code"] for c in result.children] == [G1, G2]
    assert [figures_of(c) for c in result.children] == [expected(G1), expected(G2)]
    assert result.unit["parent_code"] == S and result.unit["level_key"] == "community"
    assert coverage.unit_coverage(svc, B1,
        viewer=cli_principal()).children == []  # its 中心户 has no area figures


def test_unknown_unit_and_household_units_are_refused(svc):
    with pytest.raises(NotFound):
        coverage.unit_coverage(svc, "NOPE", viewer=cli_principal())
    with pytest.raises(InvalidInput) as exc:
        coverage.unit_coverage(svc, H1, viewer=cli_principal())
    assert exc.value.extra["field"] == "unit"
    with pytest.raises(InvalidInput) as exc:
        coverage.level_coverage(svc, "household", viewer=cli_principal())
    assert exc.value.extra["field"] == "level"


def test_level_lists_filter_sort_and_page(svc):
    grids = coverage.level_coverage(svc, "grid", parent=C1, viewer=cli_principal())
    assert [i["code"] for i in grids.items] == [G1, G2]
    assert grids.summary == {k: v for k, v in coverage.unit_coverage(svc, C1,
        viewer=cli_principal()).unit.items()
                             if k in grids.summary}

    def codes(**kw) -> list[str]:
        return [i["code"] for i in coverage.level_coverage(
            svc, "building", **kw, viewer=cli_principal()).items]

    assert codes() == [B1, B2, B4, B3]  # by code
    assert codes(sort="gaps") == [B2, B4, B3, B1]  # most gaps first, ties by code
    assert codes(sort="members_per_100") == [B1, B2, B4, B3]  # lowest first, nulls last
    assert codes(sort="members_per_100", order="desc") == [B2, B1, B4, B3]
    page = coverage.level_coverage(svc, 4, limit=2, offset=1, viewer=cli_principal())
    assert [i["code"] for i in page.items] == [B2, B4] and page.total == 4
    # all buildings together: the street's figures, less its grids (buildings hold none)
    assert figures_of(page.summary) == expected(S) | {
        "grids": 0, "grids_without_secretary": 0, "gaps": 9}
    with pytest.raises(InvalidInput) as exc:
        coverage.level_coverage(svc, "grid", parent=B1, viewer=cli_principal())
    assert exc.value.extra["field"] == "parent"


def _validator(schema: dict) -> Draft202012Validator:
    return Draft202012Validator({**schema, "components": openapi_document()["components"]})


def _documented(media: str) -> dict:
    op = openapi_document()["paths"]["/api/v1/coverage"]["get"]
    return op["responses"]["200"]["content"][media]["schema"]


@pytest.fixture
def client(svc, settings):
    """An administrator's client (tests/test_scope_units.py covers the other roles)."""
    with app_client(settings) as c:
        yield sign_in(c, settings)


def test_api_unit_json_and_geojson(client):
    resp = client.get(f"/api/v1/coverage?unit={C1}")
    assert resp.status_code == 200 and resp.mimetype == "application/json"
    body = resp.get_json()
    assert figures_of(body["unit"]) == expected(C1)
    assert [figures_of(c) for c in body["children"]] == [expected(G1), expected(G2)]
    assert not list(_validator(_documented("application/json")).iter_errors(body))

    resp = client.get(f"/api/v1/coverage?unit={G1}",
                      headers={"Accept": "application/geo+json"})
    assert resp.mimetype == "application/geo+json"
    fc = resp.get_json()
    assert fc["type"] == "FeatureCollection"
    assert [(f["id"], f["properties"]["role"]) for f in fc["features"]] == [
        (G1, "unit"), (B1, "child"), (B2, "child")]
    b1 = fc["features"][1]
    assert b1["geometry"]["type"] in ("Polygon", "MultiPolygon")
    assert figures_of(b1["properties"]) == expected(B1)
    assert "leader" not in b1["properties"] and "phone" not in b1["properties"]
    assert not list(_validator(_documented("application/geo+json")).iter_errors(fc))


def test_api_level_page_and_geojson(client):
    body = client.get("/api/v1/coverage?level=building&sort=gaps&limit=2").get_json()
    assert [i["code"] for i in body["items"]] == [B2, B4]
    assert body["total"] == 4 and body["links"]["next"] and body["links"]["prev"] is None
    assert "sort=gaps" in body["links"]["next"]
    assert not list(_validator(_documented("application/json")).iter_errors(body))

    fc = client.get(f"/api/v1/coverage?level=grid&parent={S}&f=geojson").get_json()
    assert [f["id"] for f in fc["features"]] == [G1, G2, G3]
    assert fc["numberMatched"] == 3 and fc["summary"]["members"] == 6
    assert not list(_validator(_documented("application/geo+json")).iter_errors(fc))

    streets = client.get("/api/v1/coverage").get_json()  # no unit, no level: the streets
    assert [i["code"] for i in streets["items"]] == [S]
    assert figures_of(streets["items"][0]) == expected(S)


@pytest.mark.parametrize(("url", "status", "field"), [
    ("/api/v1/coverage?unit=NOPE", 404, None),
    ("/api/v1/coverage?level=floor", 400, "level"),
    (f"/api/v1/coverage?unit={C1}&level=grid", 400, "level"),
    ("/api/v1/coverage?level=grid&sort=name", 400, "sort"),
    ("/api/v1/coverage?level=grid&parent=NOPE", 404, None),
    ("/api/v1/coverage?level=grid&limit=0", 400, "limit"),
])
def test_api_problems(client, url, status, field):
    resp = client.get(url)
    assert resp.status_code == status and resp.mimetype == "application/problem+json"
    assert resp.get_json().get("field") == field


def test_cli_table_and_json(svc, settings):
    runner = CliRunner()
    env = {"GRIDSVC_DATABASE_URL": settings.database_url}
    result = runner.invoke(cli, ["coverage", "--unit", C1], env=env)
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert lines[0].split()[:4] == ["code", "name", "households", "members"]
    rows = {line.split()[0]: line.split() for line in lines[2:]}
    assert list(rows) == [C1, G1, G2]
    assert rows[C1][2:6] == ["115", "6", "1", "4.3"]
    assert rows[G2][2] == "-"  # unknown households

    result = runner.invoke(cli, ["coverage", "--level", "grid", "--sort", "gaps", "--json"],
                           env=env)
    assert result.exit_code == 0, result.output
    data = json.loads(result.output)
    assert [i["code"] for i in data["items"]] == [G1, G2, G3]  # 5, 3, 2 gaps
    assert data["summary"]["members_per_100"] == 4.3

    result = runner.invoke(cli, ["coverage", "--level", "floor"], env=env)
    assert result.exit_code != 0 and "unknown level 'floor'" in result.output

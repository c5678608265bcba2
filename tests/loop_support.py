"""Shared set-up for the service-loop tests: the small demo city, members living in it, a
work-unit organisation, and a point inside a given building."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import shapely
from members_support import city
from sqlalchemy import select

from gridsvc.access import cli_principal
from gridsvc.services.boundaries import import_records
from gridsvc.services.context import Services
from gridsvc.settings import Settings
from gridsvc.storage.models import Member, Unit, WorkOrg


@dataclass
class LoopCity:
    svc: Services
    community: Unit  # the community of the first building
    other_community: Unit  # another community
    building: Unit
    point: tuple[float, float]  # wgs84, inside ``building``
    other_point: tuple[float, float]  # inside a building of ``other_community``
    members: list[int]  # members living in ``community``
    outsider: int  # a member living in ``other_community``
    work_org: int  # a work-unit organisation reporting to ``community``
    unit_member: int  # a member of ``work_org`` (living in ``community``)
    residents: list[int] = field(default_factory=list)  # filled by the tests that need them


def _inside(geom: shapely.Geometry) -> tuple[float, float]:
    p = geom.representative_point()
    return float(p.x), float(p.y)


def loop_city(settings: Settings, tmp_path: Path) -> LoopCity:
    svc = Services.from_settings(settings)
    assert import_records(svc, city().records, viewer=cli_principal()).stored
    records = city().records
    buildings = [r for r in records if r.level == 4]
    by_code = {r.code: r for r in records}

    def community_code(code: str) -> str:
        r = by_code[code]
        while r.level > 2:
            r = by_code[r.parent_code]
        return r.code

    first = buildings[0]
    home = community_code(first.code)
    other = next(b for b in buildings if community_code(b.code) != home)
    with svc.db.session() as s:
        units = {u.code: u for u in s.scalars(select(Unit).where(
            Unit.code.in_([first.code, home, community_code(other.code)])))}
        org = WorkOrg(name="市税务局机关党委", community_id=units[home].id, status="assigned")
        s.add(org)
        s.flush()
        people = []
        for i in range(4):
            m = Member(name=f"党员{i}", phone=f"1390000000{i}", status="assigned",
                       building_id=units[first.code].id,
                       work_org_id=org.id if i == 3 else None)
            s.add(m)
            people.append(m)
        outsider = Member(name="外社区党员", phone="13900000099", status="assigned",
                          building_id=None)
        s.add(outsider)
        s.flush()
        # the outsider lives in the other community's building
        other_unit = s.scalar(select(Unit).where(Unit.code == other.code))
        assert other_unit is not None
        outsider.building_id = other_unit.id
        s.flush()
        ids = [m.id for m in people]
        result = LoopCity(svc, units[home], units[community_code(other.code)],
                          units[first.code], _inside(first.geometry), _inside(other.geometry),
                          ids[:3], outsider.id, org.id, ids[3])
    return result


# For tests/test_openapi.py (as an admin, on the small sample tree): one call per loop route.
LOOP_CALLS = [
    ("post", "/api/v1/needs", {"json": {}}),  # 400: no kind
    ("get", "/api/v1/needs", {}),
    ("get", "/api/v1/needs/figures", {}),
    ("get", "/api/v1/needs/1", {}),  # 404 from here on: nothing stored
    ("post", "/api/v1/needs/1/actions/claim", {"json": {}}),
    ("post", "/api/v1/needs/1/reroute", {"json": {"reason": "x"}}),
    ("post", "/api/v1/needs/1/ratings", {"json": {"rating": "满意"}}),
    ("get", "/api/v1/needs/1/ratings", {}),
    ("post", "/api/v1/records/1/example", {}),
    ("post", "/api/v1/records/1/corrections", {"json": {"reason": "x"}}),
    ("post", "/api/v1/record-corrections/1/approve", {}),
    ("get", "/api/v1/points/member/1", {}),
    ("get", "/api/v1/points/rankings?period=2026-Q4&unit=nope", {}),
    ("post", "/api/v1/posts", {"json": {}}),
    ("get", "/api/v1/posts?community=nope", {}),
    ("post", "/api/v1/posts/1/claims", {}),  # 403: an admin is not a member
    ("delete", "/api/v1/post-claims/1", {}),
    ("post", "/api/v1/residents", {"json": {"name": "x", "phone": "1"}}),
    ("get", "/api/v1/outbox", {}),
    ("get", "/api/v1/work-orgs/999/service-report", {}),
]

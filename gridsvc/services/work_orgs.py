"""Work-unit Party organisations reporting to the community where the unit sits
(单位党组织到驻地社区报到), and the report of both links.

An organisation gives its name, an office address and/or a point with its coordsys, and a
contact. It is assigned to a COMMUNITY (level 2), not a building: offices are often in no
residential micro-grid, so the office point is located in the community polygons
(``CommunityIndex``, a ``PolygonIndex`` over the few hundred communities, built per batch).

- An address matched to a building or a door gives its point. A weak or ambiguous match whose
  candidates (at building, door or compound level) all lie in one community is assigned to it;
  candidates in several communities -> ``needs-confirmation`` with the candidates.
- Else the point: in a community -> ``assigned``; outside every community but one within
  ``nearest_radius_m`` -> ``needs-confirmation`` (fallback, with the distance); else
  ``rejected``. No usable address and no point -> ``rejected``.

Organisation names are compared after NFKC and removing spaces; a member whose ``work_unit``
equals the name links to the organisation, also when the organisation registers after them.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from sqlalchemy import false, func, select
from sqlalchemy.orm import Session

from gridsvc.access import Principal
from gridsvc.privacy import mask_name, mask_phone
from gridsvc.services import scope
from gridsvc.services.context import Services
from gridsvc.services.errors import Conflict, Forbidden, InvalidInput, NotFound
from gridsvc.services.registration import (
    ASSIGNED,
    NEEDS_CONFIRMATION,
    REJECTED,
    PointInput,
    Progress,
    Snapshot,
    any_phone,
    check_page,
    first_problem,
    org_name,
    quiet,
    read_point,
    read_rows,
    roster_counts,
    roster_view,
    text,
    text_problems,
)
from gridsvc.spatial.index import PolygonIndex
from gridsvc.storage import units as q
from gridsvc.storage.models import Member, RosterImport, RosterRow, Unit, WorkOrg
from gridsvc.validation.report import Problem, Severity

COMMUNITY_LEVEL = 2
ALIASES: dict[str, tuple[str, ...]] = {
    "name": ("单位名称", "单位", "名称", "党组织名称"),
    "office_address": ("办公地址", "单位地址", "地址"),
    "lon": ("经度",),
    "lat": ("纬度",),
    "coordsys": ("坐标系",),
    "contact_name": ("联系人",),
    "contact_phone": ("联系电话", "电话", "手机"),
}
REQUIRED = ("name",)
PLACE_LEVELS = ("building", "door", "compound")  # match levels precise enough for a community


@dataclass
class OrgInput:
    name: str
    office_address: str | None = None
    point: PointInput | None = None
    contact_name: str | None = None
    contact_phone: str | None = None


def read_org(values: Mapping[str, Any], row: int | None = None
             ) -> tuple[OrgInput | None, list[Problem]]:
    problems: list[Problem] = []
    name = org_name(values.get("name"))
    if name is None:
        problems.append(Problem("error", "missing-value", "the organisation's name is missing",
                                row=row, field="name"))
    phone = None
    try:
        phone = any_phone(values.get("contact_phone"))
    except ValueError as exc:
        problems.append(Problem("error", "bad-phone", str(exc), row=row, field="contact_phone"))
    point = read_point(values, problems, row)
    address = text(values.get("office_address"))
    if address is None and not any(text(values.get(k)) for k in ("lon", "lat")):
        problems.append(Problem("error", "missing-value", "give an office address or a point "
                                "(lon, lat and coordsys)", row=row, field="office_address"))
    if problems or name is None:
        return None, problems
    org = OrgInput(name, address, point, text(values.get("contact_name")), phone)
    problems = text_problems({"name": name, "office_address": address,
                              "contact_name": org.contact_name, "contact_phone": phone},
                             WorkOrg, row)
    return (None if problems else org), problems


@dataclass
class CommunityIndex:
    """The community polygons; ids are CityIndex rows."""

    polygons: PolygonIndex | None

    @classmethod
    def build(cls, svc: Services, snap: Snapshot) -> CommunityIndex:
        with svc.db.session() as session:
            units = list(session.scalars(select(Unit).where(Unit.level == COMMUNITY_LEVEL)
                                         .order_by(Unit.id)))
            geoms = q.geometries(units)
        rows = np.array([snap.row_of_id(u.id) for u in units], dtype=np.int64)
        keep = rows >= 0
        if not keep.any():
            return cls(None)
        return cls(PolygonIndex.build(np.array(geoms, dtype=object)[keep], rows[keep]))

    def locate(self, lon: float, lat: float) -> int:
        return self.polygons.locate(lon, lat) if self.polygons else -1

    def nearest(self, lon: float, lat: float, radius_m: float) -> tuple[int, float] | None:
        return self.polygons.nearest(lon, lat, radius_m) if self.polygons else None


@dataclass
class OrgAssignment:
    status: str
    reason: str | None = None
    field: str | None = None
    community: int = -1  # CityIndex row; for needs-confirmation the proposal, if one
    lon: float | None = None
    lat: float | None = None
    match: dict[str, Any] | None = None

    def problems(self, row: int | None = None) -> list[Problem]:
        if self.status == ASSIGNED:
            return []
        severity: Severity = "error" if self.status == REJECTED else "warning"
        return [Problem(severity, self.status, self.reason or "", row=row, field=self.field)]


def assign_org(snap: Snapshot, communities: CommunityIndex, org: OrgInput) -> OrgAssignment:
    radius = snap.svc.settings.nearest_radius_m
    weak: dict[str, Any] | None = None
    if org.office_address:
        result = snap.gazetteer.match(org.office_address)
        if result.status == "matched" and result.entry is not None:
            e = result.entry
            row = communities.locate(e.lon, e.lat)
            if row >= 0:
                return OrgAssignment(ASSIGNED, community=row, lon=e.lon, lat=e.lat, match={
                    "method": "address", "coordsys": "wgs84", "score": round(result.score, 3),
                    "level": result.level, "address": e.address, "fallback": False})
        cands = [c for c in result.candidates if c.level in PLACE_LEVELS]
        rows = {communities.locate(c.entry.lon, c.entry.lat) for c in cands}
        if len(rows) == 1 and -1 not in rows:
            best = cands[0].entry
            return OrgAssignment(ASSIGNED, community=rows.pop(), lon=best.lon, lat=best.lat,
                                 match={"method": "address", "coordsys": "wgs84",
                                        "score": round(result.score, 3), "level": result.level,
                                        "address": best.address, "fallback": False,
                                        "note": "every candidate lies in this community"})
        if result.candidates and result.status != "unmatched":
            weak = {"method": "address", "status": result.status, "level": result.level,
                    "score": round(result.score, 3), "reason": result.reason,
                    "candidates": [c.as_dict() for c in result.candidates]}
        elif org.point is None:
            return OrgAssignment(REJECTED, "address not found in the gazetteer "
                                 f"({result.reason})", "office_address")
    if org.point is not None:
        p = org.point
        match = {"method": "point", "coordsys": p.given["coordsys"], "fallback": False}
        row = communities.locate(p.lon, p.lat)
        if row >= 0:
            return OrgAssignment(ASSIGNED, community=row, lon=p.lon, lat=p.lat, match=match)
        near = communities.nearest(p.lon, p.lat, radius)
        if near is not None:
            # (the ignore below: entry() of a found row is a dict)
            entry = snap.entry(near[0]) | {"distance_m": round(near[1], 1)}  # type: ignore[operator]
            return OrgAssignment(
                NEEDS_CONFIRMATION, f"the point is in no community; the nearest is "
                f"{entry['code']} {entry['name']} at {entry['distance_m']} m (a fallback: staff "
                "must confirm)", "lon", community=near[0], lon=p.lon, lat=p.lat,
                match=match | {"fallback": True, "distance_m": entry["distance_m"],
                               "nearest": entry})
        if weak is None:
            return OrgAssignment(REJECTED, f"the point is in no community and none is within "
                                 f"{radius:g} m", "lon", lon=p.lon, lat=p.lat)
    assert weak is not None
    return OrgAssignment(NEEDS_CONFIRMATION, f"address {weak['status']}: {weak['reason']}; "
                         "the candidates lie in several communities", "office_address",
                         match=weak)


# --- storing -----------------------------------------------------------------------------------


def _org_values(snap: Snapshot, org: OrgInput, a: OrgAssignment) -> dict[str, Any]:
    return {"name": org.name, "office_address": org.office_address,
            "contact_name": org.contact_name, "contact_phone": org.contact_phone,
            "lon": a.lon, "lat": a.lat, "community_id": snap.unit_id(a.community),
            "status": a.status, "reason": a.reason, "match": a.match or {}}


def _link_members(session: Session, orgs: Sequence[WorkOrg]) -> int:
    """Point every member whose work unit is one of these organisations at it."""
    by_name = {o.name: o.id for o in orgs}
    linked = 0
    for part in q.chunks(sorted(by_name)):
        for member in session.scalars(select(Member).where(Member.work_unit.in_(part))):
            assert member.work_unit is not None  # selected by it
            if member.work_org_id != by_name[member.work_unit]:
                member.work_org_id = by_name[member.work_unit]
                linked += 1
    return linked


def register_work_org(svc: Services, data: Mapping[str, Any],
                      viewer: Principal) -> dict[str, Any]:
    """Register one organisation; Conflict if the name is registered already, Forbidden when
    its community is outside a scoped viewer's subtree."""
    if not isinstance(data, Mapping):
        raise InvalidInput("the body must be a JSON object", field="body")
    org, problems = read_org(data)
    if org is None:
        raise first_problem(problems)
    snap = Snapshot.take(svc)
    a = assign_org(snap, CommunityIndex.build(svc, snap), org)
    if a.status == REJECTED:
        raise InvalidInput(a.reason or "rejected", field=a.field, status=REJECTED)
    with svc.db.session() as session:
        scope.require_unit_in_scope(session, viewer, snap.unit_id(a.community),
                                    "the organisation's community")
        if session.scalar(select(WorkOrg.id).where(WorkOrg.name == org.name)) is not None:
            raise Conflict(f"an organisation named {org.name!r} is registered already",
                           field="name")
        row = WorkOrg(**_org_values(snap, org, a))
        session.add(row)
        session.flush()
        _link_members(session, [row])
        session.flush()
        return org_view(snap, row, _member_counts(session, [row.id]))


def import_work_orgs(svc: Services, path: Path, filename: str | None = None,
                     progress: Progress = quiet, *, viewer: Principal
                     ) -> dict[str, Any]:
    """Import a roster of organisations in one transaction, matched by name (a re-import
    updates them); every row is kept as a RosterRow. Work-unit organisations register
    city-wide, so this needs a city-wide viewer."""
    if not scope.city_wide(viewer):
        raise Forbidden("work-unit rosters are imported city-wide: use an admin token or a "
                        "staff token without a unit; register single organisations instead")
    roster, orgs, problems = read_rows(path, ALIASES, REQUIRED, filename, read_org,
                                       lambda o: o.name, "name")
    snap = Snapshot.take(svc)
    communities = CommunityIndex.build(svc, snap)
    outcome: dict[int, OrgAssignment] = {}
    for i, org in enumerate(orgs):
        if org is not None:
            outcome[i] = assign_org(snap, communities, org)
        progress("assign", i + 1, len(orgs))
    with svc.db.session() as session:
        imp = RosterImport(kind="work-orgs", filename=roster.filename, counts={},
                           token_id=viewer.token_id if viewer else None)
        session.add(imp)
        session.flush()
        names = [o.name for i, o in enumerate(orgs) if o and outcome[i].status != REJECTED]
        existing = {o.name: o for part in q.chunks(sorted(names))
                    for o in session.scalars(select(WorkOrg).where(WorkOrg.name.in_(part)))}
        saved: dict[int, WorkOrg] = {}
        statuses = []
        for i, (number, raw) in enumerate(roster.rows):
            org, a = orgs[i], outcome.get(i)
            status = a.status if a else REJECTED
            statuses.append(status)
            if org is not None and a is not None and status != REJECTED:
                values = _org_values(snap, org, a)
                row = existing.get(org.name)
                if row is None:
                    row = existing[org.name] = WorkOrg(**values)
                    session.add(row)
                else:
                    for key, value in values.items():
                        if getattr(row, key) != value:
                            setattr(row, key, value)
                saved[i] = row
            session.add(RosterRow(import_id=imp.id, row=number, status=status, data=raw,
                                  problems=[p.as_dict() for p in
                                            problems[i] + (a.problems(number) if a else [])]))
        session.flush()
        for i, row in saved.items():  # now that new organisations have ids
            session.execute(RosterRow.__table__.update()
                            .where(RosterRow.import_id == imp.id,
                                   RosterRow.row == roster.rows[i][0])
                            .values(work_org_id=row.id))
        linked = _link_members(session, list(saved.values()))
        imp.counts = roster_counts(statuses) | {"members_linked": linked}
        session.flush()
        return roster_view(imp)


# --- views -------------------------------------------------------------------------------------


def _member_counts(session: Session, org_ids: Sequence[int]) -> dict[int, int]:
    if not org_ids:
        return {}
    return {org_id: n for org_id, n in session.execute(
        select(Member.work_org_id, func.count()).where(Member.work_org_id.in_(org_ids))
        .group_by(Member.work_org_id)).all() if org_id is not None}


def org_view(snap: Snapshot, org: WorkOrg, counts: Mapping[int, int]) -> dict[str, Any]:
    community = snap.row_of_id(org.community_id)
    return {
        "id": org.id, "name": org.name, "office_address": org.office_address,
        "point": ({"lon": org.lon, "lat": org.lat, "coordsys": "wgs84"}
                  if org.lon is not None and org.lat is not None else None),
        "contact_name": org.contact_name, "contact_phone": org.contact_phone,
        "status": org.status, "reason": org.reason, "match": org.match,
        "community": snap.entry(community),
        "chain": snap.index.chain(community) if community >= 0 else [],
        "members": counts.get(org.id, 0),
    }


def _org_filter(viewer: Principal) -> list[Any]:
    """Organisations a scoped viewer sees: those whose community is in their subtree."""
    if scope.city_wide(viewer):
        return []
    assert viewer is not None
    if viewer.scope_path is None:
        return [false()]
    return [WorkOrg.community_id.in_(scope.unit_ids(viewer))]


def list_work_orgs(svc: Services, search: str | None = None, limit: int = 100,
                   offset: int = 0, *, viewer: Principal) -> dict[str, Any]:
    limit, offset = check_page(limit, offset)
    snap = Snapshot.take(svc)
    with svc.db.session() as session:
        where = _org_filter(viewer)
        if search:
            where.append(WorkOrg.name.contains(search, autoescape=True))
        total = session.scalar(select(func.count()).select_from(WorkOrg).where(*where))
        orgs = list(session.scalars(select(WorkOrg).where(*where).order_by(WorkOrg.id)
                                    .limit(limit).offset(offset)))
        counts = _member_counts(session, [o.id for o in orgs])
        items = [org_view(snap, o, counts) for o in orgs]
    return {"items": items, "total": total or 0, "limit": limit, "offset": offset}


def work_org_report(svc: Services, org_id: int | None = None, name: str | None = None,
                    *, viewer: Principal) -> dict[str, Any]:
    """Both links: the organisation's community (单位 -> 驻地社区) and, for each of its
    members, where they live (党员 -> 居住地社区: street, community, grid, building).

    A scoped viewer sees organisations of their subtree only; its members who live outside
    that subtree are shown masked (张*, 138****1234) with their residence down to the
    community, so the two links stay visible without their personal data."""
    snap = Snapshot.take(svc)
    with svc.db.session() as session:
        if org_id is not None:
            org = session.get(WorkOrg, org_id)
        else:
            org = session.scalar(select(WorkOrg).where(WorkOrg.name == org_name(name)))
        if org is None or not scope.unit_in_scope(session, viewer, org.community_id):
            which = org_id if org_id is not None else repr(name)
            raise NotFound(f"no work-unit organisation {which}")
        members = list(session.scalars(select(Member).where(Member.work_org_id == org.id)
                                       .order_by(Member.id)))
        view = org_view(snap, org, {org.id: len(members)})
        community_code = view["community"]["code"] if view["community"] else None
        rows = []
        for m in members:
            building = snap.row_of_id(m.building_id)
            residence = {e["level_key"]: e for e in snap.index.chain(building)} if (
                building >= 0) else {}
            name_: str | None = m.name
            phone: str | None = m.phone
            if not scope.sees_member(session, viewer, m):
                name_, phone = mask_name(m.name), mask_phone(m.phone)
                residence = {k: e for k, e in residence.items()
                             if e["level"] <= COMMUNITY_LEVEL}
            rows.append({"id": m.id, "name": name_, "phone": phone, "status": m.status,
                         "residence": residence,
                         "same_community": community_code is not None and any(
                             e["code"] == community_code for e in residence.values())})
    return {"organisation": view, "members": rows,
            "counts": {"members": len(rows),
                       "assigned": sum(r["status"] == ASSIGNED for r in rows),
                       "living_in_its_community": sum(r["same_community"] for r in rows)}}

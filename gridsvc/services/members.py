"""Members reporting where they live (党员到居住地社区报到): single and roster registration.

Input fields (API JSON keys; roster headers in ``ALIASES``): ``name`` and ``phone`` required;
``party_org``, ``work_unit``, ``home_address``, a point ``lon``/``lat`` with its ``coordsys``,
``skills``, ``intentions`` and ``roles`` (lists; one cell may hold several separated by
、 , ， ; ；). Roles are 楼栋长 or 党员先锋. Any malformed field rejects the row, even when
another field could have placed the member: bad input is reported, never skipped.

Assignment of one member (``assign_members``, vectorised over a roster):

1. A home address confidently matched to one building -> ``assigned`` (method ``address``;
   the point used is the gazetteer entry's).
2. Else a point: covered by a micro-grid -> ``assigned`` (method ``point``); in no micro-grid
   but one within ``nearest_radius_m`` -> ``needs-confirmation`` with ``fallback`` true, the
   nearest building and the distance; the building is stored as a proposal, never as a silent
   assignment.
3. Else a weak or ambiguous address -> ``needs-confirmation`` with the candidates.
4. Else ``rejected``: an address with no candidates is "address not found in the gazetteer",
   a point with nothing near is "not covered"; no address and no point is rejected too.

An assigned member gets its 党员中心户 by ``lookup.household_for`` (with the address's 单元).
``work_unit`` links the member to the WorkOrg of the same name (names compared after NFKC
and removing spaces). Staff confirmation (``confirm_member``) sets ``match.method`` "staff"
and survives re-imports that do not change the member's address or point.

Personal data (name, phone, home address and point) leaves this module only through
``staff_view``; ``public_view`` echoes the member's own submission with the phone masked.
Nothing here logs.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import shapely
from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from gridsvc.geocode.matcher import MatchResult
from gridsvc.privacy import mask_phone
from gridsvc.services import lookup
from gridsvc.services.context import Services
from gridsvc.services.errors import Conflict, InvalidInput, NotFound
from gridsvc.services.registration import (
    ASSIGNED,
    NEEDS_CONFIRMATION,
    REJECTED,
    PointInput,
    Progress,
    Snapshot,
    check_page,
    check_status,
    first_problem,
    mobile_phone,
    org_name,
    quiet,
    read_point,
    read_rows,
    roster_counts,
    roster_view,
    split_list,
    text,
)
from gridsvc.storage import units as q
from gridsvc.storage.models import AssignmentChange, Member, RosterImport, RosterRow, Unit, WorkOrg
from gridsvc.validation.report import Problem

ROLES = ("楼栋长", "党员先锋")
ALIASES: dict[str, tuple[str, ...]] = {
    "name": ("姓名",),
    "phone": ("手机", "手机号", "手机号码", "联系电话", "电话"),
    "party_org": ("所在党组织", "党组织"),
    "work_unit": ("工作单位", "单位"),
    "home_address": ("居住地址", "家庭住址", "现住址", "住址"),
    "lon": ("经度",),
    "lat": ("纬度",),
    "coordsys": ("坐标系",),
    "skills": ("特长", "技能"),
    "intentions": ("服务意向",),
    "roles": ("角色", "身份"),
}
REQUIRED = ("name", "phone")
CONFLICT_DETAIL = "already registered; ask your community staff to update it"


@dataclass
class MemberInput:
    name: str
    phone: str
    party_org: str | None = None
    work_unit: str | None = None
    home_address: str | None = None
    point: PointInput | None = None
    skills: list[str] = dataclasses.field(default_factory=list)
    intentions: list[str] = dataclasses.field(default_factory=list)
    roles: list[str] = dataclasses.field(default_factory=list)

    def columns(self) -> dict[str, Any]:
        return {"name": self.name, "phone": self.phone, "party_org": self.party_org,
                "work_unit": self.work_unit, "home_address": self.home_address,
                "input_point": self.point.given if self.point else None,
                "skills": self.skills, "intentions": self.intentions, "roles": self.roles}


def read_member(values: Mapping[str, Any], row: int | None = None
                ) -> tuple[MemberInput | None, list[Problem]]:
    """Check one member's fields; the input, or None and the problems (row and field)."""
    problems: list[Problem] = []

    def problem(rule: str, fld: str, message: str) -> None:
        problems.append(Problem("error", rule, message, row=row, field=fld))

    name = text(values.get("name"))
    if name is None:
        problem("missing-value", "name", "the name is missing")
    phone = None
    try:
        phone = mobile_phone(values.get("phone"))
    except ValueError as exc:
        rule = "missing-value" if text(values.get("phone")) is None else "bad-phone"
        problem(rule, "phone", str(exc))
    point = read_point(values, problems, row)
    roles = split_list(values.get("roles"))
    unknown = [r for r in roles if r not in ROLES]
    if unknown:
        problem("unknown-role", "roles",
                f"unknown role {'、'.join(unknown)}; roles are {'、'.join(ROLES)}")
    address = text(values.get("home_address"))
    has_point = any(text(values.get(k)) for k in ("lon", "lat"))
    if address is None and not has_point:
        problem("missing-value", "home_address",
                "give a home address or a point (lon, lat and coordsys)")
    if problems or name is None or phone is None:
        return None, problems
    return MemberInput(
        name=name, phone=phone, party_org=text(values.get("party_org")),
        work_unit=org_name(values.get("work_unit")), home_address=address, point=point,
        skills=split_list(values.get("skills")), intentions=split_list(values.get("intentions")),
        roles=roles,
    ), problems


# --- assignment --------------------------------------------------------------------------------


@dataclass
class Assignment:
    """Where one member lands. Rows are CityIndex rows (-1: none)."""

    status: str
    reason: str | None = None
    field: str | None = None
    building: int = -1  # for needs-confirmation: the proposed (nearest) building, if any
    household: int = -1
    household_rule: str | None = None
    lon: float | None = None  # wgs84 point used
    lat: float | None = None
    match: dict[str, Any] = dataclasses.field(default_factory=dict)
    rule: str | None = None  # why it is not assigned: weak-address, fallback-point, ...

    def problems(self, row: int | None = None) -> list[Problem]:
        if self.status == ASSIGNED:
            return []
        severity = "error" if self.status == REJECTED else "warning"
        return [Problem(severity, self.rule or self.status, self.reason or "", row=row,
                        field=self.field)]


def _address_match(result: MatchResult) -> dict[str, Any]:
    return {"method": "address", "status": result.status, "score": round(result.score, 3),
            "level": result.level, "reason": result.reason,
            "candidates": [c.as_dict() for c in result.candidates]}


def _by_address(snap: Snapshot, address: str) -> tuple[Assignment | None, MatchResult]:
    result, row = lookup.resolve_address(snap.svc, address)
    if row < 0 or result.entry is None:
        return None, result
    entry = result.entry
    match = {"method": "address", "coordsys": "wgs84", "score": round(result.score, 3),
             "level": result.level, "address": entry.address, "fallback": False,
             "distance_m": 0.0}
    return Assignment(ASSIGNED, building=row, lon=entry.lon, lat=entry.lat, match=match), result


def _not_placed(result: MatchResult | None, point_reason: str | None) -> Assignment:
    """No building: needs-confirmation on a weak/ambiguous address, else rejected."""
    if result is not None and result.status != "unmatched" and result.candidates:
        reason = f"address {result.status}: {result.reason}; staff must confirm the building"
        if point_reason:
            reason += f" ({point_reason})"
        return Assignment(NEEDS_CONFIRMATION, reason, "home_address",
                          match=_address_match(result) | {"fallback": False},
                          rule=f"{result.status}-address")
    reasons = []
    if result is not None:
        reasons.append(f"address not found in the gazetteer ({result.reason})")
    if point_reason:
        reasons.append(point_reason)
    fld = "home_address" if result is not None else "lon"
    return Assignment(REJECTED, "; ".join(reasons), fld,
                      match=_address_match(result) if result is not None else {},
                      rule="address-not-found" if result is not None else "not-covered")


def assign_members(snap: Snapshot, inputs: Sequence[MemberInput],
                   progress: Progress = quiet) -> list[Assignment]:
    """The assignment of every input against one snapshot; points are placed in one
    vectorised call."""
    radius = snap.svc.settings.nearest_radius_m
    out: list[Assignment | None] = [None] * len(inputs)
    results: list[MatchResult | None] = [None] * len(inputs)
    unit_nos: list[str | None] = [None] * len(inputs)
    for i, member in enumerate(inputs):
        if member.home_address:
            out[i], results[i] = _by_address(snap, member.home_address)
            unit_nos[i] = results[i].parts.unit  # type: ignore[union-attr]
        if i % 500 == 0:
            progress("address", i, len(inputs))
    progress("address", len(inputs), len(inputs))
    pending = [i for i, m in enumerate(inputs) if out[i] is None and m.point is not None]
    lon = np.array([inputs[i].point.lon for i in pending], dtype=float)  # type: ignore[union-attr]
    lat = np.array([inputs[i].point.lat for i in pending], dtype=float)  # type: ignore[union-attr]
    rows, fallback, dist = lookup.place_many(snap.index, lon, lat, radius)
    for k, i in enumerate(pending):
        point = inputs[i].point
        assert point is not None
        row, d = int(rows[k]), float(dist[k])
        match = {"method": "point", "coordsys": point.given["coordsys"], "score": 1.0,
                 "level": "point", "fallback": bool(fallback[k]),
                 "distance_m": round(d, 1) if row >= 0 else None}
        if row >= 0 and not fallback[k]:
            out[i] = Assignment(ASSIGNED, building=row, lon=point.lon, lat=point.lat,
                                match=match)
        elif row >= 0:
            nearest = snap.entry(row) | {"distance_m": round(d, 1)}  # type: ignore[operator]
            addr = results[i]
            if addr is not None and addr.candidates and addr.status != "unmatched":
                match["address"] = _address_match(addr)
            out[i] = Assignment(
                NEEDS_CONFIRMATION,
                f"the point is in no micro-grid; the nearest is {nearest['code']} "
                f"{nearest['name']} at {round(d, 1)} m (a fallback: staff must confirm)",
                "lon", building=row, lon=point.lon, lat=point.lat,
                match=match | {"nearest": nearest}, rule="fallback-point")
        else:
            reason = f"the point is in no micro-grid and none is within {radius:g} m"
            placed = _not_placed(results[i], reason)
            placed.lon, placed.lat = point.lon, point.lat
            out[i] = placed
    done: list[Assignment] = [
        a if a is not None else _not_placed(results[i], None)  # no point, address unplaced
        for i, a in enumerate(out)
    ]
    _add_households(snap, done, unit_nos)
    return done


def _add_households(snap: Snapshot, assignments: Sequence[Assignment],
                    unit_nos: Sequence[str | None]) -> None:
    """The 党员中心户 of every assigned member, in one vectorised call."""
    todo = [i for i, a in enumerate(assignments) if a.status == ASSIGNED]
    if not todo:
        return
    picked = [assignments[i] for i in todo]
    hh, rule = lookup.households_many(
        snap.index, np.array([a.building for a in picked], dtype=np.int64),
        np.array([a.lon for a in picked], dtype=float),
        np.array([a.lat for a in picked], dtype=float),
        snap.svc.settings.household_radius_m, [unit_nos[i] for i in todo])
    for i, a, h, r in zip(todo, picked, hh.tolist(), rule.tolist(), strict=True):
        if h >= 0:
            a.household, a.household_rule = h, lookup.RULES[r]
        if unit_nos[i]:
            a.match = a.match | {"unit": unit_nos[i]}  # the home's 单元, for later reassignment


# --- storing -----------------------------------------------------------------------------------


def _assignment_columns(snap: Snapshot, a: Assignment) -> dict[str, Any]:
    match = dict(a.match)
    if a.household_rule:
        match["household_rule"] = a.household_rule
    return {"status": a.status, "reason": a.reason, "building_id": snap.unit_id(a.building),
            "household_id": snap.unit_id(a.household), "lon": a.lon, "lat": a.lat,
            "match": match}


def _keeps_confirmation(member: Member, inp: MemberInput) -> bool:
    """A staff confirmation stands while the member's address and point stay the same."""
    return ((member.match or {}).get("method") == "staff"
            and member.home_address == inp.home_address
            and member.input_point == inp.columns()["input_point"])


def _org_ids(session: Session, names: Sequence[str | None]) -> dict[str, int]:
    wanted = sorted({n for n in names if n})
    found: dict[str, int] = {}
    for part in q.chunks(wanted):
        found.update(session.execute(select(WorkOrg.name, WorkOrg.id)
                                     .where(WorkOrg.name.in_(part))).all())
    return found


def _members_by_phone(session: Session, phones: Sequence[str]) -> dict[str, Member]:
    found: dict[str, Member] = {}
    for part in q.chunks(sorted(set(phones))):
        for member in session.scalars(select(Member).where(Member.phone.in_(part))):
            found[member.phone] = member
    return found


def _record_move(session: Session, snap: Snapshot, member: Member, old_building: int | None,
                 reason: str) -> None:
    if member.id is None or old_building == member.building_id:
        return
    codes = [snap.index.codes[r] if r >= 0 else None
             for r in (snap.row_of_id(old_building), snap.row_of_id(member.building_id))]
    session.add(AssignmentChange(subject="member", subject_id=member.id, from_code=codes[0],
                                 to_code=codes[1], boundary_revision=snap.index.revision,
                                 reason=reason))


def _member_values(snap: Snapshot, inp: MemberInput, a: Assignment, member: Member | None,
                   org_ids: Mapping[str, int]) -> dict[str, Any]:
    """The columns to store for one member (the assignment left out while a staff
    confirmation stands)."""
    values = inp.columns() | {"work_org_id": org_ids.get(inp.work_unit or "")}
    if member is None or not _keeps_confirmation(member, inp):
        values |= _assignment_columns(snap, a)
    return values


def _update(session: Session, snap: Snapshot, member: Member, values: Mapping[str, Any],
            reason: str) -> bool:
    """Set the values that differ; False (and the version kept) when none does."""
    old_building = member.building_id
    changed = False
    for key, value in values.items():
        if getattr(member, key) != value:
            setattr(member, key, value)
            changed = True
    _record_move(session, snap, member, old_building, reason)
    return changed


# --- views -------------------------------------------------------------------------------------


def public_view(snap: Snapshot, member: Member, a: Assignment) -> dict[str, Any]:
    """What a member who registered themselves gets back: their own submission (phone
    masked), the outcome, and the chain with public unit contacts."""
    household = None
    if a.household >= 0:
        household = snap.entry(a.household) | {"rule": a.household_rule}  # type: ignore[operator]
    return {
        "id": member.id,
        "status": a.status,
        "reason": a.reason,
        "member": {"name": member.name, "phone": mask_phone(member.phone),
                   "party_org": member.party_org, "work_unit": member.work_unit,
                   "home_address": member.home_address, "point": member.input_point,
                   "skills": member.skills, "intentions": member.intentions,
                   "roles": member.roles},
        "chain": snap.index.chain(a.building) if a.status == ASSIGNED else [],
        "household": household,
        "match": a.match,
    }


def staff_view(snap: Snapshot, member: Member, org_names: Mapping[int, str],
               with_chain: bool = False) -> dict[str, Any]:
    """Everything stored about a member, for staff."""
    building = snap.row_of_id(member.building_id)
    view = {
        "id": member.id, "name": member.name, "phone": member.phone,
        "party_org": member.party_org, "work_unit": member.work_unit,
        "work_org": ({"id": member.work_org_id, "name": org_names.get(member.work_org_id)}
                     if member.work_org_id else None),
        "home_address": member.home_address, "input_point": member.input_point,
        "point": ({"lon": member.lon, "lat": member.lat, "coordsys": "wgs84"}
                  if member.lon is not None and member.lat is not None else None),
        "skills": member.skills, "intentions": member.intentions, "roles": member.roles,
        "status": member.status, "reason": member.reason,
        "building": snap.entry(building),
        "household": snap.entry(snap.row_of_id(member.household_id)),
        "match": member.match, "version": member.version,
        "created_at": member.created_at.isoformat() if member.created_at else None,
        "updated_at": member.updated_at.isoformat() if member.updated_at else None,
    }
    if with_chain:
        view["chain"] = snap.index.chain(building) if building >= 0 else []
    return view


def _org_names(session: Session, members: Sequence[Member]) -> dict[int, str]:
    ids = sorted({m.work_org_id for m in members if m.work_org_id})
    if not ids:
        return {}
    return dict(session.execute(select(WorkOrg.id, WorkOrg.name)
                                .where(WorkOrg.id.in_(ids))).all())


# --- single members ----------------------------------------------------------------------------


def register_member(svc: Services, data: Mapping[str, Any]) -> dict[str, Any]:
    """A member registers themselves. Conflict when the phone is registered already (the
    stored record is not revealed); InvalidInput naming the field when rejected."""
    if not isinstance(data, Mapping):
        raise InvalidInput("the body must be a JSON object", field="body")
    inp, snap, a = _assign_one(svc, data, _refuse_registered)
    try:
        with svc.db.session() as session:
            _refuse_registered(session, inp.phone)
            values = _member_values(snap, inp, a, None, _org_ids(session, [inp.work_unit]))
            member = Member(**values)
            session.add(member)
            session.flush()
    except IntegrityError:  # registered at the same moment by another request
        raise Conflict(CONFLICT_DETAIL) from None
    return public_view(snap, member, a)


def _assign_one(svc: Services, data: Mapping[str, Any],
                check: Callable[[Session, str], None] | None = None,
                ) -> tuple[MemberInput, Snapshot, Assignment]:
    """Read one member's fields and assign them; InvalidInput naming the field when the
    input is bad or the assignment rejected. ``check`` runs on the phone before assigning."""
    inp, problems = read_member(data)
    if inp is None:
        raise first_problem(problems)
    if check is not None:
        with svc.db.session() as session:
            check(session, inp.phone)
    snap = Snapshot.take(svc)
    a = assign_members(snap, [inp])[0]
    if a.status == REJECTED:
        raise InvalidInput(a.reason or "rejected", field=a.field, status=REJECTED)
    return inp, snap, a


def _refuse_registered(session: Session, phone: str) -> None:
    if session.scalar(select(Member.id).where(Member.phone == phone)) is not None:
        raise Conflict(CONFLICT_DETAIL)


def _stored_input(member: Member) -> dict[str, Any]:
    point = member.input_point or {}
    return {"name": member.name, "phone": member.phone, "party_org": member.party_org,
            "work_unit": member.work_unit, "home_address": member.home_address,
            "lon": point.get("lon"), "lat": point.get("lat"), "coordsys": point.get("coordsys"),
            "skills": member.skills, "intentions": member.intentions, "roles": member.roles}


INPUT_KEYS = ("name", "phone", "party_org", "work_unit", "home_address", "lon", "lat",
              "coordsys", "skills", "intentions", "roles")


def update_member(svc: Services, member_id: int, data: Mapping[str, Any]) -> dict[str, Any]:
    """Staff update: fields in ``data`` replace the stored ones (null clears), the rest stay;
    the member is assigned again (a staff confirmation stands if address and point are
    unchanged)."""
    if not isinstance(data, Mapping):
        raise InvalidInput("the body must be a JSON object", field="body")
    unknown = sorted(set(data) - set(INPUT_KEYS))
    if unknown:
        raise InvalidInput(f"unknown fields {', '.join(unknown)}; fields are "
                           f"{', '.join(INPUT_KEYS)}", field=unknown[0])
    with svc.db.session() as session:
        member = _get(session, member_id)
        merged = _stored_input(member) | dict(data)
    inp, snap, a = _assign_one(svc, merged)
    try:
        with svc.db.session() as session:
            member = _get(session, member_id)
            taken = session.scalar(select(Member.id).where(Member.phone == inp.phone,
                                                           Member.id != member_id))
            if taken is not None:
                raise Conflict(f"another member (id {taken}) has this phone", field="phone")
            values = _member_values(snap, inp, a, member, _org_ids(session, [inp.work_unit]))
            _update(session, snap, member, values, "staff update")
            session.flush()
            return staff_view(snap, member, _org_names(session, [member]), with_chain=True)
    except IntegrityError:
        raise Conflict("another member has this phone", field="phone") from None


def _get(session: Session, member_id: int) -> Member:
    member = session.get(Member, member_id)
    if member is None:
        raise NotFound(f"no member with id {member_id}")
    return member


def _building_point(session: Session, member: Member, code: str) -> tuple[float, float]:
    """The point to place a confirmed member by: their own, else the candidate address of
    that building, else a point inside the building."""
    if member.lon is not None and member.lat is not None:
        return member.lon, member.lat
    for c in (member.match or {}).get("candidates", []):
        if c.get("unit_code") == code:
            return float(c["lon"]), float(c["lat"])
    unit = session.scalars(select(Unit).where(Unit.code == code)).one()
    point = shapely.point_on_surface(q.geometries([unit])[0])
    return point.x, point.y


def confirm_member(svc: Services, member_id: int, building: Any) -> dict[str, Any]:
    """Staff confirm the member's building (a micro-grid code): status assigned, match
    method "staff"; the household is chosen again."""
    from gridsvc.geocode.parse import parse

    code = text(building)
    snap = Snapshot.take(svc)
    row = snap.index.row_of_code.get(code, -1) if code else -1
    micro = svc.hierarchy.micro_grid
    if row < 0 or int(snap.index.levels[row]) != micro.level:
        raise InvalidInput(f"building must be the code of a {micro.key} ({micro.name}) unit, "
                           f"got {building!r}", field="building")
    with svc.db.session() as session:
        member = _get(session, member_id)
        lon, lat = _building_point(session, member, code)  # type: ignore[arg-type]
        previous = {k: v for k, v in (member.match or {}).items()
                    if k in ("method", "status", "level", "fallback", "distance_m")}
        a = Assignment(ASSIGNED, building=row, lon=lon, lat=lat, match={
            "method": "staff", "coordsys": "wgs84", "building": code, "fallback": False,
            "distance_m": 0.0, "previous": previous})
        unit_no = parse(member.home_address).unit if member.home_address else None
        _add_households(snap, [a], [unit_no])
        old_building = member.building_id
        for key, value in _assignment_columns(snap, a).items():
            setattr(member, key, value)
        _record_move(session, snap, member, old_building, "staff confirmation")
        session.flush()
        return staff_view(snap, member, _org_names(session, [member]), with_chain=True)


def get_member(svc: Services, member_id: int) -> dict[str, Any]:
    snap = Snapshot.take(svc)
    with svc.db.session() as session:
        member = _get(session, member_id)
        return staff_view(snap, member, _org_names(session, [member]), with_chain=True)


def list_members(svc: Services, status: str | None = None, unit: str | None = None,
                 search: str | None = None, limit: int = 100, offset: int = 0
                 ) -> dict[str, Any]:
    """Members by id, filtered by status, by the subtree of a unit (their building is in it)
    and by a name fragment; paged."""
    check_status(status)
    limit, offset = check_page(limit, offset)
    snap = Snapshot.take(svc)
    with svc.db.session() as session:
        where = []
        if status:
            where.append(Member.status == status)
        if search:
            where.append(Member.name.contains(search, autoescape=True))
        if unit:
            path = session.scalar(select(Unit.path).where(Unit.code == unit))
            if path is None:
                raise NotFound(f"no unit with code {unit!r}", code=unit)
            where.append(Member.building_id.in_(select(Unit.id).where(q.subtree_filter(path))))
        total = session.scalar(select(func.count()).select_from(Member).where(*where))
        members = list(session.scalars(select(Member).where(*where).order_by(Member.id)
                                       .limit(limit).offset(offset)))
        names = _org_names(session, members)
        items = [staff_view(snap, m, names) for m in members]
    return {"items": items, "total": total or 0, "limit": limit, "offset": offset}


# --- rosters -----------------------------------------------------------------------------------


def import_members(svc: Services, path: Path, filename: str | None = None,
                   progress: Progress = quiet) -> dict[str, Any]:
    """Import a roster (CSV or XLSX) in one transaction; every row ends assigned,
    needs-confirmation or rejected and is kept as a RosterRow. Members are matched by phone:
    a re-import updates them and leaves unchanged ones untouched. A member rejected by this
    roster keeps what an earlier import stored."""
    roster, inputs, problems = read_rows(path, ALIASES, REQUIRED, filename, read_member,
                                         lambda m: m.phone, "phone")
    progress("read", len(roster.rows), len(roster.rows))
    valid = [i for i, m in enumerate(inputs) if m is not None]
    snap = Snapshot.take(svc)
    assigned = assign_members(snap, [inputs[i] for i in valid], progress)  # type: ignore[misc]
    outcome = dict(zip(valid, assigned, strict=True))
    with svc.db.session() as session:
        imp = RosterImport(kind="members", filename=roster.filename, counts={})
        session.add(imp)
        counts = _store_roster_members(session, snap, [(inputs[i], outcome[i]) for i in valid],
                                       f"roster {roster.filename}", progress)
        ids = _member_ids(session, [inputs[i].phone for i in valid  # type: ignore[union-attr]
                                    if outcome[i].status != REJECTED])
        session.flush()
        statuses = []
        rows = []
        for i, (number, raw) in enumerate(roster.rows):
            a = outcome.get(i)
            statuses.append(a.status if a else REJECTED)
            rows.append(_roster_row(imp.id, number, raw, problems[i], a,
                                    ids.get(inputs[i].phone) if a else None))  # type: ignore[union-attr]
        session.execute(RosterRow.__table__.insert(), rows)
        imp.counts = roster_counts(statuses) | counts
        session.flush()
        return roster_view(imp)


def _store_roster_members(session: Session, snap: Snapshot,
                          members: Sequence[tuple[MemberInput, Assignment]], reason: str,
                          progress: Progress) -> dict[str, int]:
    """Insert new members in one statement and update the changed ones."""
    placed = [(inp, a) for inp, a in members if a.status != REJECTED]
    existing = _members_by_phone(session, [inp.phone for inp, _ in placed])
    org_ids = _org_ids(session, [inp.work_unit for inp, _ in placed])
    counts = {"created": 0, "updated": 0, "unchanged": 0}
    new = []
    for done, (inp, a) in enumerate(placed):
        member = existing.get(inp.phone)
        values = _member_values(snap, inp, a, member, org_ids)
        if member is None:
            new.append(values | {"version": 1})
            counts["created"] += 1
        else:
            counts["updated" if _update(session, snap, member, values, reason)
                   else "unchanged"] += 1
        if done % 500 == 0:
            progress("store", done, len(placed))
    if new:
        session.execute(Member.__table__.insert(), new)
    progress("store", len(placed), len(placed))
    return counts


def _member_ids(session: Session, phones: Sequence[str]) -> dict[str, int]:
    found: dict[str, int] = {}
    for part in q.chunks(sorted(set(phones))):
        found.update(session.execute(select(Member.phone, Member.id)
                                     .where(Member.phone.in_(part))).all())
    return found


def _roster_row(import_id: int, number: int, raw: dict[str, str], problems: list[Problem],
                a: Assignment | None, member_id: int | None) -> dict[str, Any]:
    """The RosterRow of one roster row: its outcome, raw data and problems."""
    found = problems + (a.problems(number) if a else [])
    return {"import_id": import_id, "row": number, "status": a.status if a else REJECTED,
            "data": raw, "problems": [p.as_dict() for p in found],
            "member_id": member_id if a and a.status != REJECTED else None}

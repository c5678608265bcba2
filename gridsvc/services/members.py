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
``staff_view``, and only for members in the viewer's subtree (``gridsvc.services.scope``);
``public_view`` echoes the member's own submission with name and phone masked. A scoped
staff member's roster places members in their subtree only: a row that lands elsewhere, or
whose phone belongs to a member registered elsewhere, is rejected with that reason.
Nothing here logs.
"""

from __future__ import annotations

import secrets
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import shapely
from sqlalchemy import ColumnElement, func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session
from sqlalchemy.orm.exc import StaleDataError

from gridsvc.access import Principal
from gridsvc.privacy import mask_name, mask_phone
from gridsvc.services import scope
from gridsvc.services.context import Services
from gridsvc.services.errors import (
    Conflict,
    InvalidInput,
    NotFound,
    PreconditionRequired,
    VersionConflict,
    refuse_unknown,
)
from gridsvc.services.member_assignment import (
    Assignment,
    MemberInput,
    add_households,
    assign_members,
    read_member,
)
from gridsvc.services.registration import (
    ASSIGNED,
    REJECTED,
    Progress,
    Snapshot,
    check_page,
    check_status,
    first_problem,
    quiet,
    read_rows,
    roster_counts,
    roster_view,
    text,
)
from gridsvc.storage import units as q
from gridsvc.storage.models import (
    AssignmentChange,
    Member,
    RegistrationRequest,
    RosterImport,
    RosterRow,
    Unit,
    WorkOrg,
    utcnow,
)
from gridsvc.validation.report import Problem

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


def public_view(snap: Snapshot, inp: MemberInput, a: Assignment, reference: str
                ) -> dict[str, Any]:
    """What a member who registered themselves gets back: the request's reference, their
    own submission (name and phone masked), the outcome of placing it, and the chain with
    public unit contacts. Made from the submission only, so it is the same whether or not
    the phone is a member's."""
    household = None
    if a.household >= 0:
        # (the ignore below: an assigned member has a household entry)
        household = snap.entry(a.household) | {"rule": a.household_rule}  # type: ignore[operator]
    cols = inp.columns()
    return {
        "request": reference,
        "note": REQUEST_NOTE,
        "status": a.status,
        "reason": a.reason,
        "member": {"name": mask_name(inp.name), "phone": mask_phone(inp.phone),
                   "party_org": cols.get("party_org"), "work_unit": inp.work_unit,
                   "home_address": inp.home_address, "point": cols.get("input_point"),
                   "skills": cols.get("skills") or [],
                   "intentions": cols.get("intentions") or [], "roles": cols.get("roles") or []},
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


REQUEST_NOTE = ("received: if this phone is registered already, your community's staff "
                "check the registration before anything changes")
REQUEST_STATUSES = ("registered", "duplicate", "applied", "dismissed")
RESOLVE_ACTIONS = {"apply": "applied", "dismiss": "dismissed"}


def register_member(svc: Services, data: Mapping[str, Any]) -> dict[str, Any]:
    """A member registers themselves (public). The answer depends on the submission alone,
    never on whether the phone, name or address belongs to a member (issue 9 item 2: no
    membership oracle): 400 naming the field for bad input or an address that places nowhere
    (the gazetteer and the lookup are public), else a request (``RegistrationRequest``)
    with a random ``request`` reference and the submission echoed masked. A new phone makes
    the member at once (request ``registered``); a phone that is a member's already stores
    the request as ``duplicate``, changing nothing, for the staff who may see that member
    (``list_requests``, ``resolve_request``). The answer carries no member id."""
    if not isinstance(data, Mapping):
        raise InvalidInput("the body must be a JSON object", field="body")
    inp, snap, a = _assign_one(svc, data)
    reference = secrets.token_hex(8)
    try:
        with svc.db.session() as session:
            held = session.scalar(select(Member.id).where(Member.phone == inp.phone))
            member_id = held
            if held is None:
                values = _member_values(snap, inp, a, None, _org_ids(session, [inp.work_unit]))
                member = Member(**values)
                session.add(member)
                session.flush()
                member_id = member.id
            session.add(_request(reference, inp, a, member_id,
                                 "registered" if held is None else "duplicate"))
    except IntegrityError:  # the phone was registered at the same moment by another request
        with svc.db.session() as session:
            held = session.scalar(select(Member.id).where(Member.phone == inp.phone))
            session.add(_request(reference, inp, a, held, "duplicate"))
    return public_view(snap, inp, a, reference)


def _request(reference: str, inp: MemberInput, a: Assignment, member_id: int | None,
             status: str) -> RegistrationRequest:
    return RegistrationRequest(reference=reference, status=status, phone=inp.phone,
                               data=_input_of(inp), outcome=a.status, member_id=member_id)


def _input_of(inp: MemberInput) -> dict[str, Any]:
    """A submission in the keys ``update_member`` takes (what ``apply`` writes)."""
    cols = inp.columns()
    point = cols.get("input_point") or {}
    return {"name": inp.name, "phone": inp.phone, "party_org": cols.get("party_org"),
            "work_unit": inp.work_unit, "home_address": inp.home_address,
            "lon": point.get("lon"), "lat": point.get("lat"), "coordsys": point.get("coordsys"),
            "skills": cols.get("skills") or [], "intentions": cols.get("intentions") or [],
            "roles": cols.get("roles") or []}


def request_view(req: RegistrationRequest) -> dict[str, Any]:
    """A registration request as staff see it (the submission unmasked: they may see the
    member it concerns)."""
    return {"id": req.id, "reference": req.reference, "status": req.status,
            "outcome": req.outcome, "member_id": req.member_id, "submitted": req.data,
            "created_at": req.created_at.isoformat() if req.created_at else None,
            "resolved_at": req.resolved_at.isoformat() if req.resolved_at else None,
            "resolved_by": req.resolved_by}


def _request_filter(viewer: Principal) -> ColumnElement[bool] | None:
    """The requests a viewer may see: those about a member they may see."""
    visible = scope.member_filter(viewer)
    if visible is None:
        return None
    return RegistrationRequest.member_id.in_(select(Member.id).where(visible))


def list_requests(svc: Services, status: str | None = None, limit: int = 100, offset: int = 0,
                  *, viewer: Principal) -> dict[str, Any]:
    """Registration requests by id, optionally of one status (``duplicate``: waiting for
    staff); only those about a member the viewer may see (so a scoped staff token sees the
    duplicates of its own members, whatever address they give now); paged."""
    if status is not None and status not in REQUEST_STATUSES:
        raise InvalidInput(f"status must be one of {', '.join(REQUEST_STATUSES)}, got "
                           f"{status!r}", field="status")
    limit, offset = check_page(limit, offset)
    where = [w for w in (_request_filter(viewer),) if w is not None]
    if status:
        where.append(RegistrationRequest.status == status)
    with svc.db.session() as session:
        total = session.scalar(select(func.count()).select_from(RegistrationRequest)
                               .where(*where))
        reqs = session.scalars(select(RegistrationRequest).where(*where)
                               .order_by(RegistrationRequest.id).limit(limit).offset(offset))
        items = [request_view(r) for r in reqs]
    return {"items": items, "total": total or 0, "limit": limit, "offset": offset}


def resolve_request(svc: Services, request_id: int, action: Any,
                    viewer: Principal) -> dict[str, Any]:
    """Staff decide a ``duplicate`` request: ``apply`` updates the member with the
    submission (as ``update_member`` does, with its rules: the new building must lie in the
    viewer's subtree), ``dismiss`` leaves the member as it is. NotFound for a request the
    viewer may not see; Conflict when it is not waiting for a decision."""
    if not isinstance(action, str) or action not in RESOLVE_ACTIONS:
        raise InvalidInput(f"action must be one of {', '.join(RESOLVE_ACTIONS)}, got "
                           f"{action!r}", field="action")
    with svc.db.session() as session:
        req = session.get(RegistrationRequest, request_id)
        member = session.get(Member, req.member_id) if req and req.member_id else None
        if req is None or (member is None and not scope.city_wide(viewer)) or (
                member is not None and not scope.sees_member(session, viewer, member)):
            raise NotFound(f"no registration request with id {request_id}")
        if req.status != "duplicate":
            raise Conflict(f"registration request {request_id} is {req.status}; only a "
                           f"duplicate waits for a decision", field="action")
        data, member_id = dict(req.data), req.member_id
    if action == "apply" and member_id is not None:
        update_member(svc, member_id, data, viewer)
    with svc.db.session() as session:
        req = session.get(RegistrationRequest, request_id)
        assert req is not None
        if req.status != "duplicate":  # decided by someone else meanwhile
            raise Conflict(f"registration request {request_id} is {req.status} already",
                           field="action")
        req.status = RESOLVE_ACTIONS[action]
        req.resolved_at = utcnow()
        req.resolved_by = viewer.name
        session.flush()
        return request_view(req)


def _assign_one(svc: Services, data: Mapping[str, Any]
                ) -> tuple[MemberInput, Snapshot, Assignment]:
    """Read one member's fields and assign them; InvalidInput naming the field when the
    input is bad or the assignment rejected."""
    inp, problems = read_member(data)
    if inp is None:
        raise first_problem(problems)
    snap = Snapshot.take(svc)
    a = assign_members(snap, [inp])[0]
    if a.status == REJECTED:
        raise InvalidInput(a.reason or "rejected", field=a.field, status=REJECTED)
    return inp, snap, a


def _stored_input(member: Member) -> dict[str, Any]:
    point = member.input_point or {}
    return {"name": member.name, "phone": member.phone, "party_org": member.party_org,
            "work_unit": member.work_unit, "home_address": member.home_address,
            "lon": point.get("lon"), "lat": point.get("lat"), "coordsys": point.get("coordsys"),
            "skills": member.skills, "intentions": member.intentions, "roles": member.roles}


INPUT_KEYS = ("name", "phone", "party_org", "work_unit", "home_address", "lon", "lat",
              "coordsys", "skills", "intentions", "roles")


def update_member(svc: Services, member_id: int, data: Mapping[str, Any],
                  viewer: Principal, expected_version: int | None = None,
                  require_version: bool = False) -> dict[str, Any]:
    """Staff update: fields in ``data`` replace the stored ones (null clears), the rest stay;
    the member is assigned again (a staff confirmation stands if address and point are
    unchanged). A scoped viewer may not move a member out of their subtree.

    ``expected_version`` (the web layer's If-Match): ``VersionConflict`` (412) unless the
    member is still at that version when the change is stored, so two staff editing the same
    member cannot overwrite each other silently; without one, ``require_version`` makes it
    ``PreconditionRequired`` (428). Checked in this order: the member (404), the fields
    (400), the version (428, 412), the phone (409), the scope of the new building (403). A
    phone that belongs to another member is 409 with the same words whether or not the
    caller may see that member (no id)."""
    if not isinstance(data, Mapping):
        raise InvalidInput("the body must be a JSON object", field="body")
    refuse_unknown(data, INPUT_KEYS, "fields")
    with svc.db.session() as session:
        member = _get(session, member_id, viewer)
        merged = _stored_input(member) | dict(data)
    inp, snap, a = _assign_one(svc, merged)
    if require_version and expected_version is None:
        raise PreconditionRequired(
            f"send If-Match with the ETag of member {member_id} as you read it (from GET "
            f"/api/v1/members/{member_id}), so an update cannot overwrite someone else's")
    try:
        with svc.db.session() as session:
            member = _get(session, member_id, viewer)
            _check_version(member, expected_version)
            taken = session.scalar(select(Member.id).where(Member.phone == inp.phone,
                                                           Member.id != member_id))
            if taken is not None:
                raise Conflict("another member has this phone", field="phone")  # no id
            values = _member_values(snap, inp, a, member, _org_ids(session, [inp.work_unit]))
            _update(session, snap, member, values, "staff update")
            scope.require_unit_in_scope(session, viewer, member.building_id,
                                        "the member's new building")
            session.flush()
            return staff_view(snap, member, _org_names(session, [member]), with_chain=True)
    except IntegrityError:
        raise Conflict("another member has this phone", field="phone") from None
    except StaleDataError:  # another request stored a new version between read and write
        raise _version_conflict(member_id) from None


def _check_version(member: Member, expected: int | None) -> None:
    if expected is not None and member.version != expected:
        raise _version_conflict(member.id)


def _version_conflict(member_id: int) -> VersionConflict:
    return VersionConflict(f"member {member_id} changed since it was read (someone else "
                           f"saved first); read it again for its ETag")


def _get(session: Session, member_id: int, viewer: Principal) -> Member:
    """The member, or NotFound when there is none or the viewer may not see them."""
    member = session.get(Member, member_id)
    if member is None or not scope.sees_member(session, viewer, member):
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


def confirm_member(svc: Services, member_id: int, building: Any,
                   viewer: Principal, expected_version: int | None = None
                   ) -> dict[str, Any]:
    """Staff confirm the member's building (a micro-grid code): status assigned, match
    method "staff"; the household is chosen again. ``expected_version`` as for
    ``update_member``."""
    from gridsvc.geocode.parse import parse

    code = text(building)
    snap = Snapshot.take(svc)
    row = snap.index.row_of_code.get(code, -1) if code else -1
    micro = svc.hierarchy.micro_grid
    if row < 0 or int(snap.index.levels[row]) != micro.level:
        raise InvalidInput(f"building must be the code of a {micro.key} ({micro.name}) unit, "
                           f"got {building!r}", field="building")
    try:
        with svc.db.session() as session:
            member = _get(session, member_id, viewer)
            _check_version(member, expected_version)
            scope.require_unit_in_scope(session, viewer, snap.unit_id(row), f"building {code}")
            # (the ignore below: a confirmed building has a point)
            lon, lat = _building_point(session, member, code)  # type: ignore[arg-type]
            previous = {k: v for k, v in (member.match or {}).items()
                        if k in ("method", "status", "level", "fallback", "distance_m")}
            a = Assignment(ASSIGNED, building=row, lon=lon, lat=lat, match={
                "method": "staff", "coordsys": "wgs84", "building": code, "fallback": False,
                "distance_m": 0.0, "previous": previous})
            unit_no = parse(member.home_address).unit if member.home_address else None
            add_households(snap, [a], [unit_no])
            old_building = member.building_id
            for key, value in _assignment_columns(snap, a).items():
                setattr(member, key, value)
            _record_move(session, snap, member, old_building, "staff confirmation")
            session.flush()
            return staff_view(snap, member, _org_names(session, [member]), with_chain=True)
    except StaleDataError:  # another request stored a new version meanwhile
        raise _version_conflict(member_id) from None


def get_member(svc: Services, member_id: int, viewer: Principal
               ) -> dict[str, Any]:
    snap = Snapshot.take(svc)
    with svc.db.session() as session:
        member = _get(session, member_id, viewer)
        return staff_view(snap, member, _org_names(session, [member]), with_chain=True)


def list_members(svc: Services, status: str | None = None, unit: str | None = None,
                 search: str | None = None, limit: int = 100, offset: int = 0,
                 *, viewer: Principal) -> dict[str, Any]:
    """Members by id, filtered by status, by the subtree of a unit (their building is in it)
    and by a name fragment; paged; only those the viewer may see."""
    check_status(status)
    limit, offset = check_page(limit, offset)
    snap = Snapshot.take(svc)
    with svc.db.session() as session:
        where = []
        visible = scope.member_filter(viewer)
        if visible is not None:
            where.append(visible)
        if status:
            where.append(Member.status == status)
        if search:
            where.append(Member.name.contains(search, autoescape=True))
        if unit:
            path = session.scalar(select(Unit.path).where(Unit.code == unit))
            if path is None or (viewer is not None and not scope.city_wide(viewer)
                                and not viewer.covers(path)):
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
                   progress: Progress = quiet, *, viewer: Principal
                   ) -> dict[str, Any]:
    """Import a roster (CSV or XLSX) in one transaction; every row ends assigned,
    needs-confirmation or rejected and is kept as a RosterRow. Members are matched by phone:
    a re-import updates them and leaves unchanged ones untouched. A member rejected by this
    roster keeps what an earlier import stored."""
    roster, inputs, problems = read_rows(path, ALIASES, REQUIRED, filename, read_member,
                                         lambda m: m.phone, "phone")
    progress("read", len(roster.rows), len(roster.rows))
    valid = [i for i, m in enumerate(inputs) if m is not None]
    snap = Snapshot.take(svc)
    # (the ignore below: valid rows have inputs)
    assigned = assign_members(snap, [inputs[i] for i in valid], progress)  # type: ignore[misc]
    outcome = dict(zip(valid, assigned, strict=True))
    with svc.db.session() as session:
        if not scope.city_wide(viewer):
            _keep_in_scope(session, snap, viewer, {i: (inputs[i], outcome[i]) for i in valid},
                           outcome)
        imp = RosterImport(kind="members", filename=roster.filename, counts={},
                           token_id=viewer.token_id if viewer else None)
        session.add(imp)
        counts = _store_roster_members(session, snap, [(m, outcome[i]) for i in valid
                                                       if (m := inputs[i]) is not None],
                                       f"roster {roster.filename}", progress)
        # (the ignore below: valid rows have inputs)
        ids = _member_ids(session, [inputs[i].phone for i in valid  # type: ignore[union-attr]
                                    if outcome[i].status != REJECTED])
        session.flush()
        statuses = []
        rows = []
        for i, (number, raw) in enumerate(roster.rows):
            a = outcome.get(i)
            statuses.append(a.status if a else REJECTED)
            rows.append(_roster_row(imp.id, number, raw, problems[i], a,
                                    # (the ignore below: a row with an outcome has input)
                                    ids.get(inputs[i].phone) if a else None))  # type: ignore[union-attr]
        session.execute(RosterRow.__table__.insert(), rows)
        imp.counts = roster_counts(statuses) | counts
        session.flush()
        return roster_view(imp)


def _keep_in_scope(session: Session, snap: Snapshot, viewer: Principal,
                   rows: Mapping[int, tuple[MemberInput | None, Assignment]],
                   outcome: dict[int, Assignment]) -> None:
    """Reject the rows a scoped viewer may not store: placed outside their subtree (or not
    placed at all), or updating a member who is registered outside it."""
    assert viewer is not None
    inside = set(session.scalars(scope.unit_ids(viewer))) if viewer.scope_path else set()
    existing = _members_by_phone(session, [inp.phone for inp, _ in rows.values() if inp])
    for i, (inp, a) in rows.items():
        if a.status == REJECTED or inp is None:
            continue
        reason = None
        stored = existing.get(inp.phone)
        if stored is not None and stored.building_id not in inside:
            reason = "this phone belongs to a member registered outside your subtree"
        elif snap.unit_id(a.building) not in inside:
            where = f"building {snap.index.codes[a.building]}" if a.building >= 0 else "no building"
            reason = f"lands in {where}, outside your subtree ({viewer.scope_label})"
        if reason:
            outcome[i] = Assignment(REJECTED, reason, "home_address", rule="outside-scope")


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

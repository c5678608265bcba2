"""Needs (需求清单): ordering one, routing it, reading it as each caller may, the ledger.

**Ordering** (居民点单): a resident orders for themselves (their name and phone come from their
account); community staff, a member who is a 党员中心户 (``household_head``) or a grid worker
order on a resident's behalf (proxy), recorded as such with the reporter's name and phone.
The public cannot order (a resident needs a verified phone: a resident token).

**Routing**: the confirmed point (``point``; else the address's gazetteer point) is located in
the micro-grid index: building, grid (its parent), community, street and the responsible
党员中心户, with the boundary revision of the index. Both the geocoded point and the point the
reporter confirmed are kept. A later redraw of boundaries does not move a filed need; staff
re-route it (``reroute``), which records the old and new community.

**Reading** (SERVICE_LOOP.md, privacy): the *pool view* (public and members) shows kind,
category, title, public summary, urgency, grid, community and state, never a name, an exact
point, an address or a flag, and only for needs that were published (not submitted or filed:
those do not exist for the public). Community staff see everything, the beneficiary flags
included. The reporting resident sees their own need without flags of others or the taker's
identity. The current taker, once they hold the need (a self-claim, or an accepted dispatch),
and until ``disclose_days`` after it closed, also sees the detail, the address, the point and
the reporter's name and phone; every such read is in the audit log (``need read-contact``).
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import timedelta
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from gridsvc.access import Principal, Role
from gridsvc.domain.loop import (
    BENEFICIARY_FLAGS,
    CHANNELS,
    URGENCIES,
    NeedKind,
    NeedState,
    Party,
    allowed_actions,
    ledger_number,
)
from gridsvc.services.context import Services
from gridsvc.services.errors import Conflict, Forbidden, InvalidInput, NotFound
from gridsvc.services.lookup import AddressNotResolved, locate_address, locate_point
from gridsvc.services.loop.common import (
    COMMUNITY_LEVEL,
    STREET_LEVEL,
    audit_in,
    body_of,
    choice_of,
    config,
    date_of,
    get_need_row,
    insert_or_conflict,
    int_of,
    is_staff_of,
    iso,
    last_taken_order,
    list_of_text,
    live_order,
    member_communities,
    now,
    number_of,
    parties,
    text_of,
)
from gridsvc.services.registration import check_page
from gridsvc.storage.loop_models import Need, NeedUpdate, Order, Resident
from gridsvc.storage.models import Unit
from gridsvc.storage.units import subtree_filter

#: Published states: the pool view exists for these (the public sees nothing of the others).
PUBLISHED = frozenset(set(NeedState) - {NeedState.SUBMITTED, NeedState.FILED})
PROXY_ROLES = {Role.STAFF: "staff", Role.ADMIN: "staff", Role.MEMBER: "household_head"}


# --- ordering ---------------------------------------------------------------------------------


def submit_need(services: Services, actor: Principal, body: Any) -> dict[str, Any]:
    """Order a need; it is routed by its point at once and lands in the community's ledger
    as ``submitted``. Returns the need as the caller may see it."""
    data = body_of(body)
    cfg = config(services)
    if actor.role is Role.PUBLIC:
        raise Forbidden("ordering a need needs a resident token (a verified phone) or a "
                        "staff token ordering on a resident's behalf")
    if actor.role not in (Role.RESIDENT, Role.STAFF, Role.ADMIN, Role.MEMBER):
        raise Forbidden(f"a {actor.role.value} token may not order needs")
    values: dict[str, Any] = {
        "kind": choice_of(data, "kind", [k.value for k in NeedKind]),
        "category": choice_of(data, "category", list(cfg.post_kinds)),
        "title": text_of(data, "title", required=True, max_length=200),
        "summary": text_of(data, "summary", max_length=500),
        "detail": text_of(data, "detail", max_length=4000),
        "urgency": choice_of(data, "urgency", URGENCIES, "normal"),
        "due_on": date_of(data, "due_on"),
        "persons_needed": int_of(data, "persons_needed", 1, low=1, high=100),
        "est_hours": number_of(data, "est_hours", high=1000),
        "skills": list_of_text(data, "skills"),
        "channel": choice_of(data, "channel", CHANNELS, "online"),
        "consent": bool(data.get("consent", False)),
        "flags": list_of_text(data, "flags", BENEFICIARY_FLAGS),
        "address": text_of(data, "address", max_length=300),
    }
    route = _route(services, data, values["address"])
    values.update(route.pop("columns"))
    with services.db.write_session() as session:
        if actor.role is Role.RESIDENT:
            resident = session.get(Resident, actor.resident_id)
            if resident is None:
                raise Forbidden("this resident token names no resident")
            values.update(reporter_kind="resident", resident_id=resident.id,
                          reporter_name=resident.name, reporter_phone=resident.phone)
        else:
            reporter = data.get("reporter")
            reporter = reporter if isinstance(reporter, Mapping) else {}
            if actor.role is Role.STAFF and not is_staff_of(session, actor,
                                                            values["community_id"]):
                raise Forbidden("the point lies outside this staff token's subtree")
            if actor.role is Role.MEMBER and (
                    values["community_id"] not in member_communities(session,
                                                                     actor.member_id or 0)):
                raise Forbidden("a member orders on behalf of residents of their own "
                                "community only")
            values.update(
                reporter_kind=choice_of(reporter, "kind", ("household_head", "grid_worker",
                                                           "staff"),
                                        PROXY_ROLES[actor.role]),
                reporter_name=text_of(reporter, "name", required=True, max_length=100),
                reporter_phone=text_of(reporter, "phone", max_length=20),
                proxy=actor.name[:100])
            resident_id = int_of(reporter, "resident_id")
            if resident_id is not None:
                if session.get(Resident, resident_id) is None:
                    raise NotFound(f"no resident with id {resident_id}", field="resident_id")
                values["resident_id"] = resident_id
        need = _insert_numbered(session, values, route)
        session.add(NeedUpdate(need_id=need.id, action="submit", from_state=None,
                               to_state=need.state, actor=actor.name[:100],
                               role=actor.role.value))
        audit_in(session, actor, "need submit", f"need:{need.id}",
                 community=route["community_code"], revision=need.boundary_revision)
        return shape(session, actor, need, parties(session, actor, need, None))


def _route(services: Services, data: Mapping[str, Any], address: str | None,
           ) -> dict[str, Any]:
    """Locate the need: the confirmed point, else the address; the units and revision."""
    index = services.locator.current()
    point = data.get("point")
    geocoded: tuple[float, float] | None = None
    method = "point"
    if address:
        try:
            answer = locate_address(services, index, address, None)
            geocoded = (answer.lon, answer.lat)
        except AddressNotResolved:
            if not isinstance(point, Mapping):
                raise
    if isinstance(point, Mapping):
        located = locate_point(services, point.get("lon"), point.get("lat"),
                               point.get("coordsys"))
        row, hh, lon, lat = located.row, located.household, located.lon, located.lat
        given: dict[str, Any] | None = {k: point.get(k) for k in ("lon", "lat", "coordsys")}
    elif geocoded is not None:
        method, given = "address", None
        row, hh = answer.row, answer.household
        lon, lat = geocoded
    else:
        raise InvalidInput("give the need's place: point {lon, lat, coordsys} (the point "
                           "the reporter confirmed) or an address", field="point")
    chain = list(reversed(index.chains.chain_rows(row)))  # root first
    by_level = {int(index.levels[r]): r for r in chain}
    micro = index.hierarchy.micro_grid.level

    def unit_id(level: int) -> int | None:
        r = by_level.get(level)
        return int(index.ids[r]) if r is not None else None

    community = by_level.get(COMMUNITY_LEVEL)
    if community is None:
        raise InvalidInput("the point lies in no community", field="point")
    return {
        "community_code": str(index.codes[community]),
        "columns": {
            "input_point": given,
            "geocoded_lon": geocoded[0] if geocoded else None,
            "geocoded_lat": geocoded[1] if geocoded else None,
            "lon": lon, "lat": lat,
            "building_id": unit_id(micro), "grid_id": unit_id(micro - 1),
            "community_id": unit_id(COMMUNITY_LEVEL), "street_id": unit_id(STREET_LEVEL),
            "household_id": int(index.ids[hh]) if hh >= 0 else None,
            "boundary_revision": index.revision,
            "route": {"method": method, "building": str(index.codes[row]),
                      "at": iso(now())},
        },
    }


def _insert_numbered(session: Session, values: dict[str, Any], route: dict[str, Any]) -> Need:
    """Insert the need with the next ledger number of its community and year (the write
    session serialises numbering; the unique constraint guards it)."""
    year = now().year
    seq = (session.scalar(select(func.max(Need.seq)).where(
        Need.community_id == values["community_id"], Need.year == year)) or 0) + 1
    need = Need(**values, year=year, seq=seq, state=NeedState.SUBMITTED.value,
                ledger_no=ledger_number(route["community_code"], year, seq))
    insert_or_conflict(session, need, Conflict(
        "another need took this ledger number at the same moment; retry"))
    return need


# --- reading ----------------------------------------------------------------------------------


def _unit_brief(session: Session, unit_id: int | None) -> dict[str, Any] | None:
    if unit_id is None:
        return None
    row = session.execute(select(Unit.code, Unit.name).where(Unit.id == unit_id)).first()
    return {"code": row.code, "name": row.name} if row else None


def pool_view(session: Session, need: Need) -> dict[str, Any]:
    """What anyone who may see the need at all sees: no name, point, address or flag."""
    return {
        "id": need.id, "ledger_no": need.ledger_no, "kind": need.kind,
        "category": need.category, "title": need.title, "summary": need.summary,
        "urgency": need.urgency, "due_on": iso(need.due_on),
        "persons_needed": need.persons_needed, "est_hours": need.est_hours,
        "skills": need.skills, "state": need.state, "outcome": need.outcome,
        "grid": _unit_brief(session, need.grid_id),
        "community": _unit_brief(session, need.community_id),
        "created_at": iso(need.created_at),
    }


def discloses_contact(session: Session, actor: Principal, need: Need,
                      order: Order | None) -> bool:
    """The current taker, once they hold the need, until ``disclose_days`` after close."""
    held = order if order is not None else last_taken_order(session, need.id)
    if held is None or held.state == "offered":
        return False
    from gridsvc.services.loop.common import is_taker

    if not is_taker(actor, held):
        return False
    if need.state == NeedState.CLOSED:
        days = config_days(session)
        return need.closed_at is not None and now() <= need.closed_at + timedelta(days=days)
    return True


def config_days(_session: Session) -> int:
    from gridsvc.domain.loop import DEFAULT_CONFIG

    return DEFAULT_CONFIG.disclose_days


def shape(session: Session, actor: Principal, need: Need, rel: set[Party]) -> dict[str, Any]:
    """The need as this caller may see it (see the module docstring)."""
    order = live_order(session, need.id)
    out = pool_view(session, need)
    out["allowed"] = allowed_actions(need.state, rel)
    if Party.STAFF in rel:
        out.update(_private(need))
        out["flags"] = need.flags
        out["routing"] = {
            "building": _unit_brief(session, need.building_id),
            "street": _unit_brief(session, need.street_id),
            "household": _unit_brief(session, need.household_id),
            "boundary_revision": need.boundary_revision, "route": need.route}
        out["reporter"] = {"kind": need.reporter_kind, "resident_id": need.resident_id,
                           "name": need.reporter_name, "phone": need.reporter_phone,
                           "proxy": need.proxy}
        out["channel"], out["consent"] = need.channel, need.consent
        out["duplicate_of"] = need.duplicate_of_id
        out["order"] = order_view(order)
        out["updates"] = _updates(session, need, with_actor=True)
        return out
    if Party.REPORTER in rel:
        out.update(_private(need))
        out["reporter"] = {"kind": need.reporter_kind, "name": need.reporter_name,
                           "phone": need.reporter_phone}
        out["taken"] = order is not None and order.state != "offered"
        out["updates"] = _updates(session, need, with_actor=False)
        return out
    if discloses_contact(session, actor, need, order):
        out.update(_private(need))
        out["reporter"] = {"name": need.reporter_name, "phone": need.reporter_phone}
        out["order"] = order_view(order)
        audit_in(session, actor, "need read-contact", f"need:{need.id}")
    elif Party.TAKER in rel:
        out["order"] = order_view(order)
    return out


def _private(need: Need) -> dict[str, Any]:
    return {"detail": need.detail, "address": need.address,
            "point": ({"lon": need.lon, "lat": need.lat} if need.lon is not None else None),
            "geocoded_point": ({"lon": need.geocoded_lon, "lat": need.geocoded_lat}
                               if need.geocoded_lon is not None else None),
            "input_point": need.input_point}


def order_view(order: Order | None) -> dict[str, Any] | None:
    if order is None:
        return None
    return {"id": order.id, "taker_kind": order.taker_kind, "member_id": order.member_id,
            "work_org_id": order.work_org_id, "origin": order.origin, "state": order.state,
            "respond_by": iso(order.respond_by), "accepted_at": iso(order.accepted_at)}


def _updates(session: Session, need: Need, *, with_actor: bool) -> list[dict[str, Any]]:
    rows = session.scalars(select(NeedUpdate).where(NeedUpdate.need_id == need.id)
                           .order_by(NeedUpdate.id))
    return [{"action": u.action, "from": u.from_state, "to": u.to_state, "at": iso(u.at),
             "reason": u.reason, **({"actor": u.actor, "role": u.role} if with_actor else {})}
            for u in rows]


def hidden(rel: set[Party], need: Need) -> bool:
    """Does the need not exist for this caller? Unpublished needs exist only for staff of
    its community, its reporter and a taker (a member of the community sees the pool)."""
    return need.state not in PUBLISHED and not rel & {Party.STAFF, Party.REPORTER,
                                                      Party.TAKER}


def get_need(services: Services, actor: Principal, need_id: int) -> dict[str, Any]:
    """One need as the caller may see it; a need the caller may not see at all is 404."""
    with services.db.session() as session:
        need = get_need_row(session, need_id)
        rel = parties(session, actor, need, live_order(session, need.id))
        if (not rel or hidden(rel, need)) and not _pool_visible(session, actor, need):
            raise NotFound(f"no need with id {need_id}", field="need_id")
        return shape(session, actor, need, rel)


def _pool_visible(session: Session, actor: Principal, need: Need) -> bool:
    if need.state not in PUBLISHED:
        return False
    if discloses_contact(session, actor, need, None):
        return True
    return actor.role in (Role.PUBLIC, Role.MEMBER, Role.UNIT, Role.RESIDENT, Role.PLANNER,
                          Role.STAFF)


def list_needs(services: Services, actor: Principal, *, community: str | None = None,
               state: str | None = None, kind: str | None = None, limit: int = 50,
               offset: int = 0) -> dict[str, Any]:
    """A page of needs, newest first: the community ledger for staff of its subtree (items
    with the reporter kind and taker, no contact), the caller's own needs for a resident,
    published needs in the pool view for everyone else (``state=open``: the claim pool)."""
    check_page(limit, offset)
    if state is not None and state not in set(NeedState):
        raise InvalidInput(f"state must be one of {', '.join(NeedState)}", field="state")
    if kind is not None and kind not in set(NeedKind):
        raise InvalidInput(f"kind must be one of {', '.join(NeedKind)}", field="kind")
    with services.db.session() as session:
        where: list[Any] = []
        staff_view = False
        if community is not None:
            unit = session.scalar(select(Unit).where(Unit.code == community))
            if unit is None:
                raise NotFound(f"no unit with code {community!r}", field="community")
            where.append(Need.community_id.in_(select(Unit.id).where(
                subtree_filter(unit.path))))
            staff_view = actor.role is Role.ADMIN or (actor.role is Role.STAFF
                                                      and actor.covers(unit.path))
        elif actor.role is Role.ADMIN or (actor.role is Role.STAFF and actor.city_wide):
            staff_view = True
        elif actor.role is Role.STAFF and actor.scope_path:
            where.append(Need.community_id.in_(select(Unit.id).where(
                subtree_filter(actor.scope_path))))
            staff_view = True
        if actor.role is Role.RESIDENT:
            where.append(Need.resident_id == (actor.resident_id or -1))
        elif not staff_view:
            where.append(Need.state.in_([s.value for s in PUBLISHED]))
        if state:
            where.append(Need.state == state)
        if kind:
            where.append(Need.kind == kind)
        total = session.scalar(select(func.count()).select_from(Need).where(*where)) or 0
        rows = list(session.scalars(select(Need).where(*where)
                                    .order_by(Need.created_at.desc(), Need.id.desc())
                                    .limit(limit).offset(offset)))
        items = []
        for need in rows:
            item = pool_view(session, need)
            if staff_view or actor.role is Role.RESIDENT:
                order = live_order(session, need.id)
                item["reporter_kind"] = need.reporter_kind
                item["order"] = order_view(order) if staff_view else None
            items.append(item)
        return {"items": items, "total": total, "limit": limit, "offset": offset}


def reroute(services: Services, actor: Principal, need_id: int, body: Any) -> dict[str, Any]:
    """Staff route a need again by its point under today's boundaries (or to the point in
    ``point``): the new units and revision, recorded as an update with both communities."""
    data = body_of(body)
    reason = text_of(data, "reason", required=True)
    with services.db.write_session() as session:
        need = get_need_row(session, need_id, lock=True)
        if not is_staff_of(session, actor, need.community_id):
            raise NotFound(f"no need with id {need_id}", field="need_id") if not parties(
                session, actor, need, None) else Forbidden(
                "only staff of the need's community may re-route it")
        if need.state == NeedState.CLOSED:
            raise Conflict("a closed need is not re-routed; reopen it first",
                           state=need.state)
        point = data.get("point") or {"lon": need.lon, "lat": need.lat, "coordsys": "wgs84"}
        route = _route(services, {"point": point}, None)
        columns = route["columns"]
        old = need.community_id
        if not is_staff_of(session, actor, columns["community_id"]):
            raise Forbidden("the new place lies outside this staff token's subtree")
        for key in ("lon", "lat", "building_id", "grid_id", "community_id", "street_id",
                    "household_id", "boundary_revision", "route"):
            setattr(need, key, columns[key])
        if data.get("point"):
            need.input_point = columns["input_point"]
        session.add(NeedUpdate(need_id=need.id, action="reroute", from_state=need.state,
                               to_state=need.state, actor=actor.name[:100],
                               role=actor.role.value, reason=reason))
        audit_in(session, actor, "need reroute", f"need:{need.id}", from_community=old,
                 to_community=need.community_id, revision=need.boundary_revision)
        session.flush()
        return shape(session, actor, need, parties(session, actor, need,
                                                   live_order(session, need.id)))

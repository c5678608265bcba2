"""The points ledger (积分): append-only movements; balances are sums over a period.

Rules (``LoopConfig.points``, Tongchuan's defaults): +1 to each participant of a service
closed as resolved or partly resolved (and +1 to the work-unit organisation that took it);
+1 to each participant when the service was rated well (every party rated, weighted score at
least ``well_threshold``); +2 when staff choose the record as the week's example. Reopening a
need reverses every entry it earned with a new entry (``reverses_id``), never an update; an
award is stored once per subject, reason and record (unique).

Periods are calendar periods in UTC: ISO week (``2026-W49``), month (``2026-12``), quarter
(``2026-Q4``) and year. ``remind_zero_points`` (the ``points-month-end`` job) queues a
reminder to every reported member and every work-unit organisation with no points in the
month before, and tells the member's unit secretary too.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from typing import Any

from sqlalchemy import and_, func, select
from sqlalchemy.orm import Session, aliased

from gridsvc.access import Principal, Role
from gridsvc.services.context import Services
from gridsvc.services.errors import Forbidden, InvalidInput, NotFound
from gridsvc.services.loop.common import audit_in, config, is_staff_of, iso, notify, now
from gridsvc.storage.loop_models import Need, Order, OutboxMessage, PointsEntry, ServiceRecord
from gridsvc.storage.models import Member, WorkOrg

REPORTED = ("assigned", "needs-confirmation")  # members who reported (双报到)


def _add(session: Session, actor: Principal, kind: str, subject_id: int, delta: int,
         reason: str, need_id: int | None, record_id: int | None) -> None:
    exists = session.scalar(select(PointsEntry.id).where(
        PointsEntry.subject_kind == kind, PointsEntry.subject_id == subject_id,
        PointsEntry.reason == reason, PointsEntry.record_id == record_id))
    if exists is None:
        session.add(PointsEntry(subject_kind=kind, subject_id=subject_id, delta=delta,
                                reason=reason, need_id=need_id, record_id=record_id,
                                actor=actor.name[:100]))


def award_service(session: Session, services: Services, actor: Principal, need: Need,
                  order: Order, record: ServiceRecord) -> None:
    delta = config(services).points["service"]
    for p in record.participants:
        _add(session, actor, "member", p["member_id"], delta, "service", need.id, record.id)
    if order.taker_kind == "work_org" and order.work_org_id is not None:
        _add(session, actor, "work_org", order.work_org_id, delta, "service", need.id,
             record.id)


def award_rated_well(session: Session, services: Services, actor: Principal,
                     record: ServiceRecord) -> None:
    delta = config(services).points["rated_well"]
    for p in record.participants:
        _add(session, actor, "member", p["member_id"], delta, "rated_well", record.need_id,
             record.id)


def reverse_need(session: Session, actor: Principal, need_id: int) -> int:
    """A reversing entry for every entry of the need not yet reversed; how many."""
    reversal = aliased(PointsEntry)
    open_entries = list(session.scalars(
        select(PointsEntry)
        .outerjoin(reversal, reversal.reverses_id == PointsEntry.id)
        .where(PointsEntry.need_id == need_id, PointsEntry.reverses_id.is_(None),
               reversal.id.is_(None))))
    for entry in open_entries:
        session.add(PointsEntry(subject_kind=entry.subject_kind, subject_id=entry.subject_id,
                                delta=-entry.delta, reason=f"undo-{entry.reason}"[:30],
                                need_id=need_id, record_id=None, reverses_id=entry.id,
                                actor=actor.name[:100]))
    return len(open_entries)


def choose_example(services: Services, actor: Principal, record_id: int) -> dict[str, Any]:
    """Staff choose a service record as the week's example (典型): +2 to each participant."""
    with services.db.write_session() as session:
        record = session.get(ServiceRecord, record_id)
        need = session.get(Need, record.need_id) if record else None
        if record is None or need is None or not is_staff_of(session, actor,
                                                            need.community_id):
            raise NotFound(f"no service record with id {record_id}", field="record_id")
        year, week, _ = now().isocalendar()
        record.example_week = f"{year}-W{week:02d}"
        delta = config(services).points["example"]
        for p in record.participants:
            _add(session, actor, "member", p["member_id"], delta, "example", need.id,
                 record.id)
        audit_in(session, actor, "record example", f"record:{record.id}")
        return {"record_id": record.id, "example_week": record.example_week}


# --- balances ---------------------------------------------------------------------------------


def periods(day: date) -> dict[str, tuple[date, date, str]]:
    """The week, month, quarter and year holding ``day``: (first day, day after, label)."""
    iso_year, iso_week, weekday = day.isocalendar()
    week_start = day - timedelta(days=weekday - 1)
    month_start = day.replace(day=1)
    next_month = (month_start + timedelta(days=32)).replace(day=1)
    q = (day.month - 1) // 3
    quarter_start = date(day.year, 3 * q + 1, 1)
    quarter_end = date(day.year + 1, 1, 1) if q == 3 else date(day.year, 3 * q + 4, 1)
    return {
        "week": (week_start, week_start + timedelta(days=7), f"{iso_year}-W{iso_week:02d}"),
        "month": (month_start, next_month, f"{day.year}-{day.month:02d}"),
        "quarter": (quarter_start, quarter_end, f"{day.year}-Q{q + 1}"),
        "year": (date(day.year, 1, 1), date(day.year + 1, 1, 1), str(day.year)),
    }


def _utc(day: date) -> datetime:
    return datetime(day.year, day.month, day.day, tzinfo=UTC)


def may_read_points(session: Session, actor: Principal, kind: str, subject_id: int) -> bool:
    if actor.role is Role.ADMIN:
        return True
    if kind == "member":
        if actor.role is Role.MEMBER:
            return actor.member_id == subject_id
        member = session.get(Member, subject_id)
        if member is None:
            return False
        if actor.role is Role.UNIT:
            return member.work_org_id is not None and member.work_org_id == actor.work_org_id
        if actor.role is Role.STAFF:
            from gridsvc.services.loop.common import member_communities

            return any(is_staff_of(session, actor, c)
                       for c in member_communities(session, subject_id))
        return False
    if actor.role is Role.UNIT:
        return actor.work_org_id == subject_id
    org = session.get(WorkOrg, subject_id)
    return (actor.role is Role.STAFF and org is not None and org.community_id is not None
            and is_staff_of(session, actor, org.community_id))


def balance(services: Services, actor: Principal, kind: str, subject_id: int,
            day: date | None = None) -> dict[str, Any]:
    """The subject's points in the week, month, quarter and year holding ``day`` (today),
    and its entries of that year."""
    if kind not in ("member", "work_org"):
        raise InvalidInput("kind must be member or work_org", field="kind")
    day = day or now().date()
    with services.db.session() as session:
        if not may_read_points(session, actor, kind, subject_id):
            raise NotFound(f"no {kind} {subject_id} whose points you may read",
                           field="id")
        out: dict[str, Any] = {"subject": {"kind": kind, "id": subject_id}}
        where = (PointsEntry.subject_kind == kind, PointsEntry.subject_id == subject_id)
        for name, (start, end, label) in periods(day).items():
            total = session.scalar(select(func.coalesce(func.sum(PointsEntry.delta), 0))
                                   .where(*where, PointsEntry.at >= _utc(start),
                                          PointsEntry.at < _utc(end)))
            out[name] = {"period": label, "points": int(total or 0)}
        start, end, _ = periods(day)["year"]
        out["entries"] = [
            {"id": e.id, "delta": e.delta, "reason": e.reason, "need_id": e.need_id,
             "record_id": e.record_id, "reverses": e.reverses_id, "at": iso(e.at)}
            for e in session.scalars(select(PointsEntry).where(
                *where, PointsEntry.at >= _utc(start), PointsEntry.at < _utc(end))
                .order_by(PointsEntry.id))]
        return out


# --- month end --------------------------------------------------------------------------------


def remind_zero_points(services: Services, actor: Principal,
                       today: date | None = None) -> dict[str, Any]:
    """Queue the month-end reminders for the month before ``today``: every reported member
    and every work-unit organisation with no points in it (members' unit secretaries are
    told too). Once per month: a second run in the same month queues nothing."""
    today = today or now().date()
    this_month = today.replace(day=1)
    start, end, label = periods(this_month - timedelta(days=1))["month"]
    with services.db.write_session() as session:
        marker = f"zero-points-done:{label}"
        done = session.scalar(select(OutboxMessage.id).where(
            OutboxMessage.recipient_kind == "none", OutboxMessage.template == marker))
        if done is not None:
            return {"period": label, "members": 0, "work_orgs": 0, "already": True}
        in_month = and_(PointsEntry.at >= _utc(start), PointsEntry.at < _utc(end))
        scored = (select(PointsEntry.subject_id)
                  .where(PointsEntry.subject_kind == "member", in_month)
                  .group_by(PointsEntry.subject_id)
                  .having(func.sum(PointsEntry.delta) != 0))
        members = session.execute(select(Member.id, Member.work_org_id).where(
            Member.status.in_(REPORTED), Member.id.not_in(scored))
            .order_by(Member.id)).all()
        for member_id, org_id in members:
            notify(session, "member", member_id, "zero-points", None, period=label)
            notify(session, "work_org", org_id, "member-zero-points", None, period=label,
                   member=member_id)
        scored_orgs = (select(PointsEntry.subject_id)
                       .where(PointsEntry.subject_kind == "work_org", in_month)
                       .group_by(PointsEntry.subject_id)
                       .having(func.sum(PointsEntry.delta) != 0))
        orgs = list(session.scalars(select(WorkOrg.id).where(WorkOrg.id.not_in(scored_orgs))
                                    .order_by(WorkOrg.id)))
        for org_id in orgs:
            notify(session, "work_org", org_id, "zero-points", None, period=label)
        # the month's marker (never sent, never listed): a second run queues nothing
        session.add(OutboxMessage(recipient_kind="none", recipient_id=0, template=marker,
                                  params={"period": label}, status="sent"))
        audit_in(session, actor, "points remind", f"period:{label}", members=len(members),
                 work_orgs=len(orgs))
        return {"period": label, "members": len(members), "work_orgs": len(orgs),
                "already": False}


def ensure_staff(session: Session, actor: Principal, community_id: int) -> None:
    if not is_staff_of(session, actor, community_id):
        raise Forbidden("only staff of the community may do this")


# --- rankings ---------------------------------------------------------------------------------


def _period_bounds(label: str) -> tuple[date, date]:
    """``2026-W49``, ``2026-12``, ``2026-Q4`` or ``2026`` as (first day, day after)."""
    try:
        if "-W" in label:
            year, week = label.split("-W")
            start = date.fromisocalendar(int(year), int(week), 1)
            return start, start + timedelta(days=7)
        if "-Q" in label:
            year, q = label.split("-Q")
            if not 1 <= int(q) <= 4:
                raise ValueError(label)
            first, _, _ = periods(date(int(year), 3 * int(q) - 2, 1))["quarter"]
            return first, periods(first)["quarter"][1]
        if "-" in label:
            year, month = label.split("-")
            first = date(int(year), int(month), 1)
            return first, periods(first)["month"][1]
        first = date(int(label), 1, 1)
        return first, date(first.year + 1, 1, 1)
    except ValueError:
        raise InvalidInput("period is a week (2026-W49), month (2026-12), quarter (2026-Q4) "
                           "or year (2026)", field="period") from None


def rankings(services: Services, actor: Principal, period: str, unit: str,
             limit: int = 10) -> dict[str, Any]:
    """The members living in ``unit``'s subtree ranked for a period by completed services
    (verified records they took part in, started in the period), then points earned in it,
    ties broken by member id; names masked. A past period is frozen: an undone service is
    reversed by an entry dated when it was undone, so it counts in that later period."""
    from gridsvc.privacy import mask_name
    from gridsvc.storage.models import Unit
    from gridsvc.storage.units import subtree_filter

    start, end = _period_bounds(period)
    if not 1 <= limit <= 100:
        raise InvalidInput("limit is 1..100", field="limit")
    with services.db.session() as session:
        root = session.scalar(select(Unit).where(Unit.code == unit))
        if root is None or not (actor.role is Role.ADMIN or (
                actor.role in (Role.STAFF, Role.PLANNER) and actor.covers(root.path))):
            raise NotFound(f"no unit with code {unit!r}", field="unit")
        units = select(Unit.id).where(subtree_filter(root.path))
        people: dict[int, str] = {row[0]: row[1] for row in session.execute(
            select(Member.id, Member.name).where(Member.status.in_(REPORTED),
                                                 Member.building_id.in_(units)))}
        services_done: dict[int, int] = {}
        for participants in session.scalars(select(ServiceRecord.participants).where(
                ServiceRecord.status == "verified", ServiceRecord.started_at >= _utc(start),
                ServiceRecord.started_at < _utc(end))):
            for p in participants:
                if p["member_id"] in people:
                    services_done[p["member_id"]] = services_done.get(p["member_id"], 0) + 1
        earned: dict[int, int] = {row[0]: int(row[1] or 0) for row in session.execute(
            select(PointsEntry.subject_id, func.sum(PointsEntry.delta))
            .where(PointsEntry.subject_kind == "member", PointsEntry.at >= _utc(start),
                   PointsEntry.at < _utc(end))
            .group_by(PointsEntry.subject_id))}
    ranked = sorted(people, key=lambda m: (-services_done.get(m, 0), -int(earned.get(m) or 0),
                                           m))
    return {"period": period, "unit": unit, "items": [
        {"rank": i + 1, "member_id": m, "name": mask_name(people[m]),
         "services": services_done.get(m, 0), "points": int(earned.get(m) or 0)}
        for i, m in enumerate(ranked[:limit])]}

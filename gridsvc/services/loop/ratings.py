"""Evaluation (活动评单): each party rates the service record of a need once.

The party follows from the caller's relationship, not from a field they send: the reporting
resident rates as ``resident``, staff of the need's community as ``community``, the
secretary (``unit`` token) of the work unit of the member who served (or of the
organisation that took it) as ``work_unit``. A need is rated once its record is submitted
(``done``, or closed after service). Ratings: 满意 / 基本满意 / 不满意 or 1-5 stars.

Who sees what: staff of the community see every rating with its comment; the unit secretary
sees their own rating and the weighted score; the member rated sees the weighted score only,
never the resident's rating or comment; the resident sees their own rating.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from gridsvc.access import Principal, Role
from gridsvc.domain.loop import NeedState, Party, rating_score, weighted_score
from gridsvc.services.context import Services
from gridsvc.services.errors import Conflict, Forbidden, InvalidInput, NotFound
from gridsvc.services.loop import points
from gridsvc.services.loop.common import (
    audit_in,
    body_of,
    config,
    get_need_row,
    insert_or_conflict,
    iso,
    last_taken_order,
    now,
    parties,
    text_of,
)
from gridsvc.storage.loop_models import Evaluation, Need, Order, ServiceRecord
from gridsvc.storage.models import Member


def _record_of(session: Session, need: Need) -> tuple[ServiceRecord, Order]:
    record = session.scalar(select(ServiceRecord).where(ServiceRecord.need_id == need.id)
                            .order_by(ServiceRecord.id.desc()).limit(1))
    order = session.get(Order, record.order_id) if record else None
    if record is None or order is None or need.state not in (NeedState.DONE,
                                                             NeedState.CLOSED):
        raise Conflict(f"the need is {need.state}: it is rated once its service record is "
                       "submitted", state=need.state, allowed=[])
    return record, order


def _work_org_of(session: Session, order: Order) -> int | None:
    if order.taker_kind == "work_org":
        return order.work_org_id
    member = session.get(Member, order.member_id) if order.member_id else None
    return member.work_org_id if member else None


def _party(session: Session, actor: Principal, need: Need, order: Order) -> str | None:
    rel = parties(session, actor, need, None)
    if Party.REPORTER in rel:
        return "resident"
    if Party.STAFF in rel:
        return "community"
    if actor.role is Role.UNIT and actor.work_org_id is not None and (
            _work_org_of(session, order) == actor.work_org_id):
        return "work_unit"
    return None


def rate(services: Services, actor: Principal, need_id: int, body: Any) -> dict[str, Any]:
    """Store the caller's rating of the need's service record (once per party)."""
    data = body_of(body)
    raw = data.get("rating")
    try:
        score = rating_score(raw)  # type: ignore[arg-type]  # checked inside
    except (ValueError, TypeError) as exc:
        raise InvalidInput(str(exc), field="rating") from None
    comment = text_of(data, "comment", max_length=500)
    cfg = config(services)
    with services.db.write_session() as session:
        need = get_need_row(session, need_id, lock=True)
        record, order = _record_of(session, need)
        party = _party(session, actor, need, order)
        if party is None:
            if not parties(session, actor, need, None):
                raise NotFound(f"no need with id {need_id}", field="need_id")
            raise Forbidden("only the resident served, the community and the member's work "
                            "unit rate a service")
        conflict = Conflict(f"the {party} has rated this service already",
                            state=need.state, allowed=[])
        if session.scalar(select(Evaluation.id).where(Evaluation.record_id == record.id,
                                                     Evaluation.party == party)):
            raise conflict
        row = Evaluation(record_id=record.id, need_id=need.id, party=party, rating=str(raw),
                         score=score, comment=comment, actor=actor.name[:100])
        insert_or_conflict(session, row, conflict)
        scores = {e.party: e.score for e in session.scalars(
            select(Evaluation).where(Evaluation.record_id == record.id))}
        final = set(scores) >= {p for p, w in cfg.weights.items() if w > 0}
        total = weighted_score(scores, cfg.weights, final=final)
        if final and total is not None and total >= cfg.well_threshold:
            points.award_rated_well(session, services, actor, record)
        audit_in(session, actor, "need rate", f"need:{need.id}", party=party,
                 record=record.id)
        return {"need_id": need.id, "record_id": record.id, "party": party,
                "rating": row.rating, "score": score, "weighted": total, "final": final}


def ratings(services: Services, actor: Principal, need_id: int) -> dict[str, Any]:
    """The ratings of the need's service record, as the caller may see them."""
    cfg = config(services)
    with services.db.session() as session:
        need = get_need_row(session, need_id)
        record, order = _record_of(session, need)
        rows = list(session.scalars(select(Evaluation).where(
            Evaluation.record_id == record.id).order_by(Evaluation.id)))
        scores = {e.party: e.score for e in rows}
        window = record.created_at.timestamp() + cfg.rating_days * 86400
        final = (set(scores) >= {p for p, w in cfg.weights.items() if w > 0}
                 or now().timestamp() > window)
        total = weighted_score(scores, cfg.weights, final=final)
        party = _party(session, actor, need, order)
        rel = parties(session, actor, need, last_taken_order(session, need.id))
        if party == "community":
            shown = rows
        elif party in ("resident", "work_unit"):
            shown = [e for e in rows if e.party == party]
        elif Party.TAKER in rel or _was_taker(actor, order):
            shown = []
        else:
            raise NotFound(f"no ratings of need {need_id} for you", field="need_id")
        return {"need_id": need.id, "record_id": record.id, "weighted": total,
                "final": final, "items": [
                    {"party": e.party, "rating": e.rating, "score": e.score,
                     "comment": e.comment, "at": iso(e.at)} for e in shown]}


def _was_taker(actor: Principal, order: Order) -> bool:
    from gridsvc.services.loop.common import is_taker

    return is_taker(actor, order)

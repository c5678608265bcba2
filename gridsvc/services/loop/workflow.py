"""The need's transitions (``gridsvc.domain.loop.TRANSITIONS``), each one use case in one
transaction: the state change, its order, its update row (who, when, why), its audit entry,
its notifications and its points commit or roll back together.

``act(services, actor, need_id, action, body)`` checks, in this order: the need exists for
this caller (a need the caller may not see at all is 404); the action is possible from the
need's state (else 409 /problems/conflict); the caller has the relationship the action needs
(else 403 /problems/forbidden): both problems carry ``state`` and ``allowed``, the actions
this caller may take now. A reason is required where the table says so.

Concurrency: the use case runs in ``Database.write_session`` (SQLite: the write lock from the
first statement; PostgreSQL: the need's row locked ``FOR UPDATE``), so two claims of one need
run one after the other and the second finds it claimed (409). The unique
``orders.live_need_id`` is the last guard: two live orders for one need cannot be stored.

Bodies: ``reason`` (text); ``dispatch``: ``taker`` {``kind``: member | work_org, ``id``},
optional ``respond_hours`` and ``due_on``; ``record``: ``participants`` [{``member_id``,
``hours``}] (default: the taker member with ``hours``), ``started_at``, ``ended_at``
(ISO 8601 with a zone), ``summary``, ``confirmed`` (the resident confirmed on the spot);
``close``: ``outcome`` and, for ``duplicate``, ``duplicate_of`` (a need of the same
community); ``file``: optional public ``title`` and ``summary`` (staff edit what the pool
shows).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from gridsvc.access import Principal
from gridsvc.domain.loop import (
    DROP_OUTCOMES,
    ENDS_ORDER,
    RESOLVED_OUTCOMES,
    SERVICE_OUTCOMES,
    TRANSITIONS,
    NeedState,
    OrderState,
    Outcome,
    allowed_actions,
)
from gridsvc.services import authz
from gridsvc.services.context import Services
from gridsvc.services.errors import Conflict, Forbidden, InvalidInput, NotFound
from gridsvc.services.loop import points
from gridsvc.services.loop.common import (
    NeedResource,
    audit_in,
    body_of,
    config,
    date_of,
    get_need_row,
    insert_or_conflict,
    int_of,
    live_order,
    member_communities,
    notify,
    now,
    parties,
    text_of,
    time_of,
)
from gridsvc.services.loop.needs import hidden, shape
from gridsvc.storage.loop_models import Need, NeedUpdate, Order, ServiceRecord
from gridsvc.storage.models import Member, WorkOrg


@dataclass
class Step:
    session: Session
    services: Services
    actor: Principal
    need: Need
    order: Order | None
    data: Mapping[str, Any]
    reason: str | None


def act(services: Services, actor: Principal, need_id: int, action: str,
        body: Any = None) -> dict[str, Any]:
    """Take ``action`` on the need as ``actor``; the need as the actor now sees it."""
    transition = TRANSITIONS.get(action)
    if transition is None:
        raise NotFound(f"no action {action!r}; the actions are {', '.join(TRANSITIONS)}",
                       field="action")
    data = body_of({} if body is None else body)
    with services.db.write_session() as session:
        need = get_need_row(session, need_id, lock=True)
        order = live_order(session, need.id)
        rel = parties(session, actor, need, order)
        if hidden(rel, need):
            raise NotFound(f"no need with id {need_id}", field="need_id")
        state = NeedState(need.state)
        allowed = allowed_actions(state, rel)
        if state not in transition.sources:
            raise Conflict(f"the need is {state.value}: {action} is not possible now "
                           f"(you may: {', '.join(allowed) or 'nothing'})",
                           state=state.value, allowed=allowed)
        if not authz.allowed(actor, f"need:{action}", NeedResource(session, need, order)):
            raise Forbidden(f"you may not {action} this need (you may: "
                            f"{', '.join(allowed) or 'nothing'})", state=state.value,
                            allowed=allowed)
        reason = text_of(data, "reason", required=transition.reason_required)
        step = Step(session, services, actor, need, order, data, reason)
        order_id = HANDLERS[action](step)
        need.state = transition.target.value
        session.add(NeedUpdate(need_id=need.id, action=action, from_state=state.value,
                               to_state=need.state, actor=actor.name[:100],
                               role=actor.role.value, reason=reason, order_id=order_id))
        audit_in(session, actor, f"need {action}", f"need:{need.id}", order=order_id,
                 state=need.state)
        return shape(session, actor, need, parties(session, actor, need,
                                                   live_order(session, need.id)))


# --- the handlers: each returns the id of the order it concerns -------------------------------


def _file(step: Step) -> int | None:
    for field, length in (("title", 200), ("summary", 500)):
        value = text_of(step.data, field, max_length=length)
        if value is not None:
            setattr(step.need, field, value)
    step.need.filed_at = now()
    return None


def _publish(_step: Step) -> int | None:
    return None


def _claim(step: Step) -> int | None:
    order = Order(need_id=step.need.id, live_need_id=step.need.id, taker_kind="member",
                  member_id=step.actor.member_id, origin="claim",
                  state=OrderState.ACTIVE.value, accepted_at=now())
    return _taken(step, order)


def _taken(step: Step, order: Order) -> int:
    _insert_order(step, order)
    if step.need.claimed_at is None:
        step.need.claimed_at = now()
    notify(step.session, "resident", step.need.resident_id, "need-taken", step.need.id)
    return order.id


def _dispatch(step: Step) -> int | None:
    taker = step.data.get("taker")
    if not isinstance(taker, Mapping) or taker.get("kind") not in ("member", "work_org"):
        raise InvalidInput("taker must be {kind: member | work_org, id}", field="taker")
    taker_id = int_of(taker, "id", low=1)
    if taker_id is None:
        raise InvalidInput("taker.id is required", field="taker")
    community = step.need.community_id
    if taker["kind"] == "member":
        if step.session.get(Member, taker_id) is None or community not in member_communities(
                step.session, taker_id):
            raise InvalidInput("dispatch to a member who lives in the need's community or "
                               "whose work unit reported to it", field="taker")
    else:
        org = step.session.get(WorkOrg, taker_id)
        if org is None or org.community_id != community:
            raise InvalidInput("dispatch to a work-unit organisation that reported to the "
                               "need's community", field="taker")
    cfg = config(step.services)
    hours = int_of(step.data, "respond_hours", cfg.respond_hours, low=1, high=24 * 30)
    due = date_of(step.data, "due_on")
    order = Order(need_id=step.need.id, live_need_id=step.need.id,
                  taker_kind=taker["kind"],
                  member_id=taker_id if taker["kind"] == "member" else None,
                  work_org_id=taker_id if taker["kind"] == "work_org" else None,
                  origin="dispatch", state=OrderState.OFFERED.value,
                  offered_by=step.actor.name[:100],
                  respond_by=now() + timedelta(hours=hours or cfg.respond_hours),
                  due_at=None if due is None else now().replace(
                      year=due.year, month=due.month, day=due.day))
    _insert_order(step, order)
    notify(step.session, taker["kind"], taker_id, "dispatched", step.need.id,
           order=order.id)
    return order.id


def _insert_order(step: Step, order: Order) -> None:
    """The need's live order; the database refuses a second (unique live_need_id)."""
    insert_or_conflict(step.session, order, Conflict(
        "someone else took this need at the same moment", state=step.need.state,
        allowed=[]))


def _need_order(step: Step) -> Order:
    assert step.order is not None  # the taker party implies a live order
    return step.order


def _accept(step: Step) -> int | None:
    order = _need_order(step)
    order.state, order.accepted_at = OrderState.ACTIVE.value, now()
    if step.need.claimed_at is None:
        step.need.claimed_at = now()
    notify(step.session, "resident", step.need.resident_id, "need-taken", step.need.id)
    return order.id


def _end(step: Step, action: str) -> int | None:
    """End the live order (if any) in the state the action leaves it."""
    order = step.order
    if order is None:
        return None
    order.state = ENDS_ORDER[action]
    order.live_need_id = None
    order.ended_at = now()
    order.end_reason = step.reason
    return order.id


def _decline(step: Step) -> int | None:
    return _end(step, "decline")


def _release(step: Step) -> int | None:
    return _end(step, "release")


def _revoke(step: Step) -> int | None:
    order = step.order
    if order is not None:
        kind = order.taker_kind
        notify(step.session, kind, order.member_id if kind == "member" else order.work_org_id,
               "revoked", step.need.id, order=order.id)
    return _end(step, "revoke")


def _start(step: Step) -> int | None:
    order = _need_order(step)
    order.state = OrderState.IN_SERVICE.value
    return order.id


def _record(step: Step) -> int | None:
    order = _need_order(step)
    data = step.data
    started = time_of(data, "started_at")
    ended = time_of(data, "ended_at", now())
    if ended < started:
        raise InvalidInput("ended_at is before started_at", field="ended_at")
    summary = text_of(data, "summary", required=True, max_length=1000)
    participants = _participants(step, order, data)
    record = ServiceRecord(
        need_id=step.need.id, order_id=order.id, participants=participants,
        hours=round(sum(p["hours"] for p in participants), 2), started_at=started,
        ended_at=ended, summary=summary or "", created_by=step.actor.name[:100],
        confirmed_by="resident" if data.get("confirmed") is True else None,
        confirmed_at=now() if data.get("confirmed") is True else None)
    step.session.add(record)
    order.state = OrderState.DONE.value
    notify(step.session, "resident", step.need.resident_id, "please-rate", step.need.id)
    return order.id


def _participants(step: Step, order: Order, data: Mapping[str, Any]) -> list[dict[str, Any]]:
    raw = data.get("participants")
    if raw is None:
        hours = data.get("hours")
        if order.taker_kind != "member" or hours is None:
            raise InvalidInput("give participants [{member_id, hours}] (or hours, for a "
                               "member's own service)", field="participants")
        raw = [{"member_id": order.member_id, "hours": hours}]
    if not isinstance(raw, list) or not raw or len(raw) > 100:
        raise InvalidInput("participants must be a list of 1-100 {member_id, hours}",
                           field="participants")
    seen: set[int] = set()
    out = []
    for item in raw:
        if not isinstance(item, Mapping):
            raise InvalidInput("each participant is {member_id, hours}", field="participants")
        member_id = int_of(item, "member_id", low=1)
        hours = item.get("hours")
        if (member_id is None or isinstance(hours, bool) or not isinstance(hours, int | float)
                or not 0 < hours <= 24):
            raise InvalidInput("each participant needs a member_id and hours (0-24]",
                               field="participants")
        member = step.session.get(Member, member_id)
        if member is None or member_id in seen:
            raise InvalidInput(f"participant {member_id} is not a member or is listed twice",
                               field="participants")
        if order.taker_kind == "work_org" and member.work_org_id != order.work_org_id:
            raise InvalidInput(f"member {member_id} is not of the work unit that took it",
                               field="participants")
        seen.add(member_id)
        out.append({"member_id": member_id, "hours": float(hours)})
    return out


def _close(step: Step) -> int | None:
    need = step.need
    try:
        outcome = Outcome(str(step.data.get("outcome")))
    except ValueError:
        raise InvalidInput("outcome must be one of " + ", ".join(Outcome),
                           field="outcome") from None
    served = need.state == NeedState.DONE
    allowed = SERVICE_OUTCOMES if served else DROP_OUTCOMES
    if outcome not in allowed:
        raise InvalidInput(f"a {need.state} need closes as one of "
                           f"{', '.join(sorted(allowed))}", field="outcome")
    if outcome is Outcome.DUPLICATE:
        original_id = int_of(step.data, "duplicate_of", low=1)
        original = step.session.get(Need, original_id) if original_id else None
        if original is None or original.id == need.id or (
                original.community_id != need.community_id):
            raise InvalidInput("a duplicate names its original: duplicate_of, a need of the "
                               "same community", field="duplicate_of")
        need.duplicate_of_id = original.id
    need.outcome, need.closed_at = outcome.value, now()
    order_id = _end(step, "close")
    if served and step.order is not None:
        record = step.session.scalar(select(ServiceRecord).where(
            ServiceRecord.order_id == step.order.id).order_by(ServiceRecord.id.desc()))
        if record is not None:
            record.status, record.verified_by, record.verified_at = (
                "verified", step.actor.name[:100], now())
            if record.confirmed_by is None:
                record.confirmed_by, record.confirmed_at = "community", now()
            if outcome in RESOLVED_OUTCOMES:
                points.award_service(step.session, step.services, step.actor, need,
                                     step.order, record)
    notify(step.session, "resident", need.resident_id, "need-closed", need.id,
           outcome=outcome.value)
    return order_id


def _withdraw(step: Step) -> int | None:
    step.need.outcome, step.need.closed_at = Outcome.WITHDRAWN.value, now()
    return _end(step, "withdraw")


def _reopen(step: Step) -> int | None:
    points.reverse_need(step.session, step.actor, step.need.id)
    step.need.outcome, step.need.closed_at = None, None
    step.need.duplicate_of_id = None
    return None


HANDLERS: dict[str, Callable[[Step], int | None]] = {
    "file": _file, "publish": _publish, "claim": _claim, "dispatch": _dispatch,
    "accept": _accept, "decline": _decline, "start": _start, "record": _record,
    "release": _release, "revoke": _revoke, "close": _close, "withdraw": _withdraw,
    "reopen": _reopen,
}
assert set(HANDLERS) == set(TRANSITIONS), "every transition has its handler"

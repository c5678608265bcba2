"""What every use case of the loop shares: the caller's relationship to a need, the audit
entry and notifications written in the use case's own transaction, and input readers.

Relationships (``parties``) follow ``gridsvc.domain.loop``: staff of the community the need is
routed to (admins count as staff), the taker of the need's live order, a member of the need's
community (their home, or the community their work unit reported to), the reporting resident.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from gridsvc.access import Principal, Role
from gridsvc.domain.loop import (
    DEFAULT_CONFIG,
    LIVE_ORDER_STATES,
    TRANSITIONS,
    LoopConfig,
    Party,
    Transition,
)
from gridsvc.services import authz
from gridsvc.services.context import Services
from gridsvc.services.errors import InvalidInput, NotFound, ServiceError
from gridsvc.storage.loop_models import Need, Order, OutboxMessage
from gridsvc.storage.models import AuditEntry, Member, Unit, WorkOrg, utcnow
from gridsvc.storage.units import codes_in_path

#: The levels the loop routes to (the default Qianjiang tree): street 1, community 2; the grid
#: is the micro-grid's parent, the building the micro-grid.
STREET_LEVEL, COMMUNITY_LEVEL = 1, 2


def config(_services: Services) -> LoopConfig:
    """The loop's configuration (the defaults of ``LoopConfig`` for now)."""
    return DEFAULT_CONFIG


# --- the use case's transaction: audit and notifications commit with the change ---------------


def audit_in(session: Session, actor: Principal, action: str, target: str,
             **detail: Any) -> None:
    """The audit entry of a use case, in its own transaction: it commits or rolls back with
    the change it records. Ids and codes only, never personal data."""
    session.add(AuditEntry(actor=actor.name[:100], role=actor.role.value,
                           token_id=actor.token_id, action=action[:100], target=target[:200],
                           result="ok", detail=detail))


def notify(session: Session, recipient_kind: str, recipient_id: int | None, template: str,
           need_id: int | None = None, **params: Any) -> None:
    """Queue a message in the outbox (sent by ``outbox.send_pending``); params are ids."""
    if recipient_id is None:
        return
    session.add(OutboxMessage(recipient_kind=recipient_kind, recipient_id=recipient_id,
                              template=template, need_id=need_id, params=params))


def insert_or_conflict(session: Session, row: Any, error: ServiceError) -> None:
    """Insert ``row`` in a savepoint; when the database refuses it (a unique or check
    constraint: another use case got there first), raise ``error`` with the transaction
    still usable, so the use case rolls back cleanly."""
    try:
        with session.begin_nested():
            session.add(row)
    except IntegrityError:
        raise error from None


# --- relationships -----------------------------------------------------------------------------


def live_order(session: Session, need_id: int) -> Order | None:
    return session.scalar(select(Order).where(Order.live_need_id == need_id))


def member_communities(session: Session, member_id: int) -> set[int]:
    """The communities a member serves in: where they live, and where their work unit
    reported (双报到)."""
    member = session.get(Member, member_id)
    if member is None:
        return set()
    found: set[int] = set()
    if member.building_id is not None:
        path = session.scalar(select(Unit.path).where(Unit.id == member.building_id))
        codes = codes_in_path(path) if path else []
        if len(codes) >= COMMUNITY_LEVEL:
            cid = session.scalar(select(Unit.id).where(Unit.code == codes[COMMUNITY_LEVEL - 1]))
            if cid is not None:
                found.add(cid)
    if member.work_org_id is not None:
        org = session.get(WorkOrg, member.work_org_id)
        if org is not None and org.community_id is not None:
            found.add(org.community_id)
    return found


def is_taker(actor: Principal, order: Order | None) -> bool:
    if order is None:
        return False
    if actor.role is Role.MEMBER and actor.member_id is not None:
        return order.taker_kind == "member" and order.member_id == actor.member_id
    if actor.role is Role.UNIT and actor.work_org_id is not None:
        return order.taker_kind == "work_org" and order.work_org_id == actor.work_org_id
    return False


def is_staff_of(session: Session, actor: Principal, community_id: int) -> bool:
    """Admin, or staff whose subtree holds this community."""
    if actor.role is Role.ADMIN:
        return True
    if actor.role is not Role.STAFF:
        return False
    path = session.scalar(select(Unit.path).where(Unit.id == community_id))
    return actor.covers(path)


def parties(session: Session, actor: Principal, need: Need,
            order: Order | None) -> set[Party]:
    """Every relationship the actor has to this need."""
    found: set[Party] = set()
    if is_staff_of(session, actor, need.community_id):
        found.add(Party.STAFF)
    if is_taker(actor, order):
        found.add(Party.TAKER)
    if (actor.role is Role.MEMBER and actor.member_id is not None
            and need.community_id in member_communities(session, actor.member_id)):
        found.add(Party.MEMBER)
    if (actor.role is Role.RESIDENT and actor.resident_id is not None
            and need.resident_id == actor.resident_id):
        found.add(Party.REPORTER)
    return found


@dataclass(frozen=True)
class NeedResource:
    """A need as an authorization resource: the rules compute the actor's relationship to it
    (staff of the community whose boundary holds its point, the current taker, a member of
    that community, the resident who ordered it) in the caller's transaction."""

    session: Session
    need: Need
    order: Order | None


def _transition_rule(transition: Transition) -> authz.Rule:
    def may(actor: Principal, resource: NeedResource) -> bool:
        if not isinstance(resource, NeedResource):
            return False
        return bool(transition.parties & parties(resource.session, actor, resource.need,
                                                 resource.order))
    may.__doc__ = f"need:{transition.action}: {', '.join(sorted(transition.parties))}"
    return may


# One authz rule per transition of the need's state machine: ``authz.allowed(actor,
# "need:claim", NeedResource(...))`` is the question workflow.act asks.
for _transition in TRANSITIONS.values():
    authz.rule(f"need:{_transition.action}")(_transition_rule(_transition))


def get_need_row(session: Session, need_id: int, *, lock: bool = False) -> Need:
    query = select(Need).where(Need.id == need_id)
    if lock:
        query = query.with_for_update()
    need = session.scalar(query)
    if need is None:
        raise NotFound(f"no need with id {need_id}", field="need_id")
    return need


def last_taken_order(session: Session, need_id: int) -> Order | None:
    """The order that served the need last (live, or completed at its close)."""
    return session.scalar(select(Order).where(
        Order.need_id == need_id,
        Order.state.in_([*LIVE_ORDER_STATES, "completed"]))
        .order_by(Order.id.desc()).limit(1))


# --- reading input -----------------------------------------------------------------------------


def body_of(body: Any) -> Mapping[str, Any]:
    if not isinstance(body, Mapping):
        raise InvalidInput("send a JSON object", field="body")
    return body


def text_of(body: Mapping[str, Any], field: str, *, required: bool = False,
            max_length: int = 500) -> str | None:
    value = body.get(field)
    if value is None or (isinstance(value, str) and not value.strip()):
        if required:
            raise InvalidInput(f"{field} is required", field=field)
        return None
    if not isinstance(value, str):
        raise InvalidInput(f"{field} must be text", field=field)
    value = value.strip()
    if len(value) > max_length:
        raise InvalidInput(f"{field} is longer than {max_length} characters", field=field)
    from gridsvc.validation.text_rules import text_problem

    reason = text_problem(value, max_length)
    if reason:
        raise InvalidInput(f"{field} {reason}", field=field)
    return value


def choice_of(body: Mapping[str, Any], field: str, allowed: tuple[str, ...] | list[str],
              default: str | None = None) -> str:
    value = body.get(field, default)
    if value not in allowed:
        raise InvalidInput(f"{field} must be one of {', '.join(allowed)}, got {value!r}",
                           field=field)
    return str(value)


def int_of(body: Mapping[str, Any], field: str, default: int | None = None, *,
           low: int = 0, high: int = 2**31 - 1) -> int | None:
    value = body.get(field, default)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise InvalidInput(f"{field} must be a whole number {low}..{high}", field=field)
    return value


def number_of(body: Mapping[str, Any], field: str, *, low: float = 0,
              high: float = 1e6) -> float | None:
    value = body.get(field)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float) or not (
            low <= value <= high):
        raise InvalidInput(f"{field} must be a number {low:g}..{high:g}", field=field)
    return float(value)


def date_of(body: Mapping[str, Any], field: str) -> date | None:
    value = body.get(field)
    if value is None:
        return None
    try:
        return date.fromisoformat(str(value))
    except ValueError:
        raise InvalidInput(f"{field} must be a date YYYY-MM-DD", field=field) from None


def time_of(body: Mapping[str, Any], field: str, default: datetime | None = None) -> datetime:
    value = body.get(field)
    if value is None:
        if default is None:
            raise InvalidInput(f"{field} is required (ISO 8601 with a zone)", field=field)
        return default
    try:
        when = datetime.fromisoformat(str(value).replace("Z", "+00:00"))
    except ValueError:
        raise InvalidInput(f"{field} must be an ISO 8601 time", field=field) from None
    if when.tzinfo is None:
        raise InvalidInput(f"{field} needs a time zone (e.g. +08:00 or Z)", field=field)
    return when.astimezone(UTC)


def list_of_text(body: Mapping[str, Any], field: str, allowed: tuple[str, ...] | None = None,
                 ) -> list[str]:
    value = body.get(field)
    if value is None:
        return []
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise InvalidInput(f"{field} must be a list of text", field=field)
    if len(value) > 20 or any(len(v) > 50 for v in value):
        raise InvalidInput(f"{field}: at most 20 items of 50 characters", field=field)
    if allowed is not None:
        wrong = [v for v in value if v not in allowed]
        if wrong:
            raise InvalidInput(f"{field}: {wrong[0]!r} is not one of {', '.join(allowed)}",
                               field=field)
    return list(dict.fromkeys(v.strip() for v in value if v.strip()))


def now() -> datetime:
    return utcnow()


def iso(value: datetime | date | None) -> str | None:
    return value.isoformat() if value is not None else None

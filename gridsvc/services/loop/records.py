"""Corrections of a service record's hours: never edited in place by whoever served.

The taker who recorded the service (the member, or the work unit's secretary) or staff of
the need's community request a correction (new participants and hours, and a reason); staff
of the community approve or reject it. Approval replaces the record's participants and hours
in the same transaction that marks the request approved, and the audit entry keeps the hours
before and after (ids and numbers only); a rejected request changes nothing. One open request
per record at a time.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import select

from gridsvc.access import Principal
from gridsvc.services.context import Services
from gridsvc.services.errors import Conflict, Forbidden, InvalidInput, NotFound
from gridsvc.services.loop.common import (
    audit_in,
    body_of,
    is_staff_of,
    is_taker,
    iso,
    now,
    text_of,
)
from gridsvc.storage.loop_models import Need, Order, RecordCorrection, ServiceRecord

DECISIONS = ("approve", "reject")


def _describe(c: RecordCorrection) -> dict[str, Any]:
    return {"id": c.id, "record_id": c.record_id, "participants": c.participants,
            "reason": c.reason, "status": c.status, "requested_at": iso(c.requested_at),
            "decided_at": iso(c.decided_at)}


def request_correction(services: Services, actor: Principal, record_id: int,
                       body: Any) -> dict[str, Any]:
    from gridsvc.services.loop.workflow import Step, _participants

    data = body_of(body)
    reason = text_of(data, "reason", required=True)
    with services.db.write_session() as session:
        record = session.get(ServiceRecord, record_id)
        order = session.get(Order, record.order_id) if record else None
        need = session.get(Need, record.need_id) if record else None
        if record is None or order is None or need is None:
            raise NotFound(f"no service record with id {record_id}", field="record_id")
        staff = is_staff_of(session, actor, need.community_id)
        if not staff and not is_taker(actor, order):
            raise NotFound(f"no service record with id {record_id}", field="record_id")
        if session.scalar(select(RecordCorrection.id).where(
                RecordCorrection.record_id == record.id,
                RecordCorrection.status == "requested")) is not None:
            raise Conflict("this record has a correction waiting for staff already")
        step = Step(session, services, actor, need, order, data, reason)
        participants = _participants(step, order, data)
        row = RecordCorrection(record_id=record.id, participants=participants,
                               reason=reason or "", requested_by=actor.name[:100])
        session.add(row)
        session.flush()
        audit_in(session, actor, "record correction request", f"record:{record.id}",
                 correction=row.id)
        return _describe(row)


def decide_correction(services: Services, actor: Principal, correction_id: int,
                      decision: str) -> dict[str, Any]:
    if decision not in DECISIONS:
        raise InvalidInput("decision must be approve or reject", field="decision")
    with services.db.write_session() as session:
        row = session.get(RecordCorrection, correction_id)
        record = session.get(ServiceRecord, row.record_id) if row else None
        need = session.get(Need, record.need_id) if record else None
        if row is None or record is None or need is None:
            raise NotFound(f"no correction with id {correction_id}", field="correction_id")
        if not is_staff_of(session, actor, need.community_id):
            raise Forbidden("staff of the need's community decide corrections")
        if row.status != "requested":
            raise Conflict(f"this correction is {row.status} already")
        before = record.hours
        row.status = "approved" if decision == "approve" else "rejected"
        row.decided_by, row.decided_at = actor.name[:100], now()
        if decision == "approve":
            record.participants = row.participants
            record.hours = round(sum(p["hours"] for p in row.participants), 2)
        audit_in(session, actor, f"record correction {decision}", f"record:{record.id}",
                 correction=row.id, hours_before=before, hours_after=record.hours)
        return {**_describe(row), "hours": record.hours}

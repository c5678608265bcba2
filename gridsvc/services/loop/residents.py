"""Residents who order and rate their own needs: a person with a verified phone, not a member.

Staff (or an administrator) record a resident whose phone they verified (by a call-back or
in person); the phone is the natural key. SMS verification is an adapter for later.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import select

from gridsvc.access import Principal, Role
from gridsvc.services.context import Services
from gridsvc.services.errors import Conflict, Forbidden, InvalidInput
from gridsvc.services.loop.common import audit_in, body_of, iso, now, text_of
from gridsvc.services.registration import mobile_phone
from gridsvc.storage.loop_models import Resident


def add_resident(services: Services, actor: Principal, body: Any) -> dict[str, Any]:
    """Record a resident with a verified phone; their id (for a resident token)."""
    if actor.role not in (Role.ADMIN, Role.STAFF):
        raise Forbidden("staff record residents")
    data = body_of(body)
    name = text_of(data, "name", required=True, max_length=100)
    try:
        phone = mobile_phone(data.get("phone"))
    except ValueError as exc:
        raise InvalidInput(str(exc), field="phone") from None
    with services.db.write_session() as session:
        if session.scalar(select(Resident.id).where(Resident.phone == phone)) is not None:
            raise Conflict("a resident with this phone is recorded already")
        row = Resident(name=name or "", phone=phone, verified_at=now())
        session.add(row)
        session.flush()
        audit_in(session, actor, "resident add", f"resident:{row.id}")
        return {"id": row.id, "verified_at": iso(row.verified_at)}

"""The audit log: every write and every read of personal data, who, when, what, the result.

Entries hold record ids and codes, never names, phones, addresses or points. The web layer
records each request it must (``gridsvc.web.audit``), the CLI each command that writes.
Entries older than ``Settings.audit_retention_days`` (default 180) are purged by ``purge``,
which the scheduled job ``audit-purge`` runs daily (``gridsvc.services.jobs``), never a
request.
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta
from typing import Any, cast

from sqlalchemy import CursorResult, delete, func, select

from gridsvc.access import Principal
from gridsvc.services import authz
from gridsvc.services.context import Services
from gridsvc.services.errors import InvalidInput
from gridsvc.services.registration import check_page
from gridsvc.storage.models import AuditEntry, utcnow

log = logging.getLogger(__name__)

def record(
    services: Services,
    who: Principal,
    action: str,
    *,
    target: str | None = None,
    result: str = "ok",
    status: int | None = None,
    detail: dict[str, Any] | None = None,
    remote: str | None = None,
) -> bool:
    """Store one entry in its own transaction; whether it was stored. A failure to store is
    logged (without the entry's details) and does not fail work that has already happened;
    a caller about to hand out personal data must not hand it out when this is False."""
    entry = AuditEntry(
        actor=who.name[:100], role=who.role.value, token_id=who.token_id, action=action[:100],
        target=target[:200] if target else None, result=result[:100], status=status,
        detail=detail or {}, remote=remote,
    )
    try:
        with services.db.session() as session:
            session.add(entry)
    except Exception as exc:  # the database is down or locked past the busy timeout
        log.error("audit entry for %s could not be stored: %s", action, type(exc).__name__)
        return False
    return True


def purge(services: Services, days: int | None = None) -> int:
    """Delete entries older than ``days`` (default: the configured retention); the count."""
    days = services.settings.audit_retention_days if days is None else days
    if days < 1:
        raise InvalidInput("retention must be at least one day", field="days")
    with services.db.session() as session:
        result = cast(CursorResult[Any], session.execute(  # a DELETE
            delete(AuditEntry).where(AuditEntry.at < utcnow() - timedelta(days=days))))
        return result.rowcount or 0


def query(
    services: Services,
    *,
    viewer: Principal,
    actor: str | None = None,
    action: str | None = None,
    target: str | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
    limit: int = 100,
    offset: int = 0,
) -> dict[str, Any]:
    """Entries newest first, filtered by exact actor, action prefix, exact target and time;
    only for a ``viewer`` allowed to read the audit log."""
    authz.authorize(viewer, authz.Action.READ_AUDIT, authz.CITY, what="audit log")
    check_page(limit, offset)
    where = []
    if actor:
        where.append(AuditEntry.actor == actor)
    if action:
        where.append(AuditEntry.action.startswith(action, autoescape=True))
    if target:
        where.append(AuditEntry.target == target)
    if since:
        where.append(AuditEntry.at >= since)
    if until:
        where.append(AuditEntry.at < until)
    with services.db.session() as session:
        total = session.scalar(select(func.count()).select_from(AuditEntry).where(*where))
        rows = session.scalars(select(AuditEntry).where(*where)
                               .order_by(AuditEntry.at.desc(), AuditEntry.id.desc())
                               .limit(limit).offset(offset))
        return {"total": total, "limit": limit, "offset": offset,
                "items": [_describe(row) for row in rows]}


def _describe(row: AuditEntry) -> dict[str, Any]:
    return {
        "id": row.id, "at": row.at.isoformat(), "actor": row.actor, "role": row.role,
        "token_id": row.token_id, "action": row.action, "target": row.target,
        "result": row.result, "status": row.status, "detail": row.detail, "remote": row.remote,
    }

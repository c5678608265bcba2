"""Notifications: an outbox table of messages and a pluggable sender.

Use cases queue messages in their own transaction (``common.notify``): to the taker
(``dispatched``, ``revoked``), to the resident (``need-taken``, ``please-rate``,
``need-closed``), month-end reminders (``zero-points``, ``member-zero-points`` to the unit
secretary). A message holds ids, never personal data; the sender resolves the recipient.
``send_pending`` (the ``outbox-send`` job) hands each pending message to the sender and marks
it sent. The default ``LogSender`` writes one log line per message with its id, template and
recipient id, no personal data. SMS and WeChat senders are adapters for later with the same
``send(message) -> None`` interface. ``gridsvc outbox list`` shows what would be sent.
"""

from __future__ import annotations

import logging
from typing import Any, Protocol

from sqlalchemy import func, select

from gridsvc.access import Principal, Role
from gridsvc.services.context import Services
from gridsvc.services.errors import Forbidden, InvalidInput
from gridsvc.services.loop.common import iso, now
from gridsvc.services.registration import check_page
from gridsvc.storage.loop_models import OutboxMessage

log = logging.getLogger(__name__)
STATUSES = ("pending", "sent", "failed")


class Sender(Protocol):
    def send(self, message: OutboxMessage) -> None: ...


class LogSender:
    """Writes each message to the log: id, template, recipient kind and id only."""

    def send(self, message: OutboxMessage) -> None:
        log.info("outbox %s: %s to %s:%s", message.id, message.template,
                 message.recipient_kind, message.recipient_id)


def describe(message: OutboxMessage) -> dict[str, Any]:
    return {"id": message.id, "template": message.template,
            "recipient": {"kind": message.recipient_kind, "id": message.recipient_id},
            "need_id": message.need_id, "params": message.params,
            "status": message.status, "created_at": iso(message.created_at),
            "sent_at": iso(message.sent_at)}


def list_outbox(services: Services, actor: Principal, *, status: str | None = "pending",
                limit: int = 100, offset: int = 0) -> dict[str, Any]:
    """Messages, oldest first (admin)."""
    if actor.role is not Role.ADMIN:
        raise Forbidden("the outbox is for administrators")
    check_page(limit, offset)
    if status is not None and status not in STATUSES:
        raise InvalidInput(f"status must be one of {', '.join(STATUSES)}", field="status")
    where = [OutboxMessage.recipient_kind != "none"]
    if status:
        where.append(OutboxMessage.status == status)
    with services.db.session() as session:
        total = session.scalar(select(func.count()).select_from(OutboxMessage).where(*where))
        rows = session.scalars(select(OutboxMessage).where(*where).order_by(OutboxMessage.id)
                               .limit(limit).offset(offset))
        return {"items": [describe(m) for m in rows], "total": total or 0, "limit": limit,
                "offset": offset}


def send_pending(services: Services, _actor: Principal, sender: Sender | None = None,
                 batch: int = 500) -> int:
    """Send up to ``batch`` pending messages; how many were sent. A message whose sender
    fails is marked failed (its id logged) and the others go on."""
    sender = sender or LogSender()
    sent = 0
    with services.db.write_session() as session:
        for message in session.scalars(select(OutboxMessage).where(
                OutboxMessage.status == "pending").order_by(OutboxMessage.id).limit(batch)):
            try:
                sender.send(message)
            except Exception as exc:
                log.error("outbox %s could not be sent: %s", message.id, type(exc).__name__)
                message.status = "failed"
                continue
            message.status, message.sent_at = "sent", now()
            sent += 1
    return sent

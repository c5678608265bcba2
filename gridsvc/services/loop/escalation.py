"""Escalation (社区直接派单): the ``loop-escalate`` job (hourly) puts on the community's dispatch
list every dispatched order not answered by its respond-by time, and every open need not
claimed within ``LoopConfig.claim_days`` of its urgency (counted from when it last became
open). Escalating records an ``escalate`` update on the need (who: the job's actor, why) and
queues an ``escalated`` message to the community (recipient ``community``, its unit id), so
staff dispatch it directly; the need's state does not change. Each order and each opening is
escalated once.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import func, select

from gridsvc.access import Principal
from gridsvc.domain.loop import NeedState, OrderState
from gridsvc.services.context import Services
from gridsvc.services.loop.common import audit_in, config, notify, now
from gridsvc.storage.loop_models import Need, NeedUpdate, Order


def escalate(services: Services, actor: Principal, at: datetime | None = None
             ) -> dict[str, Any]:
    """Escalate what is overdue at ``at`` (now); how many orders and needs."""
    at = at or now()
    cfg = config(services)
    orders = needs = 0
    with services.db.write_session() as session:
        for order in session.scalars(select(Order).where(
                Order.state == OrderState.OFFERED.value, Order.escalated_at.is_(None),
                Order.respond_by < at)):
            need = session.get(Need, order.need_id)
            if need is None:
                continue
            order.escalated_at = at
            _record(session, actor, need, "the dispatched taker did not answer in time",
                    order.id)
            orders += 1
        last_change = (select(NeedUpdate.need_id, func.max(NeedUpdate.id).label("last"))
                       .where(NeedUpdate.action != "escalate")
                       .group_by(NeedUpdate.need_id).subquery())
        rows = session.execute(
            select(Need, NeedUpdate.at, NeedUpdate.id)
            .join(last_change, last_change.c.need_id == Need.id)
            .join(NeedUpdate, NeedUpdate.id == last_change.c.last)
            .where(Need.state == NeedState.OPEN.value)).all()
        for need, opened_at, opened_id in rows:
            days = cfg.claim_days.get(need.urgency, cfg.claim_days["normal"])
            if opened_at > at - timedelta(days=days):
                continue
            done = session.scalar(select(NeedUpdate.id).where(
                NeedUpdate.need_id == need.id, NeedUpdate.action == "escalate",
                NeedUpdate.id > opened_id).limit(1))
            if done is None:
                _record(session, actor, need, f"not claimed within {days} days", None)
                needs += 1
        if orders or needs:
            audit_in(session, actor, "loop escalate", "needs", orders=orders, needs=needs)
    return {"orders": orders, "needs": needs}


def _record(session: Any, actor: Principal, need: Need, reason: str,
            order_id: int | None) -> None:
    session.add(NeedUpdate(need_id=need.id, action="escalate", from_state=need.state,
                           to_state=need.state, actor=actor.name[:100], role=actor.role.value,
                           reason=reason, order_id=order_id))
    notify(session, "community", need.community_id, "escalated", need.id, order=order_id)

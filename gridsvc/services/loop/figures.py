"""Figures of the loop for a unit's subtree (a community, a street, the city): needs by kind
and state, the claimed rate (filed needs that were ever taken), the resolved rate (filed
needs closed resolved or partly resolved; closed is not resolved), median hours from filing
to claim and to close as resolved, service hours, the service rate of reported members
(members living in the subtree with at least one service / members who reported there:
Nantong's 96.15%) and the mean satisfaction of rated services. Counts only: no person.

Readable by tokens that read units of the subtree (admin, planner, staff), as coverage is.
"""

from __future__ import annotations

import statistics
from collections import Counter
from typing import Any

from sqlalchemy import select

from gridsvc.access import Permission, Principal
from gridsvc.domain.loop import DEFAULT_CONFIG, RESOLVED_OUTCOMES, weighted_score
from gridsvc.services.context import Services
from gridsvc.services.errors import NotFound
from gridsvc.storage.loop_models import Evaluation, Need, ServiceRecord
from gridsvc.storage.models import Member, Unit
from gridsvc.storage.units import subtree_filter

REPORTED = ("assigned", "needs-confirmation")


def _median_hours(values: list[float]) -> float | None:
    return round(statistics.median(values) / 3600, 1) if values else None


def figures(services: Services, actor: Principal, unit: str | None = None) -> dict[str, Any]:
    """The loop's figures for the subtree of ``unit`` (None: the whole city)."""
    with services.db.session() as session:
        if unit is None:
            if not (actor.may(Permission.READ_UNITS) and actor.city_wide):
                raise NotFound("give unit=<code> of your subtree", field="unit")
            path = None
        else:
            row = session.scalar(select(Unit).where(Unit.code == unit))
            if row is None or not actor.may(Permission.READ_UNITS) or not actor.covers(
                    row.path):
                raise NotFound(f"no unit with code {unit!r}", field="unit")
            path = row.path
        units = select(Unit.id) if path is None else select(Unit.id).where(
            subtree_filter(path))
        rows = session.execute(select(
            Need.id, Need.kind, Need.state, Need.outcome, Need.filed_at, Need.claimed_at,
            Need.closed_at).where(Need.community_id.in_(units))).all()
        records = session.execute(select(ServiceRecord.id, ServiceRecord.hours,
                                         ServiceRecord.participants)
                                  .where(ServiceRecord.need_id.in_([r.id for r in rows]))
                                  ).all() if rows else []
        scores: dict[int, dict[str, float]] = {}
        if records:
            for e in session.execute(select(Evaluation.record_id, Evaluation.party,
                                            Evaluation.score).where(
                    Evaluation.record_id.in_([r.id for r in records]))):
                scores.setdefault(e.record_id, {})[e.party] = e.score
        reported = set(session.scalars(select(Member.id).where(
            Member.status.in_(REPORTED), Member.building_id.in_(units))))
    filed = [r for r in rows if r.filed_at is not None]
    claimed = [r for r in filed if r.claimed_at is not None]
    resolved = [r for r in filed if r.outcome in RESOLVED_OUTCOMES]
    served = {p["member_id"] for r in records for p in r.participants}
    sats = [s for s in (weighted_score(v, DEFAULT_CONFIG.weights, final=True)
                        for v in scores.values()) if s is not None]
    return {
        "unit": unit,
        "needs": len(rows),
        "by_kind": dict(Counter(r.kind for r in rows)),
        "by_state": dict(Counter(r.state for r in rows)),
        "closed": sum(1 for r in rows if r.state == "closed"),
        "resolved": len(resolved),
        "claimed_rate": round(len(claimed) / len(filed), 4) if filed else None,
        "resolved_rate": round(len(resolved) / len(filed), 4) if filed else None,
        "median_hours_to_claim": _median_hours(
            [(r.claimed_at - r.filed_at).total_seconds() for r in claimed]),
        "median_hours_to_resolve": _median_hours(
            [(r.closed_at - r.filed_at).total_seconds() for r in resolved if r.closed_at]),
        "service_hours": round(sum(r.hours for r in records), 1),
        "services": len(records),
        "reported_members": len(reported),
        "service_rate": round(len(served & reported) / len(reported), 4) if reported else None,
        "satisfaction": round(sum(sats) / len(sats), 4) if sats else None,
    }

"""A work unit's service report (一表一清单 to the 报到单位) and its talk list (约谈).

For each member of the work-unit organisation: services and hours in the year, and their
yearly satisfaction (the mean weighted score of the services they took part in that year
whose rating is final: every party rated, or ``rating_days`` passed). Below
``LoopConfig.talk_threshold`` (70%) the member is on the talk list of the unit's secretary.
The report carries hours, counts and scores, never who was served or where. Read by the
unit's secretary (``unit`` token of that organisation), staff of the community it reported
to, and admins.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import select

from gridsvc.access import Principal, Role
from gridsvc.domain.loop import weighted_score
from gridsvc.services.context import Services
from gridsvc.services.errors import NotFound
from gridsvc.services.loop.common import config, is_staff_of, now
from gridsvc.storage.loop_models import Evaluation, ServiceRecord
from gridsvc.storage.models import Member, WorkOrg


def service_report(services: Services, actor: Principal, org_id: int,
                   year: int | None = None) -> dict[str, Any]:
    cfg = config(services)
    year = year or now().year
    start, end = datetime(year, 1, 1, tzinfo=UTC), datetime(year + 1, 1, 1, tzinfo=UTC)
    with services.db.session() as session:
        org = session.get(WorkOrg, org_id)
        allowed = org is not None and (
            actor.role is Role.ADMIN
            or (actor.role is Role.UNIT and actor.work_org_id == org_id)
            or (org.community_id is not None and is_staff_of(session, actor,
                                                             org.community_id)))
        if not allowed or org is None:
            raise NotFound(f"no work-unit organisation with id {org_id} for you",
                           field="org_id")
        members = {m.id: m.name for m in session.scalars(
            select(Member).where(Member.work_org_id == org_id).order_by(Member.id))}
        records = list(session.scalars(select(ServiceRecord).where(
            ServiceRecord.started_at >= start, ServiceRecord.started_at < end)))
        mine = [r for r in records if any(p["member_id"] in members for p in r.participants)]
        scores: dict[int, dict[str, float]] = {}
        if mine:
            for e in session.execute(select(Evaluation.record_id, Evaluation.party,
                                            Evaluation.score).where(
                    Evaluation.record_id.in_([r.id for r in mine]))):
                scores.setdefault(e.record_id, {})[e.party] = e.score
    parties = {p for p, w in cfg.weights.items() if w > 0}
    rows = []
    for member_id, name in members.items():
        taken = [r for r in mine if any(p["member_id"] == member_id for p in r.participants)]
        hours = sum(p["hours"] for r in taken for p in r.participants
                    if p["member_id"] == member_id)
        finals = []
        for r in taken:
            got = scores.get(r.id, {})
            final = set(got) >= parties or now() > r.created_at + timedelta(
                days=cfg.rating_days)
            score = weighted_score(got, cfg.weights, final=final) if final else None
            if score is not None:
                finals.append(score)
        satisfaction = round(sum(finals) / len(finals), 4) if finals else None
        rows.append({"member_id": member_id, "name": name, "services": len(taken),
                     "hours": round(hours, 1), "satisfaction": satisfaction,
                     "talk": satisfaction is not None and satisfaction < cfg.talk_threshold})
    return {"organisation": {"id": org_id, "name": org.name}, "year": year,
            "talk_threshold": cfg.talk_threshold, "members": rows,
            "talk_list": [r["member_id"] for r in rows if r["talk"]]}

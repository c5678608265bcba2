"""The demo's service loop: made-up residents and needs run through the real use cases
(``gridsvc.services.loop``), deterministic from the seed, with proportions like the cities'
(Wuzhou: about 15% public, 35% family, 50% personal wishes; most claimed, some dispatched, a
few declined, revoked, reopened or unresolved), so the ledger and points show variation.

Every step goes through the same transactions, checks and audit as the API. Timestamps are
those of the run (the demo does not backdate a year; figures by period show this month).
"""

from __future__ import annotations

from collections import defaultdict
from typing import Any

import numpy as np
from sqlalchemy import select

from gridsvc.access import Principal, Role
from gridsvc.domain.loop import QIANJIANG_POST_KINDS
from gridsvc.services.context import Services
from gridsvc.services.errors import ServiceError
from gridsvc.services.loop import needs, ratings, workflow
from gridsvc.services.loop.common import member_communities
from gridsvc.storage.loop_models import Need, Resident
from gridsvc.storage.models import Member, WorkOrg

STAFF = Principal(Role.ADMIN, "demo staff")
TITLES = {"public": ["楼道灯不亮", "单元门禁损坏", "小区健身器材维修", "加装电梯意见征集"],
          "family": ["独居老人助浴", "残疾人家庭坡道", "家电维修", "代购药品"],
          "wish": ["想请人陪聊天", "孩子想要课外书", "学习使用智能手机", "理发上门"]}


def seed_needs(svc: Services, seed: int = 1, count: int = 300) -> dict[str, int]:
    """Order ``count`` needs and carry each through the loop; counts by final state."""
    rng = np.random.default_rng([seed, 12])
    with svc.db.session() as session:
        if session.scalar(select(Need.id).limit(1)) is not None:
            return {"already loaded (needs exist)": 0}
        homes = session.execute(select(Member.id, Member.lon, Member.lat).where(
            Member.status == "assigned", Member.lon.is_not(None)).order_by(Member.id)).all()
        by_community: dict[int, list[int]] = defaultdict(list)
        points: dict[int, tuple[float, float]] = {}
        for member_id, lon, lat in homes:
            if lon is None or lat is None:
                continue
            points[member_id] = (lon, lat)
            for c in member_communities(session, member_id):
                by_community[c].append(member_id)
        orgs: dict[int, list[int]] = defaultdict(list)
        for org_id, community_id in session.execute(select(WorkOrg.id, WorkOrg.community_id)):
            if community_id is not None:
                orgs[community_id].append(org_id)
        residents = []
        for i in range(max(1, count // 2)):
            row = Resident(name=f"居民{i:04d}", phone=f"1370{seed % 10}{i:06d}")
            session.add(row)
            residents.append(row)
        session.flush()
        resident_ids = [r.id for r in residents]
    if not points:
        return {}
    member_ids = sorted(points)
    outcome: dict[str, int] = defaultdict(int)
    for _ in range(count):
        reporter = int(rng.choice(resident_ids))
        neighbour = int(rng.choice(member_ids))
        kind = str(rng.choice(["public", "family", "wish"], p=[0.15, 0.35, 0.5]))
        lon, lat = points[neighbour]
        who = Principal(Role.RESIDENT, f"demo resident {reporter}", resident_id=reporter)
        try:
            state = _run_one(svc, rng, who, kind, lon, lat, by_community, orgs)
        except ServiceError:
            state = "skipped"
        outcome[state] += 1
    return dict(outcome)


def _run_one(svc: Services, rng: np.random.Generator, resident: Principal, kind: str,
             lon: float, lat: float, by_community: dict[int, list[int]],
             orgs: dict[int, list[int]]) -> str:
    need = needs.submit_need(svc, resident, {
        "kind": kind, "category": str(rng.choice(QIANJIANG_POST_KINDS)),
        "title": str(rng.choice(TITLES[kind])), "summary": "演示数据",
        "urgency": str(rng.choice(["low", "normal", "high", "urgent"],
                                  p=[0.2, 0.6, 0.15, 0.05])),
        "point": {"lon": lon, "lat": lat, "coordsys": "wgs84"}, "consent": True,
        "channel": str(rng.choice(["visit", "hotline", "online", "wall"]))})
    nid = need["id"]
    community = _community_id(svc, nid)
    r = rng.random()
    if r < 0.03:
        return "submitted"
    act = lambda who, action, **body: workflow.act(svc, who, nid, action, body)  # noqa: E731
    act(STAFF, "file")
    if r < 0.05:
        return "filed"
    act(STAFF, "publish")
    members = by_community.get(community, [])
    if r < 0.09 or not members:
        return "open"
    taker = int(rng.choice(members))
    m = Principal(Role.MEMBER, f"demo member {taker}", member_id=taker)
    path = rng.random()
    if path < 0.15:  # dispatched to a member; some decline, then someone claims
        act(STAFF, "dispatch", taker={"kind": "member", "id": taker})
        if rng.random() < 0.25:
            act(m, "decline", reason="时间冲突")
            taker = int(rng.choice(members))
            m = Principal(Role.MEMBER, f"demo member {taker}", member_id=taker)
            act(m, "claim")
        else:
            act(m, "accept")
    elif path < 0.2 and orgs.get(community):  # a work unit's project
        org = int(rng.choice(orgs[community]))
        act(STAFF, "dispatch", taker={"kind": "work_org", "id": org})
        unit = Principal(Role.UNIT, f"demo unit {org}", work_org_id=org)
        act(unit, "decline", reason="不符合单位职能")
        act(m, "claim")
    else:
        act(m, "claim")
    if rng.random() < 0.03:
        act(STAFF, "revoke", reason="挑肥拣瘦")
        return "revoked"
    act(m, "start")
    act(m, "record", hours=float(rng.choice([1, 1.5, 2, 3])), summary="已完成服务",
        started_at="2026-01-10T09:00:00+08:00", confirmed=bool(rng.random() < 0.6))
    result = str(rng.choice(["resolved", "partly_resolved", "unresolved"],
                            p=[0.85, 0.1, 0.05]))
    act(STAFF, "close", outcome=result)
    good = result == "resolved"
    for who in (resident, STAFF):
        if rng.random() < 0.85:
            rating = "满意" if good and rng.random() < 0.9 else str(
                rng.choice(["基本满意", "不满意"]))
            ratings.rate(svc, who, nid, {"rating": rating})
    if rng.random() < 0.03:
        act(STAFF, "reopen", reason="问题复发")
        return "reopened"
    return result


def _community_id(svc: Services, need_id: int) -> int:
    with svc.db.session() as session:
        need = session.get(Need, need_id)
        assert need is not None
        return need.community_id


def summary(counts: dict[str, Any]) -> str:
    return ", ".join(f"{k} {v}" for k, v in sorted(counts.items()))

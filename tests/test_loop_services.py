"""The service loop's use cases on both databases: the whole loop, each refused transition,
each privacy rule, points and their reversal, the month-end reminder, and simultaneous
claims of one need (exactly one taker)."""

from __future__ import annotations

import threading
from datetime import UTC, date, datetime

import pytest
from loop_support import loop_city
from sqlalchemy import func, select

from gridsvc.access import Principal, Role
from gridsvc.domain.loop import TRANSITIONS, NeedState
from gridsvc.services.errors import Conflict, Forbidden, InvalidInput, NotFound
from gridsvc.services.loop import needs, outbox, points, posts, ratings, workflow
from gridsvc.storage.loop_models import (
    NeedUpdate,
    Order,
    OutboxMessage,
    PointsEntry,
    Resident,
)
from gridsvc.storage.models import AuditEntry

pytestmark = pytest.mark.storage

ADMIN = Principal(Role.ADMIN, "cli:test")
PUBLIC = Principal(Role.PUBLIC, "public")


@pytest.fixture
def town(settings, tmp_path):
    town = loop_city(settings, tmp_path)
    with town.svc.db.session() as s:
        people = [Resident(name="王阿姨", phone="13811112222"),
                  Resident(name="李大爷", phone="13811113333")]
        s.add_all(people)
        s.flush()
        town.residents = [p.id for p in people]
    yield town
    town.svc.close()


def staff(town, community=None):
    unit = community or town.community
    return Principal(Role.STAFF, f"staff {unit.code}", scope_code=unit.code,
                     scope_path=unit.path)


def member(member_id):
    return Principal(Role.MEMBER, f"member {member_id}", member_id=member_id)


def resident(town, n=0):
    return Principal(Role.RESIDENT, f"resident {n}", resident_id=town.residents[n])


def unit_secretary(org_id):
    return Principal(Role.UNIT, f"unit {org_id}", work_org_id=org_id)


def order_need(town, who=None, **extra):
    lon, lat = town.point
    body = {"kind": "family", "category": "邻里守望帮扶", "title": "陪老人看病",
            "summary": "每周陪同就医一次", "detail": "腿脚不便，住三楼", "urgency": "high",
            "point": {"lon": lon, "lat": lat, "coordsys": "wgs84"},
            "flags": ["living_alone_elderly"], "consent": True, **extra}
    return needs.submit_need(town.svc, who or resident(town), body)


def to_open(town, need_id):
    workflow.act(town.svc, staff(town), need_id, "file")
    return workflow.act(town.svc, staff(town), need_id, "publish")


def test_the_whole_loop(db, town):
    svc = town.svc
    need = order_need(town)
    assert need["state"] == "submitted"
    assert need["ledger_no"] == f"{town.community.code}-{date.today().year}-0001"
    assert need["community"]["code"] == town.community.code
    need_id = need["id"]
    filed = workflow.act(svc, staff(town), need_id, "file")
    assert filed["routing"]["building"]["code"] == town.building.code
    assert filed["routing"]["boundary_revision"] >= 1
    # dispatched to the work unit, which declines (拒单); then a member claims
    workflow.act(svc, staff(town), need_id, "dispatch",
                 {"taker": {"kind": "work_org", "id": town.work_org}})
    declined = workflow.act(svc, unit_secretary(town.work_org), need_id, "decline",
                            {"reason": "不符合单位职能"})
    assert declined["state"] == "open"
    m = member(town.members[0])
    claimed = workflow.act(svc, m, need_id, "claim")
    assert claimed["state"] == "claimed"
    assert claimed["reporter"]["phone"] == "13811112222"  # the taker reaches the resident
    workflow.act(svc, m, need_id, "start")
    done = workflow.act(svc, m, need_id, "record", {
        "started_at": "2026-12-01T09:00:00+08:00", "ended_at": "2026-12-01T11:00:00+08:00",
        "summary": "陪同就医", "participants": [{"member_id": town.members[0], "hours": 2},
                                             {"member_id": town.members[1], "hours": 2}]})
    assert done["state"] == "done"
    closed = workflow.act(svc, staff(town), need_id, "close", {"outcome": "resolved"})
    assert closed["state"] == "closed" and closed["outcome"] == "resolved"
    # three parties rate: the member's work unit is not involved here (member 0 has none),
    # so the resident and the community rate; a unit of another org may not
    assert ratings.rate(svc, resident(town), need_id, {"rating": "满意", "comment": "很好"})[
        "party"] == "resident"
    assert ratings.rate(svc, staff(town), need_id, {"rating": 5})["party"] == "community"
    with pytest.raises(Conflict):
        ratings.rate(svc, resident(town), need_id, {"rating": "满意"})
    with pytest.raises((Forbidden, NotFound)):
        ratings.rate(svc, unit_secretary(town.work_org), need_id, {"rating": "满意"})
    balance = points.balance(svc, m, "member", town.members[0])
    assert balance["year"]["points"] == 1
    # a reopen reverses the points with new entries, never an update
    workflow.act(svc, staff(town), need_id, "reopen", {"reason": "居民反映问题复发"})
    assert points.balance(svc, m, "member", town.members[0])["year"]["points"] == 0
    with db.session() as s:
        entries = s.scalars(select(PointsEntry).order_by(PointsEntry.id)).all()
        assert [e.delta for e in entries] == [1, 1, -1, -1]
        assert all(e.reverses_id for e in entries[2:])
        actions = s.scalars(select(NeedUpdate.action).where(NeedUpdate.need_id == need_id)
                            .order_by(NeedUpdate.id)).all()
        assert actions == ["submit", "file", "dispatch", "decline", "claim", "start",
                           "record", "close", "reopen"]
        audited = s.scalar(select(func.count()).select_from(AuditEntry).where(
            AuditEntry.target == f"need:{need_id}"))
        assert audited >= len(actions)
        templates = set(s.scalars(select(OutboxMessage.template)))
        assert {"dispatched", "need-taken", "please-rate", "need-closed"} <= templates


def test_work_unit_takes_and_rates(db, town):
    svc = town.svc
    need_id = to_open(town, order_need(town)["id"])["id"]
    workflow.act(svc, staff(town), need_id, "dispatch",
                 {"taker": {"kind": "work_org", "id": town.work_org}})
    unit = unit_secretary(town.work_org)
    workflow.act(svc, unit, need_id, "accept")
    workflow.act(svc, unit, need_id, "start")
    with pytest.raises(InvalidInput):  # only the unit's own members serve its project
        workflow.act(svc, unit, need_id, "record", {
            "started_at": "2026-12-01T09:00:00Z", "summary": "x",
            "participants": [{"member_id": town.members[0], "hours": 1}]})
    workflow.act(svc, unit, need_id, "record", {
        "started_at": "2026-12-01T09:00:00Z", "ended_at": "2026-12-01T10:00:00Z",
        "summary": "安装扶手", "participants": [{"member_id": town.unit_member, "hours": 1}]})
    workflow.act(svc, staff(town), need_id, "close", {"outcome": "resolved"})
    for who, rating in ((resident(town), "满意"), (staff(town), "满意"), (unit, "满意")):
        result = ratings.rate(svc, who, need_id, {"rating": rating})
    assert result["final"] and result["weighted"] == 1.0
    # the resident's comment is seen by the community, not by the member rated
    assert ratings.ratings(svc, staff(town), need_id)["items"][0]["party"] == "resident"
    mine = ratings.ratings(svc, unit, need_id)
    assert [i["party"] for i in mine["items"]] == ["work_unit"]
    # the unit's report: hours and scores of its own members, never who was served
    from gridsvc.services.loop.reports import service_report

    report = service_report(svc, unit, town.work_org, 2026)
    row = next(r for r in report["members"] if r["member_id"] == town.unit_member)
    assert row == {"member_id": town.unit_member, "name": "党员3", "services": 1,
                   "hours": 1.0, "satisfaction": 1.0, "talk": False}
    assert report["talk_list"] == [] and "王阿姨" not in str(report)
    with pytest.raises(NotFound):
        service_report(svc, unit_secretary(town.work_org + 1), town.work_org)
    # a second service rated 不满意 by all three: yearly 50% puts the member on the talk list
    second = to_open(town, order_need(town)["id"])["id"]
    m = member(town.unit_member)
    workflow.act(svc, m, second, "claim")
    workflow.act(svc, m, second, "start")
    workflow.act(svc, m, second, "record", {"hours": 2, "summary": "x",
                                            "started_at": "2026-12-02T09:00:00Z"})
    workflow.act(svc, staff(town), second, "close", {"outcome": "unresolved"})
    for who in (resident(town), staff(town), unit):
        ratings.rate(svc, who, second, {"rating": "不满意"})
    report = service_report(svc, unit, town.work_org, 2026)
    row = next(r for r in report["members"] if r["member_id"] == town.unit_member)
    assert row["services"] == 2 and row["satisfaction"] == 0.5 and row["talk"]
    assert report["talk_list"] == [town.unit_member]
    # rankings: completed services first, then points, ties by id; names masked
    ranked = points.rankings(svc, staff(town), "2026-12", town.community.code)["items"]
    assert ranked[0]["member_id"] == town.unit_member and ranked[0]["services"] == 2
    assert ranked[0]["name"] == "党**" and [r["rank"] for r in ranked] == [1, 2, 3, 4]
    assert [r["member_id"] for r in ranked[1:]] == sorted(town.members)
    with pytest.raises(InvalidInput):
        points.rankings(svc, staff(town), "2026-Q5", town.community.code)
    # points: the member +1 service +1 rated well, the organisation +1
    assert points.balance(svc, ADMIN, "member", town.unit_member)["year"]["points"] == 2
    assert points.balance(svc, unit, "work_org", town.work_org)["year"]["points"] == 1


def test_refused_transitions_name_state_and_allowed(db, town):
    svc = town.svc
    need_id = order_need(town)["id"]
    m = member(town.members[0])
    # submitted: not in the pool, so a member does not see it at all
    with pytest.raises(NotFound):
        workflow.act(svc, m, need_id, "claim")
    with pytest.raises(Conflict) as exc:
        workflow.act(svc, staff(town), need_id, "publish")
    assert exc.value.extra["state"] == "submitted"
    assert "file" in exc.value.extra["allowed"]
    to_open(town, need_id)
    # the resident may not claim or close; staff of another community do not see it filed?
    with pytest.raises(Forbidden) as exc:
        workflow.act(svc, resident(town), need_id, "claim")
    assert exc.value.extra == {"state": "open", "allowed": ["withdraw"]}
    with pytest.raises(Forbidden):  # a member of another community
        workflow.act(svc, member(town.outsider), need_id, "claim")
    with pytest.raises(Forbidden):  # staff of another community
        workflow.act(svc, staff(town, town.other_community), need_id, "close",
                     {"outcome": "no_longer_needed"})
    workflow.act(svc, m, need_id, "claim")
    # not the taker: another member may not start, release or record
    other = member(town.members[1])
    for action in ("start", "release"):
        with pytest.raises((Forbidden, Conflict)):
            workflow.act(svc, other, need_id, action, {"reason": "x"})
    with pytest.raises(Conflict):  # a second claim
        workflow.act(svc, other, need_id, "claim")
    with pytest.raises(InvalidInput):  # revoke needs a reason
        workflow.act(svc, staff(town), need_id, "revoke")
    revoked = workflow.act(svc, staff(town), need_id, "revoke", {"reason": "挑肥拣瘦"})
    assert revoked["state"] == "open"
    with pytest.raises(Conflict) as exc:  # the former taker is no longer the taker
        workflow.act(svc, m, need_id, "start")
    assert exc.value.extra["allowed"] == ["claim"]
    with pytest.raises(InvalidInput):  # a duplicate names its original
        workflow.act(svc, staff(town), need_id, "close", {"outcome": "duplicate"})
    with pytest.raises(InvalidInput):  # resolved needs a service
        workflow.act(svc, staff(town), need_id, "close", {"outcome": "resolved"})
    withdrawn = workflow.act(svc, resident(town), need_id, "withdraw")
    assert withdrawn["state"] == "closed" and withdrawn["outcome"] == "withdrawn"
    with pytest.raises(Forbidden):  # reopening is for staff
        workflow.act(svc, resident(town), need_id, "reopen", {"reason": "x"})
    with pytest.raises(NotFound):
        workflow.act(svc, m, need_id, "fly")


def test_every_transition_is_refused_somewhere(db, town):
    """Each action, from a state it does not start from, is a 409 naming the state."""
    svc = town.svc
    need_id = order_need(town)["id"]  # submitted
    for action, t in TRANSITIONS.items():
        if NeedState.SUBMITTED in t.sources:
            continue
        with pytest.raises((Conflict, Forbidden)) as exc:
            workflow.act(svc, ADMIN, need_id, action, {"reason": "r"})
        assert exc.value.extra["state"] == "submitted"


def test_privacy_of_a_need(db, town):
    svc = town.svc
    need_id = order_need(town)["id"]
    # unpublished: the public and members do not learn it exists
    for who in (PUBLIC, member(town.members[0])):
        with pytest.raises(NotFound):
            needs.get_need(svc, who, need_id)
    assert needs.list_needs(svc, PUBLIC)["total"] == 0
    to_open(town, need_id)
    private = ("detail", "address", "point", "reporter", "flags", "routing")
    for who in (PUBLIC, member(town.members[0]), member(town.outsider)):
        seen = needs.get_need(svc, who, need_id)
        assert seen["grid"] and seen["state"] == "open"
        assert not set(private) & set(seen)
        assert "王阿姨" not in str(seen) and "13811112222" not in str(seen)
    pool = needs.list_needs(svc, PUBLIC, state="open")
    assert pool["total"] == 1 and "reporter" not in str(pool)
    # flags: community staff only (not the reporter view, not the taker)
    assert needs.get_need(svc, staff(town), need_id)["flags"] == ["living_alone_elderly"]
    with pytest.raises(NotFound):  # staff of another community: not theirs, not in scope
        needs.list_needs(svc, staff(town, town.other_community),
                         community="nope")
    other_staff = needs.get_need(svc, staff(town, town.other_community), need_id)
    assert "flags" not in other_staff and "reporter" not in other_staff
    own = needs.get_need(svc, resident(town), need_id)
    assert own["detail"] and "flags" not in own
    someone_else = needs.get_need(svc, resident(town, 1), need_id)  # the pool view only
    assert "detail" not in someone_else and "reporter" not in someone_else
    # the taker sees address and phone after taking it; the read is audited
    m = member(town.members[0])
    workflow.act(svc, m, need_id, "claim")
    seen = needs.get_need(svc, m, need_id)
    assert seen["reporter"]["phone"] == "13811112222" and "flags" not in seen
    with db.session() as s:
        reads = s.scalar(select(func.count()).select_from(AuditEntry).where(
            AuditEntry.action == "need read-contact", AuditEntry.actor == m.name))
    assert reads >= 2  # the claim's answer and the read
    # a dispatched (not yet accepted) taker does not see it
    need2 = to_open(town, order_need(town)["id"])["id"]
    workflow.act(svc, staff(town), need2, "dispatch",
                 {"taker": {"kind": "member", "id": town.members[1]}})
    offered = needs.get_need(svc, member(town.members[1]), need2)
    assert "reporter" not in offered and offered["allowed"] == ["accept", "decline"]


def test_simultaneous_claims_have_one_taker(db, town):
    svc = town.svc
    need_id = to_open(town, order_need(town)["id"])["id"]
    results: list[str] = []
    barrier = threading.Barrier(len(town.members))

    def claim(member_id):
        barrier.wait()
        try:
            workflow.act(svc, member(member_id), need_id, "claim")
            results.append("ok")
        except Conflict:
            results.append("conflict")

    threads = [threading.Thread(target=claim, args=(m,)) for m in town.members]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(results) == ["conflict"] * (len(town.members) - 1) + ["ok"]
    with db.session() as s:
        assert s.scalar(select(func.count()).select_from(Order)) == 1


def test_posts_at_most_two_per_member(db, town):
    svc = town.svc
    made = [posts.open_post(svc, staff(town), {"community": town.community.code,
                                               "kind": kind, "capacity": 1})
            for kind in ("政策法规宣传", "邻里矛盾调解", "生活便民服务")]
    m = member(town.members[0])
    claims = [posts.claim_post(svc, m, p["id"]) for p in made[:2]]
    assert [c["slot"] for c in claims] == [1, 2]
    with pytest.raises(Conflict):
        posts.claim_post(svc, m, made[2]["id"])
    with pytest.raises(Conflict):  # capacity 1, taken
        posts.claim_post(svc, member(town.members[1]), made[0]["id"])
    with pytest.raises(Forbidden):
        posts.claim_post(svc, member(town.outsider), made[2]["id"])
    posts.release_claim(svc, m, claims[0]["id"])
    assert posts.claim_post(svc, m, made[2]["id"])["slot"] == 1
    assert [p["taken"] for p in posts.list_posts(svc, PUBLIC, town.community.code)] == [
        0, 1, 1]


def test_month_end_reminds_zero_point_members_once(db, town):
    svc = town.svc
    with db.session() as s:
        s.add(PointsEntry(subject_kind="member", subject_id=town.members[0], delta=1,
                          reason="manual", actor="t", at=datetime(2026, 11, 15, tzinfo=UTC)))
    first = points.remind_zero_points(svc, ADMIN, date(2026, 12, 1))
    assert first["period"] == "2026-11" and not first["already"]
    with db.session() as s:
        reminded = set(s.scalars(select(OutboxMessage.recipient_id).where(
            OutboxMessage.template == "zero-points", OutboxMessage.recipient_kind == "member")))
        told_unit = s.scalars(select(OutboxMessage.params).where(
            OutboxMessage.template == "member-zero-points")).all()
    assert town.members[0] not in reminded and town.members[1] in reminded
    assert [p["member"] for p in told_unit] == [town.unit_member]
    assert points.remind_zero_points(svc, ADMIN, date(2026, 12, 2))["already"]
    assert outbox.send_pending(svc, ADMIN) >= len(reminded)
    assert outbox.list_outbox(svc, ADMIN)["total"] == 0


def test_overdue_orders_and_unclaimed_needs_are_escalated_once(db, town):
    from datetime import timedelta

    from gridsvc.services.loop.escalation import escalate

    svc = town.svc
    dispatched = to_open(town, order_need(town)["id"])["id"]
    workflow.act(svc, staff(town), dispatched, "dispatch",
                 {"taker": {"kind": "member", "id": town.members[0]}, "respond_hours": 2})
    unclaimed = to_open(town, order_need(town, urgency="urgent")["id"])["id"]
    assert escalate(svc, ADMIN) == {"orders": 0, "needs": 0}  # nothing overdue yet
    later = datetime.now(UTC) + timedelta(days=2)
    assert escalate(svc, ADMIN, later) == {"orders": 1, "needs": 1}
    assert escalate(svc, ADMIN, later) == {"orders": 0, "needs": 0}  # once
    with db.session() as s:
        sent = s.scalars(select(OutboxMessage.need_id).where(
            OutboxMessage.template == "escalated", OutboxMessage.recipient_kind == "community",
            OutboxMessage.recipient_id == town.community.id)).all()
    assert sorted(sent) == sorted([dispatched, unclaimed])
    # the staff see the escalation in the need's updates; its state is unchanged
    seen = needs.get_need(svc, staff(town), unclaimed)
    assert seen["state"] == "open" and seen["updates"][-1]["action"] == "escalate"


def test_hours_are_corrected_only_through_staff_approval(db, town):
    from gridsvc.services.loop import records
    from gridsvc.storage.loop_models import ServiceRecord

    svc = town.svc
    need_id = to_open(town, order_need(town)["id"])["id"]
    m = member(town.members[0])
    workflow.act(svc, m, need_id, "claim")
    workflow.act(svc, m, need_id, "start")
    workflow.act(svc, m, need_id, "record", {"hours": 1, "summary": "x",
                                             "started_at": "2026-12-02T09:00:00Z"})
    with db.session() as s:
        record_id = s.scalar(select(ServiceRecord.id))
    with pytest.raises(NotFound):  # not the taker, not staff
        records.request_correction(svc, member(town.members[1]), record_id,
                                   {"hours": 3, "reason": "x"})
    asked = records.request_correction(svc, m, record_id, {"hours": 3, "reason": "漏记"})
    with pytest.raises(Conflict):  # one open request at a time
        records.request_correction(svc, m, record_id, {"hours": 4, "reason": "again"})
    with db.session() as s:
        assert s.get(ServiceRecord, record_id).hours == 1  # unchanged until approved
    with pytest.raises(Forbidden):  # the taker does not approve their own hours
        records.decide_correction(svc, m, asked["id"], "approve")
    assert records.decide_correction(svc, staff(town), asked["id"], "approve")["hours"] == 3
    with pytest.raises(Conflict):
        records.decide_correction(svc, staff(town), asked["id"], "reject")
    second = records.request_correction(svc, m, record_id, {"hours": 9, "reason": "x"})
    records.decide_correction(svc, staff(town), second["id"], "reject")
    with db.session() as s:
        assert s.get(ServiceRecord, record_id).hours == 3

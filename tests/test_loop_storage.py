"""What the database itself enforces for the service loop, on SpatiaLite and PostGIS: one live
order per need, at most N live post claims per member, one rating per party, one reversal
per points entry, one ledger number per community, year and sequence."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from loop_support import loop_city
from sqlalchemy import update
from sqlalchemy.exc import IntegrityError

from gridsvc.storage.loop_models import (
    Evaluation,
    Need,
    Order,
    PointsEntry,
    PostClaim,
    ServicePost,
    ServiceRecord,
)

pytestmark = pytest.mark.storage
NOW = datetime(2026, 12, 3, 9, 0, tzinfo=UTC)


@pytest.fixture
def town(settings, tmp_path):
    town = loop_city(settings, tmp_path)
    yield town
    town.svc.close()


def _need(s, town, seq=1, **extra):
    values = {"state": "open", **extra}
    need = Need(ledger_no=f"{town.community.code}-2026-{seq:04d}", year=2026, seq=seq,
                kind="family", category="邻里守望帮扶", title="修门",
                community_id=town.community.id,
                boundary_revision=1, reporter_kind="resident", **values)
    s.add(need)
    s.flush()
    return need


def _order(need, member_id, state="active"):
    return Order(need_id=need.id, live_need_id=need.id, taker_kind="member",
                 member_id=member_id, origin="claim", state=state)


def test_one_live_order_per_need(db, town):
    with db.session() as s:
        need = _need(s, town)
        s.add(_order(need, town.members[0]))
        need_id = need.id
    with pytest.raises(IntegrityError), db.session() as s:
        s.add(Order(need_id=need_id, live_need_id=need_id, taker_kind="member",
                    member_id=town.members[1], origin="claim", state="active"))
    # once the first order has ended (live_need_id NULL), the need takes a new one
    with db.session() as s:
        s.execute(update(Order).values(live_need_id=None, state="released"))
        s.add(Order(need_id=need_id, live_need_id=need_id, taker_kind="member",
                    member_id=town.members[1], origin="claim", state="active"))
    with db.session() as s:
        s.add(Order(need_id=need_id, taker_kind="member", member_id=town.members[2],
                    origin="claim", state="declined"))  # ended orders never collide


def test_order_names_its_taker(db, town):
    with pytest.raises(IntegrityError), db.session() as s:
        need = _need(s, town)
        s.add(Order(need_id=need.id, live_need_id=need.id, taker_kind="member",
                    origin="claim", state="active"))


def test_member_holds_at_most_n_live_post_claims(db, town):
    member = town.members[0]
    with db.session() as s:
        posts = [ServicePost(community_id=town.community.id, kind="政策法规宣传",
                             title=f"岗位{i}", capacity=5) for i in range(4)]
        s.add_all(posts)
        s.flush()
        post_ids = [p.id for p in posts]
        s.add_all([PostClaim(post_id=post_ids[i], member_id=member, slot=i + 1, slot_limit=2)
                   for i in range(2)])
    # a third live claim: slot 3 is past the limit, slot 1 or 2 is taken
    for slot in (3, 1, 2):
        with pytest.raises(IntegrityError), db.session() as s:
            s.add(PostClaim(post_id=post_ids[2], member_id=member, slot=slot, slot_limit=2))
    # a live claim must hold a slot, a released one must not
    with pytest.raises(IntegrityError), db.session() as s:
        s.add(PostClaim(post_id=post_ids[2], member_id=member, slot=None, slot_limit=2))
    with pytest.raises(IntegrityError), db.session() as s:
        s.add(PostClaim(post_id=post_ids[2], member_id=member, slot=1, slot_limit=2,
                        released_at=NOW))
    # releasing one frees its slot
    with db.session() as s:
        s.execute(update(PostClaim).where(PostClaim.slot == 1)
                  .values(slot=None, released_at=NOW))
        s.add(PostClaim(post_id=post_ids[2], member_id=member, slot=1, slot_limit=2))
    # another member has slots of their own
    with db.session() as s:
        s.add(PostClaim(post_id=post_ids[3], member_id=town.members[1], slot=1, slot_limit=2))


def test_post_capacity_and_need_persons_are_positive(db, town):
    with pytest.raises(IntegrityError), db.session() as s:
        s.add(ServicePost(community_id=town.community.id, kind="k", title="t", capacity=0))
    with pytest.raises(IntegrityError), db.session() as s:
        _need(s, town, persons_needed=0)
    with pytest.raises(IntegrityError), db.session() as s:
        _need(s, town, state="fixed")  # not a state


def test_ledger_number_is_unique_per_community_and_year(db, town):
    with db.session() as s:
        _need(s, town, seq=1)
    with pytest.raises(IntegrityError), db.session() as s:
        need = Need(ledger_no="other-number", year=2026, seq=1, kind="family",
                    category="c", title="t", community_id=town.community.id,
                    boundary_revision=1, reporter_kind="resident", state="open")
        s.add(need)


def test_one_rating_per_party_and_one_reversal_per_entry(db, town):
    with db.session() as s:
        need = _need(s, town)
        order = _order(need, town.members[0], state="done")
        s.add(order)
        s.flush()
        record = ServiceRecord(need_id=need.id, order_id=order.id, participants=[
            {"member_id": town.members[0], "hours": 2}], hours=2, started_at=NOW,
            ended_at=NOW, summary="修好了", created_by="test")
        s.add(record)
        s.flush()
        s.add(Evaluation(record_id=record.id, need_id=need.id, party="resident",
                         rating="满意", score=1.0, actor="r"))
        entry = PointsEntry(subject_kind="member", subject_id=town.members[0], delta=1,
                            reason="service", need_id=need.id, record_id=record.id, actor="t")
        s.add(entry)
        s.flush()
        s.add(PointsEntry(subject_kind="member", subject_id=town.members[0], delta=-1,
                          reason="undo-service", need_id=need.id, record_id=record.id,
                          reverses_id=entry.id, actor="t"))
        ids = need.id, record.id, entry.id
    need_id, record_id, entry_id = ids
    with pytest.raises(IntegrityError), db.session() as s:
        s.add(Evaluation(record_id=record_id, need_id=need_id, party="resident",
                         rating="不满意", score=0.0, actor="r"))
    with pytest.raises(IntegrityError), db.session() as s:
        s.add(PointsEntry(subject_kind="member", subject_id=town.members[0], delta=-1,
                          reason="undo-again", need_id=need_id, reverses_id=entry_id,
                          actor="t"))
    with pytest.raises(IntegrityError), db.session() as s:  # the same award twice
        s.add(PointsEntry(subject_kind="member", subject_id=town.members[0], delta=1,
                          reason="service", need_id=need_id, record_id=record_id, actor="t"))

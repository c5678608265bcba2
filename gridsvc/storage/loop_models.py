"""Tables of the service loop (双服务): residents, service posts and claims, needs and their
updates, orders, service records, evaluations, the points ledger and the outbox.

Imported by ``gridsvc.storage.models`` so one ``Base.metadata`` holds every table.

What the database itself enforces, on SQLite and PostgreSQL alike (unique constraints on
nullable columns: NULLs never collide on either):

- **one live order per need**: ``orders.live_need_id`` is the need's id while the order is live
  (offered, active, in service, done) and NULL once it ended; it is unique, so of two members
  claiming at the same instant one insert fails and that claim answers 409;
- **at most N live post claims per member**: a live claim holds ``slot`` 1..``slot_limit``
  (the configured N when it was made; CHECK), NULL once released; (member, slot) is unique, so
  a member can never hold more than N at once, whatever races;
- **one rating per party and record**, **one reversal per points entry** (unique), points and
  updates are only ever inserted (the services never update or delete them).
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

from sqlalchemy import (
    JSON,
    Boolean,
    CheckConstraint,
    Date,
    Float,
    ForeignKey,
    Integer,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column

from gridsvc.domain.loop import NeedState, OrderState
from gridsvc.storage.models import Base, UtcDateTime, utcnow


def _in(column: str, values: Any) -> str:
    return f"{column} IN ({', '.join(repr(str(v)) for v in values)})"


class Resident(Base):
    """A resident who orders and rates their own needs: a person with a verified phone, not
    (necessarily) a member. Personal data: name and phone."""

    __tablename__ = "residents"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(100))
    phone: Mapped[str] = mapped_column(String(20), unique=True)
    verified_at: Mapped[datetime | None] = mapped_column(UtcDateTime())
    created_at: Mapped[datetime] = mapped_column(UtcDateTime(), default=utcnow)


class ServicePost(Base):
    """A service post (服务岗位) a community opens: a configured kind, with a capacity."""

    __tablename__ = "service_posts"

    id: Mapped[int] = mapped_column(primary_key=True)
    community_id: Mapped[int] = mapped_column(ForeignKey("units.id"), index=True)
    kind: Mapped[str] = mapped_column(String(50))
    title: Mapped[str] = mapped_column(String(200))
    capacity: Mapped[int] = mapped_column(Integer)
    starts_on: Mapped[date | None] = mapped_column(Date)
    ends_on: Mapped[date | None] = mapped_column(Date)
    status: Mapped[str] = mapped_column(String(20), default="open")
    created_at: Mapped[datetime] = mapped_column(UtcDateTime(), default=utcnow)

    __table_args__ = (CheckConstraint("capacity >= 1", name="ck_service_posts_capacity"),)


class PostClaim(Base):
    """A member's claim of a post for a period. ``slot`` (1..``slot_limit``, NULL once
    released) is unique per member: the database's own limit of N live claims."""

    __tablename__ = "post_claims"

    id: Mapped[int] = mapped_column(primary_key=True)
    post_id: Mapped[int] = mapped_column(ForeignKey("service_posts.id"), index=True)
    member_id: Mapped[int] = mapped_column(ForeignKey("members.id"), index=True)
    slot: Mapped[int | None] = mapped_column(Integer)
    slot_limit: Mapped[int] = mapped_column(Integer)
    period_start: Mapped[date | None] = mapped_column(Date)
    period_end: Mapped[date | None] = mapped_column(Date)
    claimed_at: Mapped[datetime] = mapped_column(UtcDateTime(), default=utcnow)
    released_at: Mapped[datetime | None] = mapped_column(UtcDateTime())

    __table_args__ = (
        UniqueConstraint("member_id", "slot", name="uq_post_claims_member_slot"),
        CheckConstraint("slot_limit BETWEEN 1 AND 10", name="ck_post_claims_slot_limit"),
        CheckConstraint("slot IS NULL OR (slot >= 1 AND slot <= slot_limit)",
                        name="ck_post_claims_slot"),
        CheckConstraint("(slot IS NULL) = (released_at IS NOT NULL)",
                        name="ck_post_claims_live"),
    )


class Need(Base):
    """A need in a community's ledger (需求清单).

    Public: kind, category, grid, state. Private: ``detail``, the address and points, the
    reporter's name and phone, ``flags`` (restricted beneficiary flags). Routing keeps the
    units the point fell in *and* the boundary revision it was routed under: a later redraw
    does not move a filed need (staff re-route it).
    """

    __tablename__ = "needs"

    id: Mapped[int] = mapped_column(primary_key=True)
    ledger_no: Mapped[str] = mapped_column(String(100), unique=True)
    year: Mapped[int] = mapped_column(Integer)
    seq: Mapped[int] = mapped_column(Integer)
    kind: Mapped[str] = mapped_column(String(20))
    category: Mapped[str] = mapped_column(String(50))
    title: Mapped[str] = mapped_column(String(200))
    summary: Mapped[str | None] = mapped_column(String(500))  # public
    detail: Mapped[str | None] = mapped_column(Text)  # private
    urgency: Mapped[str] = mapped_column(String(20), default="normal")
    due_on: Mapped[date | None] = mapped_column(Date)
    persons_needed: Mapped[int] = mapped_column(Integer, default=1)
    est_hours: Mapped[float | None] = mapped_column(Float)
    skills: Mapped[list[str]] = mapped_column(JSON, default=list)
    # location: the address as given, the point as given (with coordsys), the geocoded point
    # and the point the reporter confirmed (wgs84)
    address: Mapped[str | None] = mapped_column(String(300))
    input_point: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    geocoded_lon: Mapped[float | None]
    geocoded_lat: Mapped[float | None]
    lon: Mapped[float | None]  # the confirmed point, the one routed
    lat: Mapped[float | None]
    # routing
    building_id: Mapped[int | None] = mapped_column(ForeignKey("units.id"), index=True)
    grid_id: Mapped[int | None] = mapped_column(ForeignKey("units.id"), index=True)
    community_id: Mapped[int] = mapped_column(ForeignKey("units.id"), index=True)
    street_id: Mapped[int | None] = mapped_column(ForeignKey("units.id"), index=True)
    household_id: Mapped[int | None] = mapped_column(ForeignKey("units.id"), index=True)
    boundary_revision: Mapped[int] = mapped_column(Integer)
    route: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)  # how it was routed
    # reporter
    reporter_kind: Mapped[str] = mapped_column(String(20))
    resident_id: Mapped[int | None] = mapped_column(ForeignKey("residents.id"), index=True)
    reporter_name: Mapped[str | None] = mapped_column(String(100))
    reporter_phone: Mapped[str | None] = mapped_column(String(20))
    proxy: Mapped[str | None] = mapped_column(String(100))  # the proxy's account name
    channel: Mapped[str] = mapped_column(String(20), default="online")
    consent: Mapped[bool] = mapped_column(Boolean, default=False)
    flags: Mapped[list[str]] = mapped_column(JSON, default=list)
    # state
    state: Mapped[str] = mapped_column(String(20), index=True)
    outcome: Mapped[str | None] = mapped_column(String(30))
    duplicate_of_id: Mapped[int | None] = mapped_column(ForeignKey("needs.id"))
    created_at: Mapped[datetime] = mapped_column(UtcDateTime(), default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UtcDateTime(), default=utcnow,
                                                 onupdate=utcnow)
    filed_at: Mapped[datetime | None] = mapped_column(UtcDateTime())
    claimed_at: Mapped[datetime | None] = mapped_column(UtcDateTime())  # first taken
    closed_at: Mapped[datetime | None] = mapped_column(UtcDateTime())
    version: Mapped[int] = mapped_column(Integer, nullable=False)

    __mapper_args__ = {"version_id_col": version}  # noqa: RUF012
    __table_args__ = (
        UniqueConstraint("community_id", "year", "seq", name="uq_needs_ledger_seq"),
        CheckConstraint(_in("state", NeedState), name="ck_needs_state"),
        CheckConstraint("persons_needed >= 1", name="ck_needs_persons"),
    )


class NeedUpdate(Base):
    """Every transition of a need: who, when, why, from and to (append-only)."""

    __tablename__ = "need_updates"

    id: Mapped[int] = mapped_column(primary_key=True)
    need_id: Mapped[int] = mapped_column(ForeignKey("needs.id"), index=True)
    action: Mapped[str] = mapped_column(String(30))
    from_state: Mapped[str | None] = mapped_column(String(20))
    to_state: Mapped[str] = mapped_column(String(20))
    actor: Mapped[str] = mapped_column(String(100))
    role: Mapped[str] = mapped_column(String(20))
    reason: Mapped[str | None] = mapped_column(String(500))
    order_id: Mapped[int | None] = mapped_column(Integer)
    at: Mapped[datetime] = mapped_column(UtcDateTime(), default=utcnow)


class Order(Base):
    """One attempt to serve a need (派单 / 认领): the taker, its origin and how it ended."""

    __tablename__ = "orders"

    id: Mapped[int] = mapped_column(primary_key=True)
    need_id: Mapped[int] = mapped_column(ForeignKey("needs.id"), index=True)
    # the need's id while the order is live, else NULL: unique, so one live order per need
    live_need_id: Mapped[int | None] = mapped_column(ForeignKey("needs.id"), unique=True)
    taker_kind: Mapped[str] = mapped_column(String(20))
    member_id: Mapped[int | None] = mapped_column(ForeignKey("members.id"), index=True)
    work_org_id: Mapped[int | None] = mapped_column(ForeignKey("work_orgs.id"), index=True)
    origin: Mapped[str] = mapped_column(String(20))
    state: Mapped[str] = mapped_column(String(20))
    offered_by: Mapped[str | None] = mapped_column(String(100))
    created_at: Mapped[datetime] = mapped_column(UtcDateTime(), default=utcnow)
    respond_by: Mapped[datetime | None] = mapped_column(UtcDateTime())
    accepted_at: Mapped[datetime | None] = mapped_column(UtcDateTime())
    due_at: Mapped[datetime | None] = mapped_column(UtcDateTime())
    ended_at: Mapped[datetime | None] = mapped_column(UtcDateTime())
    end_reason: Mapped[str | None] = mapped_column(String(500))
    escalated_at: Mapped[datetime | None] = mapped_column(UtcDateTime())

    __table_args__ = (
        CheckConstraint(_in("state", OrderState), name="ck_orders_state"),
        CheckConstraint("(taker_kind = 'member' AND member_id IS NOT NULL) OR "
                        "(taker_kind = 'work_org' AND work_org_id IS NOT NULL)",
                        name="ck_orders_taker"),
    )


class ServiceRecord(Base):
    """The record of a service (一表一清单): participants with hours, start, end, what was done.
    Hours are never edited in place: a correction is a ``RecordCorrection`` staff approve."""

    __tablename__ = "service_records"

    id: Mapped[int] = mapped_column(primary_key=True)
    need_id: Mapped[int] = mapped_column(ForeignKey("needs.id"), index=True)
    order_id: Mapped[int] = mapped_column(ForeignKey("orders.id"), index=True)
    # [{"member_id": 3, "hours": 1.5}, ...]
    participants: Mapped[list[dict[str, Any]]] = mapped_column(JSON)
    hours: Mapped[float] = mapped_column(Float)
    started_at: Mapped[datetime] = mapped_column(UtcDateTime())
    ended_at: Mapped[datetime] = mapped_column(UtcDateTime())
    summary: Mapped[str] = mapped_column(String(1000))
    status: Mapped[str] = mapped_column(String(20), default="submitted")
    confirmed_by: Mapped[str | None] = mapped_column(String(20))  # resident / community
    confirmed_at: Mapped[datetime | None] = mapped_column(UtcDateTime())
    verified_by: Mapped[str | None] = mapped_column(String(100))
    verified_at: Mapped[datetime | None] = mapped_column(UtcDateTime())
    example_week: Mapped[str | None] = mapped_column(String(10))  # "2026-W49"
    created_by: Mapped[str] = mapped_column(String(100))
    created_at: Mapped[datetime] = mapped_column(UtcDateTime(), default=utcnow)

    __table_args__ = (CheckConstraint("hours >= 0", name="ck_service_records_hours"),)


class RecordCorrection(Base):
    """A request to correct a record's hours, approved or rejected by staff."""

    __tablename__ = "record_corrections"

    id: Mapped[int] = mapped_column(primary_key=True)
    record_id: Mapped[int] = mapped_column(ForeignKey("service_records.id"), index=True)
    participants: Mapped[list[dict[str, Any]]] = mapped_column(JSON)
    reason: Mapped[str] = mapped_column(String(500))
    status: Mapped[str] = mapped_column(String(20), default="requested")
    requested_by: Mapped[str] = mapped_column(String(100))
    requested_at: Mapped[datetime] = mapped_column(UtcDateTime(), default=utcnow)
    decided_by: Mapped[str | None] = mapped_column(String(100))
    decided_at: Mapped[datetime | None] = mapped_column(UtcDateTime())


class Evaluation(Base):
    """One party's rating of a service record (活动评单); the resident's rating and comment are
    seen by the community, not by the member rated."""

    __tablename__ = "evaluations"

    id: Mapped[int] = mapped_column(primary_key=True)
    record_id: Mapped[int] = mapped_column(ForeignKey("service_records.id"), index=True)
    need_id: Mapped[int] = mapped_column(ForeignKey("needs.id"), index=True)
    party: Mapped[str] = mapped_column(String(20))
    rating: Mapped[str] = mapped_column(String(20))
    score: Mapped[float] = mapped_column(Float)
    comment: Mapped[str | None] = mapped_column(String(500))
    actor: Mapped[str] = mapped_column(String(100))
    at: Mapped[datetime] = mapped_column(UtcDateTime(), default=utcnow)

    __table_args__ = (UniqueConstraint("record_id", "party", name="uq_evaluations_party"),)


class PointsEntry(Base):
    """One movement in the points ledger (积分): append-only; a balance is a sum, a mistake or
    an undone service is a reversing entry (``reverses_id``, at most one per entry)."""

    __tablename__ = "points_ledger"

    id: Mapped[int] = mapped_column(primary_key=True)
    subject_kind: Mapped[str] = mapped_column(String(20))  # member / work_org
    subject_id: Mapped[int] = mapped_column(Integer)
    delta: Mapped[int] = mapped_column(Integer)
    reason: Mapped[str] = mapped_column(String(30))
    need_id: Mapped[int | None] = mapped_column(ForeignKey("needs.id"), index=True)
    record_id: Mapped[int | None] = mapped_column(ForeignKey("service_records.id"))
    reverses_id: Mapped[int | None] = mapped_column(ForeignKey("points_ledger.id"),
                                                    unique=True)
    actor: Mapped[str] = mapped_column(String(100))
    at: Mapped[datetime] = mapped_column(UtcDateTime(), default=utcnow, index=True)

    __table_args__ = (
        UniqueConstraint("subject_kind", "subject_id", "reason", "record_id",
                         name="uq_points_award"),
    )


class OutboxMessage(Base):
    """A notification waiting to be sent (to the taker, the resident, a unit secretary). The
    params are ids and codes, never personal data; a sender resolves recipients."""

    __tablename__ = "outbox"

    id: Mapped[int] = mapped_column(primary_key=True)
    recipient_kind: Mapped[str] = mapped_column(String(20))  # member / resident / work_org
    recipient_id: Mapped[int] = mapped_column(Integer)
    template: Mapped[str] = mapped_column(String(50))
    params: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    need_id: Mapped[int | None] = mapped_column(ForeignKey("needs.id"), index=True)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime(), default=utcnow)
    sent_at: Mapped[datetime | None] = mapped_column(UtcDateTime())
    status: Mapped[str] = mapped_column(String(20), default="pending", index=True)

"""ORM models (SQLAlchemy 2 typed mappings with GeoAlchemy2 geometry columns).

Geometries are stored in EPSG:4326 (WGS84; CGCS2000 EPSG:4490 is accepted as the same datum).
Polygon levels store MULTIPOLYGON, the household level stores POINT, in one generic column.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, ClassVar

from geoalchemy2 import Geometry
from sqlalchemy import JSON, DateTime, ForeignKey, Integer, String, Table, TypeDecorator
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship

SRID = 4326


def utcnow() -> datetime:
    return datetime.now(UTC)


class UtcDateTime(TypeDecorator[datetime]):
    """A timestamp that always reads back timezone-aware in UTC (SQLite keeps no zone)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is not None and value.tzinfo is not None:
            value = value.astimezone(UTC)
        return value

    def process_result_value(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is not None and value.tzinfo is None:
            value = value.replace(tzinfo=UTC)
        return value


class Base(DeclarativeBase):
    if TYPE_CHECKING:  # every model here maps one Table (SQLAlchemy types it as a FromClause)
        __table__: ClassVar[Table]


class Unit(Base):
    """A node of the organisation tree: street, community, grid, building or household."""

    __tablename__ = "units"

    id: Mapped[int] = mapped_column(primary_key=True)
    code: Mapped[str] = mapped_column(String(64), unique=True)
    name: Mapped[str] = mapped_column(String(200))
    level: Mapped[int] = mapped_column(Integer, index=True)
    parent_id: Mapped[int | None] = mapped_column(
        ForeignKey("units.id"), index=True
    )
    # Ids of the ancestors and the unit itself, "/1/5/23/": a subtree is a prefix match.
    path: Mapped[str] = mapped_column(String(400), index=True)
    geom: Mapped[Any] = mapped_column(
        Geometry(geometry_type="GEOMETRY", srid=SRID, spatial_index=True), nullable=False
    )
    service_area: Mapped[Any | None] = mapped_column(
        Geometry(geometry_type="MULTIPOLYGON", srid=SRID, spatial_index=False), nullable=True
    )
    leader_name: Mapped[str | None] = mapped_column(String(100))
    leader_phone: Mapped[str | None] = mapped_column(String(40))
    households: Mapped[int | None] = mapped_column(Integer)
    address: Mapped[str | None] = mapped_column(String(300))
    properties: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime(), default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(
        UtcDateTime(), default=utcnow, onupdate=utcnow
    )
    version: Mapped[int] = mapped_column(Integer, nullable=False)

    parent: Mapped[Unit | None] = relationship(remote_side=[id], lazy="raise_on_sql")

    __mapper_args__ = {"version_id_col": version}  # noqa: RUF012

    def __repr__(self) -> str:
        return f"<Unit {self.code} L{self.level} {self.name}>"


class Revision(Base):
    """Named counters that change whenever a dataset changes (e.g. "boundaries").

    Worker processes compare the stored value with the one their in-memory index was built
    from, and rebuild when it moved.
    """

    __tablename__ = "revisions"

    name: Mapped[str] = mapped_column(String(50), primary_key=True)
    value: Mapped[int] = mapped_column(Integer, default=0)
    updated_at: Mapped[datetime] = mapped_column(
        UtcDateTime(), default=utcnow, onupdate=utcnow
    )


class GazetteerAddress(Base):
    """A standard address with its point: derived from a building's address, or imported."""

    __tablename__ = "gazetteer"

    id: Mapped[int] = mapped_column(primary_key=True)
    address: Mapped[str] = mapped_column(String(300))
    district: Mapped[str | None] = mapped_column(String(100))
    lon: Mapped[float]  # wgs84
    lat: Mapped[float]
    unit_code: Mapped[str | None] = mapped_column(String(64), index=True)
    source: Mapped[str] = mapped_column(String(100), index=True)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime(), default=utcnow)


class WorkOrg(Base):
    """A work-unit Party organisation (单位党组织), reporting to the community of its office."""

    __tablename__ = "work_orgs"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(200), unique=True)
    office_address: Mapped[str | None] = mapped_column(String(300))
    lon: Mapped[float | None]  # wgs84 point used for the assignment
    lat: Mapped[float | None]
    contact_name: Mapped[str | None] = mapped_column(String(100))
    contact_phone: Mapped[str | None] = mapped_column(String(40))
    community_id: Mapped[int | None] = mapped_column(ForeignKey("units.id"), index=True)
    status: Mapped[str] = mapped_column(String(30))
    reason: Mapped[str | None] = mapped_column(String(300))
    match: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime(), default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(
        UtcDateTime(), default=utcnow, onupdate=utcnow
    )


class Member(Base):
    """An in-service Party member reporting where they live (在职党员到居住地报到).

    Personal data: name, phone, home address and home point. ``phone`` is the natural key
    that makes roster re-imports update instead of duplicate.
    """

    __tablename__ = "members"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(100))
    phone: Mapped[str] = mapped_column(String(20), unique=True)
    party_org: Mapped[str | None] = mapped_column(String(200))
    work_unit: Mapped[str | None] = mapped_column(String(200))
    work_org_id: Mapped[int | None] = mapped_column(ForeignKey("work_orgs.id"), index=True)
    home_address: Mapped[str | None] = mapped_column(String(300))
    lon: Mapped[float | None]  # wgs84 home point used for the assignment
    lat: Mapped[float | None]
    input_point: Mapped[dict[str, Any] | None] = mapped_column(JSON)  # as given, with coordsys
    skills: Mapped[list[str]] = mapped_column(JSON, default=list)
    intentions: Mapped[list[str]] = mapped_column(JSON, default=list)
    roles: Mapped[list[str]] = mapped_column(JSON, default=list)
    status: Mapped[str] = mapped_column(String(30), index=True)
    reason: Mapped[str | None] = mapped_column(String(300))
    building_id: Mapped[int | None] = mapped_column(ForeignKey("units.id"), index=True)
    household_id: Mapped[int | None] = mapped_column(ForeignKey("units.id"), index=True)
    match: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime(), default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(
        UtcDateTime(), default=utcnow, onupdate=utcnow
    )
    version: Mapped[int] = mapped_column(Integer, nullable=False)

    __mapper_args__ = {"version_id_col": version}  # noqa: RUF012


class RosterImport(Base):
    """One uploaded roster (members or work-unit organisations) and its outcome counts."""

    __tablename__ = "roster_imports"

    id: Mapped[int] = mapped_column(primary_key=True)
    kind: Mapped[str] = mapped_column(String(20))
    filename: Mapped[str] = mapped_column(String(300))
    # The API token that uploaded it (None: the command line); its rows are theirs to read.
    token_id: Mapped[int | None] = mapped_column(Integer)
    counts: Mapped[dict[str, int]] = mapped_column(JSON, default=dict)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime(), default=utcnow)


class RosterRow(Base):
    """Every row of a roster import with its outcome; rejected rows live only here, so staff
    can list and fix them (nothing is lost)."""

    __tablename__ = "roster_rows"

    id: Mapped[int] = mapped_column(primary_key=True)
    import_id: Mapped[int] = mapped_column(ForeignKey("roster_imports.id"), index=True)
    row: Mapped[int] = mapped_column(Integer)
    status: Mapped[str] = mapped_column(String(30), index=True)
    data: Mapped[dict[str, Any]] = mapped_column(JSON)
    problems: Mapped[list[dict[str, Any]]] = mapped_column(JSON, default=list)
    member_id: Mapped[int | None] = mapped_column(ForeignKey("members.id"), index=True)
    work_org_id: Mapped[int | None] = mapped_column(ForeignKey("work_orgs.id"), index=True)


class RegistrationRequest(Base):
    """One public self-registration (gridsvc.services.members.register_member), kept so that
    the answer never depends on whether the phone is a member's: ``registered`` made the
    member ``member_id``; ``duplicate`` found the phone held by member ``member_id`` and waits
    for staff who may see that member to ``apply`` it (update the member with ``data``) or
    ``dismiss`` it, after which it is ``applied`` or ``dismissed``.

    Personal data: ``data`` (the submission as read: name, phone, address, point...) and
    ``phone``. ``reference`` is the random id the registrant got back (never the member id).
    """

    __tablename__ = "registration_requests"

    id: Mapped[int] = mapped_column(primary_key=True)
    reference: Mapped[str] = mapped_column(String(32), unique=True)
    status: Mapped[str] = mapped_column(String(20), index=True)
    phone: Mapped[str] = mapped_column(String(20), index=True)
    data: Mapped[dict[str, Any]] = mapped_column(JSON)
    outcome: Mapped[str] = mapped_column(String(30))  # the assignment: assigned, needs-...
    member_id: Mapped[int | None] = mapped_column(ForeignKey("members.id"), index=True)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime(), default=utcnow)
    resolved_at: Mapped[datetime | None] = mapped_column(UtcDateTime())
    resolved_by: Mapped[str | None] = mapped_column(String(200))


class AssignmentChange(Base):
    """History of assignments: a member's building, or a household's parent, changing."""

    __tablename__ = "assignment_history"

    id: Mapped[int] = mapped_column(primary_key=True)
    subject: Mapped[str] = mapped_column(String(20))  # "member" or "household"
    subject_id: Mapped[int] = mapped_column(Integer, index=True)
    from_code: Mapped[str | None] = mapped_column(String(64))
    to_code: Mapped[str | None] = mapped_column(String(64))
    boundary_revision: Mapped[int] = mapped_column(Integer)
    reason: Mapped[str] = mapped_column(String(200))
    at: Mapped[datetime] = mapped_column(UtcDateTime(), default=utcnow)


class ApiToken(Base):
    """An API token: its SHA-256 hash (never the token), role and subtree (see gridsvc.access).

    Tokens are 256-bit random strings, so a fast hash is as safe as a slow one and keeps the
    check of every request cheap; ``prefix`` (the first characters) lets people tell tokens
    apart without storing them.
    """

    __tablename__ = "api_tokens"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(100))
    role: Mapped[str] = mapped_column(String(20))
    scope_code: Mapped[str | None] = mapped_column(String(64))  # None = the whole city
    member_id: Mapped[int | None] = mapped_column(ForeignKey("members.id"), index=True)
    # for the resident role: who; for the unit role: the work-unit organisation (the service
    # loop, gridsvc.storage.loop_models)
    resident_id: Mapped[int | None] = mapped_column(Integer, index=True)
    work_org_id: Mapped[int | None] = mapped_column(ForeignKey("work_orgs.id"), index=True)
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    prefix: Mapped[str] = mapped_column(String(16))
    created_at: Mapped[datetime] = mapped_column(UtcDateTime(), default=utcnow)
    expires_at: Mapped[datetime | None] = mapped_column(UtcDateTime())
    revoked_at: Mapped[datetime | None] = mapped_column(UtcDateTime())


class AuditEntry(Base):
    """Who did what, when, on which record, with what result: every write and every read of
    personal data. Holds no personal data itself (record ids, not names or phones)."""

    __tablename__ = "audit_log"

    id: Mapped[int] = mapped_column(primary_key=True)
    at: Mapped[datetime] = mapped_column(UtcDateTime(), default=utcnow, index=True)
    actor: Mapped[str] = mapped_column(String(100), index=True)
    role: Mapped[str] = mapped_column(String(20))
    token_id: Mapped[int | None] = mapped_column(Integer)
    action: Mapped[str] = mapped_column(String(100), index=True)
    target: Mapped[str | None] = mapped_column(String(200), index=True)
    result: Mapped[str] = mapped_column(String(100))
    status: Mapped[int | None] = mapped_column(Integer)
    detail: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    remote: Mapped[str | None] = mapped_column(String(64))


class JobRun(Base):
    """One scheduled job (``gridsvc.services.jobs``): its last run and the lease that keeps
    two hosts from running it at once."""

    __tablename__ = "jobs"

    name: Mapped[str] = mapped_column(String(100), primary_key=True)
    last_started_at: Mapped[datetime | None] = mapped_column(UtcDateTime())
    last_finished_at: Mapped[datetime | None] = mapped_column(UtcDateTime())
    last_ok_at: Mapped[datetime | None] = mapped_column(UtcDateTime())  # start of the last success
    last_result: Mapped[str | None] = mapped_column(String(200))
    lease_owner: Mapped[str | None] = mapped_column(String(200))
    lease_until: Mapped[datetime | None] = mapped_column(UtcDateTime())


# The service loop's tables live in their own module; importing it here puts them in
# Base.metadata wherever the models are used (migrations, tests).
from gridsvc.storage import loop_models as _loop_models  # noqa: E402, F401

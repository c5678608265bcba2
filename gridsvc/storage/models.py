"""ORM models (SQLAlchemy 2 typed mappings with GeoAlchemy2 geometry columns).

Geometries are stored in EPSG:4326 (WGS84; CGCS2000 EPSG:4490 is accepted as the same datum).
Polygon levels store MULTIPOLYGON, the household level stores POINT, in one generic column.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from geoalchemy2 import Geometry
from sqlalchemy import JSON, DateTime, ForeignKey, Integer, String
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship

SRID = 4326


def utcnow() -> datetime:
    return datetime.now(UTC)


class Base(DeclarativeBase):
    pass


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
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), default=utcnow, onupdate=utcnow
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
        DateTime(timezone=True), default=utcnow, onupdate=utcnow
    )

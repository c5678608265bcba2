"""Queries over the ``units`` table that both backends answer the same way.

Paths are materialised as ``/<root code>/<child code>/.../<own code>/``, so a subtree is a
prefix match and a unit's ancestors are read off its path. Codes therefore never contain "/"
(validation refuses them).

Codes are case-sensitive, stored exactly as imported (``ZS1`` and ``zs1`` are two units), and
every comparison of codes and paths is exact on both backends: ``=`` compares bytes on both,
and a subtree (``subtree_filter``) is a half-open range ``path >= prefix AND path < upper`` on
SQLite (whose ``LIKE`` ignores ASCII case) and a ``LIKE 'prefix%'`` on PostgreSQL (where
``LIKE`` is case-sensitive but ``<`` follows the database's linguistic collation); both can use
the index on ``path``.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import shapely
from geoalchemy2.shape import from_shape
from shapely.geometry import box
from shapely.geometry.base import BaseGeometry
from sqlalchemy import (
    Boolean,
    ColumnElement,
    Select,
    and_,
    bindparam,
    func,
    literal,
    select,
    text,
    update,
)
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.orm import Session, aliased
from sqlalchemy.sql.functions import FunctionElement

from gridsvc.storage.models import SRID, Revision, Unit, utcnow

BOUNDARIES = "boundaries"  # revision counter of the tree's boundaries, watched by indexes
CHUNK = 5_000  # bound parameters per IN (...) list; SQLite allows 32,766


def path_for(parent_path: str | None, code: str) -> str:
    return f"{parent_path or '/'}{code}/"


def codes_in_path(path: str) -> list[str]:
    """Ancestor codes, root first, the unit's own code last."""
    return [c for c in path.split("/") if c]


def chunks(items: Sequence[str], size: int = CHUNK) -> Iterator[Sequence[str]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


def units_by_codes(session: Session, codes: Iterable[str]) -> dict[str, Unit]:
    wanted = sorted(set(codes))
    found: dict[str, Unit] = {}
    for part in chunks(wanted):
        for unit in session.scalars(select(Unit).where(Unit.code.in_(part))):
            found[unit.code] = unit
    return found


def children_of_ids(session: Session, ids: Iterable[int]) -> list[Unit]:
    wanted = sorted(set(ids))
    out: list[Unit] = []
    for start in range(0, len(wanted), CHUNK):
        part = wanted[start : start + CHUNK]
        out.extend(session.scalars(select(Unit).where(Unit.parent_id.in_(part))))
    return out


class _InSubtree(FunctionElement[bool]):
    """``path`` starts with ``prefix``, exactly (arguments: column, prefix, LIKE pattern,
    upper bound); compiled per backend below."""

    type = Boolean()
    name = "in_subtree"
    inherit_cache = True


@compiles(_InSubtree)
def _in_subtree_like(element: _InSubtree, compiler: Any, **kw: Any) -> str:
    column, _prefix, pattern, _upper = (compiler.process(c, **kw) for c in element.clauses)
    return f"({column} LIKE {pattern} ESCAPE '/')"


@compiles(_InSubtree, "sqlite")
def _in_subtree_range(element: _InSubtree, compiler: Any, **kw: Any) -> str:
    column, prefix, _pattern, upper = (compiler.process(c, **kw) for c in element.clauses)
    return f"({column} >= {prefix} AND {column} < {upper})"


def subtree_filter(path: str) -> ColumnElement[bool]:
    """Units at or below the unit with this path, compared exactly (case-sensitive) on both
    backends. Paths end with "/", so the strings starting with ``path`` are exactly those in
    ``[path, path[:-1] + "0")`` ("0" follows "/" in code point order)."""
    if not path.endswith("/"):
        raise ValueError(f"a unit path ends with '/': {path!r}")
    pattern = path.replace("/", "//").replace("%", "/%").replace("_", "/_") + "%"
    upper = path[:-1] + chr(ord("/") + 1)
    return _InSubtree(Unit.path, literal(path), literal(pattern), literal(upper))


def bbox_filter(session: Session, bbox: tuple[float, float, float, float]) -> ColumnElement[bool]:
    """Units whose geometry intersects a wgs84 bbox, using each backend's spatial index."""
    minx, miny, maxx, maxy = bbox
    envelope = from_shape(box(minx, miny, maxx, maxy), srid=SRID)
    exact = func.ST_Intersects(Unit.geom, envelope)
    if session.get_bind().dialect.name != "sqlite":
        return exact  # PostGIS ST_Intersects uses the GiST index by itself
    # SpatiaLite only uses its R*Tree when asked explicitly.
    candidates = text(
        "SELECT pkid FROM idx_units_geom WHERE xmin <= :maxx AND xmax >= :minx "
        "AND ymin <= :maxy AND ymax >= :miny"
    ).bindparams(minx=minx, miny=miny, maxx=maxx, maxy=maxy)
    return and_(Unit.id.in_(candidates), exact)


class _Like(FunctionElement[bool]):
    """A case-sensitive pattern match (arguments: column, LIKE pattern with "/" escapes,
    GLOB pattern); LIKE on PostgreSQL, GLOB on SQLite (whose LIKE ignores ASCII case)."""

    type = Boolean()
    name = "exact_like"
    inherit_cache = True


@compiles(_Like)
def _like_pg(element: _Like, compiler: Any, **kw: Any) -> str:
    column, pattern, _glob = (compiler.process(c, **kw) for c in element.clauses)
    return f"({column} LIKE {pattern} ESCAPE '/')"


@compiles(_Like, "sqlite")
def _like_glob(element: _Like, compiler: Any, **kw: Any) -> str:
    column, _pattern, glob = (compiler.process(c, **kw) for c in element.clauses)
    return f"({column} GLOB {glob})"


def like_filter(column: Any, parts: Sequence[str | None]) -> ColumnElement[bool]:
    """``column`` matches a pattern, case-sensitively on both backends: ``parts`` are None
    (any run of characters), "" (exactly one character) or literal text."""
    like, glob = [], []
    for part in parts:
        if part is None:
            like.append("%")
            glob.append("*")
        elif part == "":
            like.append("_")
            glob.append("?")
        else:
            like.append(part.replace("/", "//").replace("%", "/%").replace("_", "/_"))
            glob.append("".join(f"[{c}]" if c in "*?[" else c for c in part))
    return _Like(column, literal("".join(like)), literal("".join(glob)))


def spatial_filter(session: Session, relation: str, geom: BaseGeometry) -> ColumnElement[bool]:
    """Units whose geometry ``relation`` (intersects, within, contains, disjoint) a wgs84
    geometry; all but disjoint use each backend's spatial index."""
    element = from_shape(geom, srid=SRID)
    exact = {"intersects": func.ST_Intersects, "within": func.ST_Within,
             "contains": func.ST_Contains, "disjoint": func.ST_Disjoint}[relation](
        Unit.geom, element)
    if relation == "disjoint" or session.get_bind().dialect.name != "sqlite":
        return exact
    minx, miny, maxx, maxy = geom.bounds
    candidates = text(  # unique names: a query may hold more than one of these
        "SELECT pkid FROM idx_units_geom WHERE xmin <= :maxx AND xmax >= :minx "
        "AND ymin <= :maxy AND ymax >= :miny"
    ).bindparams(*(bindparam(name, value, unique=True) for name, value in (
        ("minx", minx), ("miny", miny), ("maxx", maxx), ("maxy", maxy))))
    return and_(Unit.id.in_(candidates), exact)


def with_parent_code() -> tuple[Select, type[Unit]]:
    """``select(Unit, parent.code)``: units with their parent's code in one query."""
    parent = aliased(Unit)
    stmt = select(Unit, parent.code).outerjoin(parent, Unit.parent_id == parent.id)
    return stmt, parent


def wkb_bytes(element: Any) -> bytes | None:
    """A stored geometry's (E)WKB: PostGIS gives bytes, SpatiaLite a hex string."""
    if element is None:
        return None
    data = element.data
    return bytes.fromhex(data) if isinstance(data, str) else bytes(data)


def geometries(units: Sequence[Unit], attr: str = "geom") -> list[BaseGeometry | None]:
    """Decode many stored geometries at once (vectorised WKB parsing)."""
    data = [wkb_bytes(getattr(u, attr)) for u in units]
    return list(shapely.from_wkb(data)) if data else []


def bump_revision(session: Session, name: str) -> int:
    """Move a dataset's revision counter on (creating it), returning the new value."""
    rev = session.get(Revision, name)
    if rev is None:
        rev = Revision(name=name, value=1)
        session.add(rev)
    else:
        session.execute(
            update(Revision)
            .where(Revision.name == name)
            .values(value=Revision.value + 1, updated_at=utcnow())
        )
        session.refresh(rev)
    session.flush()
    return rev.value


def revision(session: Session, name: str) -> int:
    value = session.scalar(select(Revision.value).where(Revision.name == name))
    return value or 0


@dataclass(frozen=True)
class LevelCount:
    level: int
    count: int


def descendant_counts(session: Session, path: str) -> list[LevelCount]:
    """How many units of each level lie below the unit with this path."""
    rows = session.execute(
        select(Unit.level, func.count())
        .where(subtree_filter(path), Unit.path != path)
        .group_by(Unit.level)
        .order_by(Unit.level)
    )
    return [LevelCount(level, count) for level, count in rows]

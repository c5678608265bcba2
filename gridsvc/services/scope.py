"""Scoping queries to a viewer's subtree (see ``gridsvc.access``).

``viewer=None`` is full access (CLI, internal callers). A scoped viewer sees the units whose
path starts with their scope unit's path, and the members whose building is one of those
units. A member sees only their own record. Members without a building (ambiguous or rejected
addresses) are seen by city-wide viewers only.
"""

from __future__ import annotations

from sqlalchemy import ColumnElement, Select, false, select
from sqlalchemy.orm import Session

from gridsvc.access import Principal, Role
from gridsvc.services.errors import Forbidden, NotFound
from gridsvc.storage import units as q
from gridsvc.storage.models import Member, Unit


def city_wide(viewer: Principal | None) -> bool:
    return viewer is None or viewer.city_wide


def unit_ids(viewer: Principal) -> Select:
    """The ids of the units in the viewer's subtree (for IN (...) filters)."""
    if viewer.scope_path is None:
        return select(Unit.id)
    return select(Unit.id).where(q.subtree_filter(viewer.scope_path))


def member_filter(viewer: Principal | None) -> ColumnElement[bool] | None:
    """A WHERE clause on ``Member`` for what the viewer may see; None: everything."""
    if city_wide(viewer):
        return None
    assert viewer is not None
    if viewer.role is Role.MEMBER:
        return Member.id == viewer.member_id if viewer.member_id is not None else false()
    if viewer.scope_path is None:
        return false()
    return Member.building_id.in_(unit_ids(viewer))


def sees_member(session: Session, viewer: Principal | None, member: Member) -> bool:
    if city_wide(viewer):
        return True
    assert viewer is not None
    if viewer.role is Role.MEMBER:
        return member.id == viewer.member_id
    return unit_in_scope(session, viewer, member.building_id)


def unit_in_scope(session: Session, viewer: Principal | None, unit_id: int | None) -> bool:
    if city_wide(viewer):
        return True
    assert viewer is not None
    if unit_id is None or viewer.scope_path is None:
        return False
    return viewer.covers(session.scalar(select(Unit.path).where(Unit.id == unit_id)))


def require_unit_in_scope(session: Session, viewer: Principal | None, unit_id: int | None,
                          what: str) -> None:
    """Forbidden unless the unit is in the viewer's subtree (a write outside it)."""
    if not unit_in_scope(session, viewer, unit_id):
        assert viewer is not None
        raise Forbidden(f"{what} lies outside your subtree ({viewer.scope_label})",
                        scope=viewer.scope_code)


# --- units: the tree API, boundaries, coverage and maps ---------------------------------------
#
# A scoped viewer reads the units of their subtree in full. The units above their scope root
# (its ancestors: the chain a unit's detail lists, by code and name only) may be named as a
# filter whose results are scoped anyway (``parent=``, children, subtree), but are never read
# themselves: their figures and boundaries cover other subtrees. Everything else is 404.


def unit_filter(viewer: Principal | None) -> ColumnElement[bool] | None:
    """A WHERE clause on ``Unit`` for the units the viewer may read; None: every unit."""
    if city_wide(viewer):
        return None
    assert viewer is not None
    if viewer.scope_path is None:  # a member or the public: no units at all
        return false()
    return q.subtree_filter(viewer.scope_path)


def above_scope(viewer: Principal | None, path: str) -> bool:
    """Is the unit with this path an ancestor of the viewer's scope root?"""
    return (viewer is not None and viewer.scope_path is not None
            and viewer.scope_path != path and viewer.scope_path.startswith(path))


def readable_unit(session: Session, viewer: Principal | None, code: str, *,
                  above: bool = False, field: str | None = None) -> Unit:
    """The unit with this code; NotFound when there is none or it lies outside the viewer's
    subtree (``above``: a unit above the scope root is accepted too, for scoped filters)."""
    unit = session.scalar(select(Unit).where(Unit.code == code))
    # (the ignore below: a scoped viewer is not None here)
    if unit is not None and (city_wide(viewer) or viewer.covers(unit.path)  # type: ignore[union-attr]
                             or (above and above_scope(viewer, unit.path))):
        return unit
    extra = {"field": field} if field else {}
    raise NotFound(f"no unit with code {code!r}", code=code, **extra)


def root_code(session: Session, viewer: Principal | None, code: str | None,
              field: str = "unit") -> str | None:
    """Where a scoped read starts: ``code`` (NotFound outside the viewer's subtree), else the
    viewer's scope root (None: the whole tree, for city-wide viewers)."""
    if code is not None:
        return readable_unit(session, viewer, code, field=field).code
    if city_wide(viewer):
        return None
    assert viewer is not None
    if viewer.scope_code is None:
        raise Forbidden(f"a {viewer.role.value} may not read the tree")
    return viewer.scope_code


def writable_unit(session: Session, viewer: Principal | None, code: str) -> Unit:
    """The unit with this code for a write: NotFound when missing, Forbidden when it lies
    outside the viewer's subtree."""
    unit = session.scalar(select(Unit).where(Unit.code == code))
    if unit is None:
        raise NotFound(f"no unit with code {code!r}", code=code)
    # (the ignore below: a scoped viewer is not None here)
    if not (city_wide(viewer) or viewer.covers(unit.path)):  # type: ignore[union-attr]
        assert viewer is not None
        raise Forbidden(f"unit {code} lies outside your subtree ({viewer.scope_label})",
                        code=code, scope=viewer.scope_code)
    return unit

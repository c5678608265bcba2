"""Scoping queries to a viewer's subtree (see ``gridsvc.access`` and ``gridsvc.services.authz``).

The viewer is required (the CLI passes ``cli_principal()``, an administrator). The checks of
one record go through ``authz.allowed``; the filters here are the same rules as SQL for lists
(``tests/test_authz.py`` holds the two equal). A scoped viewer sees the units whose
path starts with their scope unit's path, and the members whose building is one of those
units. A member sees only their own record. Members without a building (ambiguous or rejected
addresses) are seen by city-wide viewers only.
"""

from __future__ import annotations

from sqlalchemy import ColumnElement, Select, false, select
from sqlalchemy.orm import Session

from gridsvc.access import Principal, Role
from gridsvc.services import authz
from gridsvc.services.authz import Action, MemberResource, UnitResource
from gridsvc.services.errors import Forbidden, NotFound
from gridsvc.storage import units as q
from gridsvc.storage.models import Member, Unit


def city_wide(viewer: Principal) -> bool:
    return viewer.city_wide


def unit_ids(viewer: Principal) -> Select:
    """The ids of the units in the viewer's subtree (for IN (...) filters)."""
    if viewer.scope_path is None:
        return select(Unit.id)
    return select(Unit.id).where(q.subtree_filter(viewer.scope_path))


def member_filter(viewer: Principal) -> ColumnElement[bool] | None:
    """A WHERE clause on ``Member`` for what the viewer may see; None: everything."""
    if city_wide(viewer):
        return None
    if viewer.role is Role.MEMBER:
        return Member.id == viewer.member_id if viewer.member_id is not None else false()
    if viewer.scope_path is None:
        return false()
    return Member.building_id.in_(unit_ids(viewer))


def sees_member(session: Session, viewer: Principal, member: Member) -> bool:
    if city_wide(viewer):
        return True
    return authz.allowed(viewer, Action.READ_MEMBER,
                         MemberResource(member.id, _path(session, member.building_id)))


def _path(session: Session, unit_id: int | None) -> str | None:
    if unit_id is None:
        return None
    return session.scalar(select(Unit.path).where(Unit.id == unit_id))


def unit_in_scope(session: Session, viewer: Principal, unit_id: int | None) -> bool:
    if city_wide(viewer):
        return True
    return authz.allowed(viewer, Action.READ_UNIT, UnitResource(_path(session, unit_id)))


def require_unit_in_scope(session: Session, viewer: Principal, unit_id: int | None,
                          what: str) -> None:
    """Forbidden unless the unit is in the viewer's subtree (a write outside it)."""
    if not unit_in_scope(session, viewer, unit_id):
            raise Forbidden(f"{what} lies outside your subtree ({viewer.scope_label})",
                        scope=viewer.scope_code)


# --- units: the tree API, boundaries, coverage and maps ---------------------------------------
#
# A scoped viewer reads the units of their subtree in full. The units above their scope root
# (its ancestors: the chain a unit's detail lists, by code and name only) may be named as a
# filter whose results are scoped anyway (``parent=``, children, subtree), but are never read
# themselves: their figures and boundaries cover other subtrees. Everything else is 404.


def unit_filter(viewer: Principal) -> ColumnElement[bool] | None:
    """A WHERE clause on ``Unit`` for the units the viewer may read; None: every unit."""
    if city_wide(viewer):
        return None
    if viewer.scope_path is None:  # a member or the public: no units at all
        return false()
    return q.subtree_filter(viewer.scope_path)


def above_scope(viewer: Principal, path: str) -> bool:
    """Is the unit with this path an ancestor of the viewer's scope root?"""
    return (viewer.scope_path is not None
            and viewer.scope_path != path and viewer.scope_path.startswith(path))


def readable_unit(session: Session, viewer: Principal, code: str, *,
                  above: bool = False, field: str | None = None) -> Unit:
    """The unit with this code; NotFound when there is none or it lies outside the viewer's
    subtree (``above``: a unit above the scope root is accepted too, for scoped filters)."""
    unit = session.scalar(select(Unit).where(Unit.code == code))
    if unit is not None and (city_wide(viewer)
                             or authz.allowed(viewer, Action.READ_UNIT, UnitResource(unit.path))
                             or (above and above_scope(viewer, unit.path))):
        return unit
    extra = {"field": field} if field else {}
    raise NotFound(f"no unit with code {code!r}", code=code, **extra)


def root_code(session: Session, viewer: Principal, code: str | None,
              field: str = "unit") -> str | None:
    """Where a scoped read starts: ``code`` (NotFound outside the viewer's subtree), else the
    viewer's scope root (None: the whole tree, for city-wide viewers)."""
    if code is not None:
        return readable_unit(session, viewer, code, field=field).code
    if city_wide(viewer):
        return None
    if viewer.scope_code is None:
        raise Forbidden(f"a {viewer.role.value} may not read the tree")
    return viewer.scope_code


def writable_unit(session: Session, viewer: Principal, code: str) -> Unit:
    """The unit with this code for a write: NotFound when missing, Forbidden when it lies
    outside the viewer's subtree."""
    unit = session.scalar(select(Unit).where(Unit.code == code))
    if unit is None:
        raise NotFound(f"no unit with code {code!r}", code=code)
    if not (city_wide(viewer)
            or authz.allowed(viewer, Action.WRITE_UNIT, UnitResource(unit.path, code))):
        raise Forbidden(f"unit {code} lies outside your subtree ({viewer.scope_label})",
                        code=code, scope=viewer.scope_code)
    return unit

"""Deleting one unit of the tree, the way a boundary change moves who hung on it.

Only a unit without child units can be deleted (``Conflict`` otherwise: delete or move its
children first), so a delete never leaves orphans and never cascades silently. Like an import
it is one transaction:

1. the tree is indexed before the change (when members or households hang on it);
2. the unit is deleted inside a savepoint, the tree indexed again as it would be, and the
   savepoint rolled back, so the members' stored buildings still name the unit;
3. ``reassign.member_moves`` compares the two: members whose home was in a deleted micro-grid
   fall into no micro-grid any more and become needs-confirmation with the nearest building
   as a flagged fallback, members whose 党员中心户 was a deleted household get the one the
   household rule picks now; each move is recorded in ``assignment_history``;
4. what still points at the unit is cleared, with a reason: members confirmed by staff (they
   keep their building through boundary changes, so they wait for staff again) or without a
   home point, and work-unit organisations whose community it was;
5. the unit is deleted (guarded by its version) and the ``boundaries`` revision moves, so
   every process rebuilds its lookup index.

Tokens scoped to the deleted unit stop working (``verify_token`` refuses a scope that no longer
exists); gazetteer entries keep its code as history.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import func, or_, select
from sqlalchemy.orm import Session
from sqlalchemy.orm.exc import StaleDataError

from gridsvc.access import Principal
from gridsvc.services import reassign
from gridsvc.services.boundaries import BOUNDARIES, _has_dependents
from gridsvc.services.context import Services
from gridsvc.services.errors import Conflict, Forbidden, NotFound, VersionConflict
from gridsvc.services.locator import CityIndex, city_index_in
from gridsvc.services.registration import NEEDS_CONFIRMATION, REJECTED
from gridsvc.storage import units as q
from gridsvc.storage.models import AssignmentChange, Member, Unit, WorkOrg


@dataclass
class DeleteOutcome:
    code: str
    level: int
    revision: int
    moves: list[reassign.Move] = field(default_factory=list)
    cleared_members: list[int] = field(default_factory=list)  # ids left without a building
    cleared_work_orgs: list[int] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return {
            "deleted": self.code, "level": self.level, "revision": self.revision,
            "moves": [m.as_dict() for m in self.moves],
            "cleared_members": self.cleared_members,
            "cleared_work_orgs": self.cleared_work_orgs,
        }


def delete_unit(svc: Services, code: str, *, expected_version: int | None = None,
                viewer: Principal) -> DeleteOutcome:
    """Delete the unit ``code`` (which must have no child units) in one transaction.

    ``expected_version`` makes it refuse with ``VersionConflict`` when the unit changed since
    the caller read it; ``viewer`` (None: full access) must cover the unit (``Forbidden``).
    """
    try:
        with svc.db.session() as session:
            return _delete(session, svc, code, expected_version, viewer)
    except StaleDataError:  # the row changed between this transaction's read and its delete
        raise VersionConflict(f"unit {code} was saved by someone else while it was deleted; "
                              "nothing was deleted: reload it and try again",
                              code=code) from None


def _delete(session: Session, svc: Services, code: str, expected_version: int | None,
            viewer: Principal) -> DeleteOutcome:
    unit = session.scalar(select(Unit).where(Unit.code == code).with_for_update())
    if unit is None:
        raise NotFound(f"no unit with code {code!r}", code=code)
    if viewer is not None and not viewer.covers(unit.path):
        raise Forbidden(f"unit {code} lies outside the subtree of {viewer.scope_label}; "
                        "this token may not delete it", code=code)
    if expected_version is not None and unit.version != expected_version:
        raise VersionConflict(
            f"unit {code} is at version {unit.version}, not {expected_version}: someone else "
            "saved it since you loaded it; reload it and decide again",
            code=code, version=unit.version)
    children = session.scalar(
        select(func.count()).select_from(Unit).where(Unit.parent_id == unit.id)) or 0
    if children:
        raise Conflict(f"unit {code} still has {children} child unit"
                       f"{'s' if children != 1 else ''}: delete or move them first",
                       code=code, children=children)
    before = reassign.snapshot(session, svc.hierarchy) if _has_dependents(session, svc) else None
    after = _index_without(session, svc, unit) if before is not None else None
    revision = q.bump_revision(session, BOUNDARIES)
    outcome = DeleteOutcome(code, unit.level, revision)
    if before is not None and after is not None:
        members, updates = reassign.member_moves(session, before, after, svc.settings)
        outcome.moves = members + reassign.household_moves(before, after)
        reassign.apply_member_updates(session, updates, outcome.moves, revision)
    outcome.cleared_members = _clear_members(session, unit, revision)
    outcome.cleared_work_orgs = _clear_work_orgs(session, unit)
    session.delete(unit)
    session.flush()
    return outcome


def _index_without(session: Session, svc: Services, unit: Unit) -> CityIndex:
    """The tree indexed as it will be without ``unit``, leaving the stored rows as they are."""
    savepoint = session.begin_nested()
    try:
        _detach(session, unit.id)
        session.execute(Unit.__table__.delete().where(Unit.__table__.c.id == unit.id))
        return city_index_in(session, svc.hierarchy)
    finally:
        savepoint.rollback()


def _detach(session: Session, unit_id: int) -> None:
    """Clear every foreign key to the unit (inside the savepoint only)."""
    members = Member.__table__
    session.execute(members.update().where(members.c.building_id == unit_id)
                    .values(building_id=None))
    session.execute(members.update().where(members.c.household_id == unit_id)
                    .values(household_id=None))
    orgs = WorkOrg.__table__
    session.execute(orgs.update().where(orgs.c.community_id == unit_id).values(community_id=None))


def _clear_members(session: Session, unit: Unit, revision: int) -> list[int]:
    """Members still pointing at the unit after the reassignment: staff-confirmed ones and
    those without a home point. They lose it and wait for staff, with the reason."""
    cleared = []
    rows = session.scalars(select(Member).where(
        or_(Member.building_id == unit.id, Member.household_id == unit.id)).order_by(Member.id))
    for member in rows:
        if member.building_id == unit.id:
            member.building_id = None
            if member.status != REJECTED:
                member.status = NEEDS_CONFIRMATION
            member.reason = f"their building {unit.code} was deleted; confirm where they live"
            member.match = dict(member.match or {}) | {"unit_deleted": unit.code}
        if member.household_id == unit.id:
            member.household_id = None
        session.add(AssignmentChange(subject="member", subject_id=member.id,
                                     from_code=unit.code, to_code=None,
                                     boundary_revision=revision, reason="unit deleted"))
        cleared.append(member.id)
    session.flush()
    return cleared


def _clear_work_orgs(session: Session, unit: Unit) -> list[int]:
    cleared = []
    for org in session.scalars(select(WorkOrg).where(WorkOrg.community_id == unit.id)):
        org.community_id = None
        org.status = NEEDS_CONFIRMATION
        org.reason = f"its community {unit.code} was deleted; confirm where its office is"
        cleared.append(org.id)
    session.flush()
    return cleared

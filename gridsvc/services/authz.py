"""The one decision point: may this actor do this action to this resource?

``allowed(actor, action, resource)`` answers; ``authorize(...)`` raises when the answer is no:
``NotFound`` for a read (what the actor may not read behaves as if it did not exist, so no
answer reveals that it does) and ``Forbidden`` for a write to something the actor can see
exists (a unit outside the subtree that the actor named by code).

Rules are registered per action with ``@rule(action)``; an action is allowed when any of its
rules says yes, and denied when it has none (deny by default). A rule sees the actor and the
resource and may depend on their relationship, not only on the role:

* ``subtree``: the unit's path lies under the actor's scope root (``Principal.covers``);
* ``owner``: a member's own record (``Principal.member_id``);
* relationships of other modules are registered by those modules with the same decorator:
  ``gridsvc.services.loop.common`` registers ``need:<action>`` for every transition of the
  need's state machine, on a ``NeedResource``, from the actor's parties to that need (staff of
  the community whose boundary holds its point, the current taker, a member of that community,
  the resident who ordered it).

The actor is required everywhere: service functions take ``viewer``/``actor: Principal`` with
no default (``tests/test_authz.py`` fails when one does not). The command line and jobs act as
``gridsvc.access.cli_principal()``, an administrator recorded in the audit log as
``cli:<os user>``.

List queries cannot call ``allowed`` per row: ``gridsvc.services.scope.unit_filter`` and
``member_filter`` are the same rules as SQL, and a test holds the two forms equal.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from gridsvc.access import Permission, Principal, Role
from gridsvc.services.errors import Forbidden, NotFound


class Action(StrEnum):
    READ_UNIT = "read-unit"  # a unit's record, boundary, figures and maps
    WRITE_UNIT = "write-unit"  # create, edit, move or delete a unit or its boundary
    READ_MEMBER = "read-member"  # a member's personal record
    WRITE_MEMBER = "write-member"  # update, confirm or reassign a member
    READ_AUDIT = "read-audit"  # the audit log (who read or changed what)


@dataclass(frozen=True)
class UnitResource:
    """A unit, by its path from the root ("/S01/C01/"); ``None`` for no unit at all."""

    path: str | None
    code: str | None = None


@dataclass(frozen=True)
class MemberResource:
    """A member, by id and the path of the building they live in (None: not placed)."""

    member_id: int
    building_path: str | None


@dataclass(frozen=True)
class CityResource:
    """The city as a whole (the audit log, accounts, the gazetteer)."""


CITY = CityResource()

Rule = Callable[[Principal, Any], bool]
_RULES: dict[str, list[Rule]] = {}


def rule(action: str) -> Callable[[Rule], Rule]:
    """Register a rule for ``action`` (any rule that says yes allows it)."""

    def register(fn: Rule) -> Rule:
        _RULES.setdefault(str(action), []).append(fn)
        return fn

    return register


def actions() -> set[str]:
    """Every action some rule decides."""
    return set(_RULES)


def allowed(actor: Principal, action: str, resource: Any) -> bool:
    """May ``actor`` do ``action`` to ``resource``? Deny when no rule for the action exists."""
    if not isinstance(actor, Principal):  # never a missing actor, never "everything"
        raise TypeError(f"authorization needs an actor, got {actor!r}")
    return any(fn(actor, resource) for fn in _RULES.get(str(action), ()))


def authorize(actor: Principal, action: str, resource: Any, *, what: str = "record",
              **details: Any) -> None:
    """Raise unless ``allowed``: reads are ``NotFound`` (nothing revealed), writes
    ``Forbidden`` naming the actor's scope."""
    if allowed(actor, action, resource):
        return
    if str(action).startswith("read-"):
        raise NotFound(f"no {what}", **details)
    raise Forbidden(f"{what} lies outside your subtree ({actor.scope_label})",
                    scope=actor.scope_code, **details)


# --- the rules of units and members ------------------------------------------------------------


@rule(Action.READ_UNIT)
@rule(Action.WRITE_UNIT)
def _unit_in_subtree(actor: Principal, resource: UnitResource) -> bool:
    """Admins everywhere; planners and staff in their subtree (city-wide when unscoped)."""
    if actor.role is Role.ADMIN:
        return True
    return resource.path is not None and actor.covers(resource.path)


@rule(Action.READ_MEMBER)
@rule(Action.WRITE_MEMBER)
def _member_in_subtree(actor: Principal, resource: MemberResource) -> bool:
    """City-wide viewers see every member (also those not placed in a building); scoped
    staff see those who live in their subtree."""
    if actor.city_wide:
        return True
    if actor.role is Role.MEMBER:
        return False
    return resource.building_path is not None and actor.covers(resource.building_path)


@rule(Action.READ_MEMBER)
def _own_record(actor: Principal, resource: MemberResource) -> bool:
    """A member reads their own record."""
    return (actor.role is Role.MEMBER and actor.member_id is not None
            and actor.member_id == resource.member_id)


@rule(Action.READ_AUDIT)
def _audit_reader(actor: Principal, _resource: CityResource) -> bool:
    """Whoever holds the audit permission (administrators)."""
    return actor.may(Permission.READ_AUDIT)

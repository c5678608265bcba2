"""Who is asking and what they may do: roles, permissions and subtree scopes.

Framework-free: the web layer turns a bearer token into a ``Principal`` (``gridsvc.web.auth``),
the CLI acts as ``cli_principal()`` (it has the database, so it is an administrator), and the
service layer takes a ``viewer`` to scope queries and shape personal data.

Roles (a token has exactly one):

========  ==================================================================================
admin     everything in the whole city, accounts and the audit log
planner   reads units, boundaries and coverage in their subtree and edits boundaries there
staff     reads units and coverage in their subtree and reads/writes the members living there
member    reads their own member record (and the public lookup); in the service loop, claims
          and serves needs of their community
resident  a resident with a verified phone (not a member): orders, follows, withdraws and rates
          their own needs (the service loop)
unit      the secretary of a work-unit Party organisation: accepts or declines the projects
          dispatched to it and sees its members' service records and talk list (the loop)
public    no token: the public lookup and self-registration only
========  ==================================================================================

Service functions that return units, members or maps take a required ``viewer: Principal``
(never defaulted, never None: ``tests/test_authz.py`` fails otherwise). The web layer passes the
caller (``gridsvc.web.auth.current_principal()``), the CLI ``cli_principal()``, the service acting
for itself ``system_principal(purpose)``. What an actor may do to one record is decided in one
place, ``gridsvc.services.authz.allowed(actor, action, resource)``, from the relationship
(subtree, own record; the loop adds taker and community); the role tables below are the coarse
gate a route checks first. Reads outside the viewer's subtree behave as if the record did not
exist (404, or left out of lists); writes outside it raise ``Forbidden`` (403).

A scope is a unit (by code) at the root of a subtree; ``None`` is the whole city. A unit is in
scope when its ``path`` (codes from the root, "/S01/C01/G01/") starts with the scope unit's path.
"""

from __future__ import annotations

import getpass
from dataclasses import dataclass
from enum import StrEnum


class Role(StrEnum):
    ADMIN = "admin"
    PLANNER = "planner"
    STAFF = "staff"
    MEMBER = "member"
    RESIDENT = "resident"
    UNIT = "unit"
    PUBLIC = "public"


class Permission(StrEnum):
    READ_UNITS = "read-units"  # units, boundaries, coverage counts and maps of the subtree
    EDIT_BOUNDARIES = "edit-boundaries"  # imports, the editor and OGC transactions
    READ_MEMBERS = "read-members"  # members' personal data in the subtree
    WRITE_MEMBERS = "write-members"  # rosters, updates and confirmations in the subtree
    READ_OWN_RECORD = "read-own-record"  # a member's own record
    EDIT_GAZETTEER = "edit-gazetteer"  # the city-wide address list
    MANAGE_ACCOUNTS = "manage-accounts"
    READ_AUDIT = "read-audit"


ROLE_PERMISSIONS: dict[Role, frozenset[Permission]] = {
    Role.ADMIN: frozenset(Permission),
    Role.PLANNER: frozenset({Permission.READ_UNITS, Permission.EDIT_BOUNDARIES}),
    Role.STAFF: frozenset({Permission.READ_UNITS, Permission.READ_MEMBERS,
                           Permission.WRITE_MEMBERS}),
    Role.MEMBER: frozenset({Permission.READ_OWN_RECORD}),
    # the loop's rules decide what these may do with each need (gridsvc.services.loop)
    Role.RESIDENT: frozenset(),
    Role.UNIT: frozenset(),
    Role.PUBLIC: frozenset(),
}

# Roles whose token is bound to a subtree (None = the whole city); admin is always city-wide.
SCOPED_ROLES = frozenset({Role.PLANNER, Role.STAFF})


@dataclass(frozen=True)
class Principal:
    """The caller of one request or command."""

    role: Role
    name: str  # the account's name, as the audit log records it
    token_id: int | None = None
    scope_code: str | None = None  # root unit of the subtree; None = the whole city
    scope_path: str | None = None  # that unit's path, "/S01/C01/"
    member_id: int | None = None  # for the member role: whose record
    resident_id: int | None = None  # for the resident role: who
    work_org_id: int | None = None  # for the unit role: which work-unit organisation

    def may(self, permission: Permission) -> bool:
        return permission in ROLE_PERMISSIONS[self.role]

    @property
    def city_wide(self) -> bool:
        return self.role is Role.ADMIN or (self.role in SCOPED_ROLES and self.scope_path is None)

    def covers(self, path: str | None) -> bool:
        """Is the unit with this ``path`` inside the caller's subtree?"""
        if self.role not in SCOPED_ROLES and self.role is not Role.ADMIN:
            return False
        if self.scope_path is None:
            return True
        return path is not None and path.startswith(self.scope_path)

    @property
    def scope_label(self) -> str:
        return self.scope_code or "the whole city"


PUBLIC = Principal(Role.PUBLIC, "public")


def system_principal(purpose: str) -> Principal:
    """The service acting for itself (a health check's count, the read before a scoped write's
    own check): an administrator, recorded in the audit log as ``system:<purpose>``."""
    return Principal(Role.ADMIN, f"system:{purpose}")


def cli_principal() -> Principal:
    """The command line runs with the database's credentials: an administrator, recorded in
    the audit log as ``cli:<os user>``."""
    try:
        user = getpass.getuser()
    except Exception:  # no user name in a bare container
        user = "unknown"
    return Principal(Role.ADMIN, f"cli:{user}")

"""API tokens: create (shown once), verify, list and revoke.

A token is ``gs_`` + 43 URL-safe characters (256 random bits). Only its SHA-256 hash is stored
(see ``ApiToken``). Planner and staff tokens carry a scope unit (the root of their subtree;
none = the whole city), member tokens the member whose record they may read, resident tokens
the resident (service loop), unit tokens the work-unit organisation whose secretary holds it.

Each process remembers a verified token for ``Settings.token_cache_seconds`` (default 5 s), so a
busy client costs no token query per request: a revocation made by another process (the CLI,
another worker) takes effect within that time; one made in the same process at once.
"""

from __future__ import annotations

import hashlib
import secrets
import time
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import select

from gridsvc.access import SCOPED_ROLES, Principal, Role
from gridsvc.services.context import Services
from gridsvc.services.errors import InvalidInput, NotFound
from gridsvc.storage.loop_models import Resident
from gridsvc.storage.models import ApiToken, Member, Unit, WorkOrg, utcnow

TOKEN_PREFIX = "gs_"


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8", "surrogatepass")).hexdigest()


def create_token(
    services: Services,
    name: str,
    role: str,
    *,
    unit: str | None = None,
    member_id: int | None = None,
    resident_id: int | None = None,
    work_org_id: int | None = None,
    expires_days: int | None = None,
) -> tuple[str, dict[str, Any]]:
    """Store a new token and return it in clear (the only time) with its description."""
    name = (name or "").strip()
    if not name or len(name) > 100:
        raise InvalidInput("give the token a name of 1-100 characters", field="name")
    try:
        role_ = Role(role)
    except ValueError:
        roles = ", ".join(r.value for r in Role if r is not Role.PUBLIC)
        raise InvalidInput(f"role must be one of {roles}, got {role!r}", field="role") from None
    if role_ is Role.PUBLIC:
        raise InvalidInput("the public needs no token", field="role")
    if unit and role_ not in SCOPED_ROLES:
        raise InvalidInput(f"a {role_} token has no subtree; only planner and staff tokens "
                           "take a unit", field="unit")
    if (member_id is not None) != (role_ is Role.MEMBER):
        raise InvalidInput("a member token needs the member's id, and only a member token "
                           "takes one", field="member_id")
    if (resident_id is not None) != (role_ is Role.RESIDENT):
        raise InvalidInput("a resident token needs the resident's id, and only a resident "
                           "token takes one", field="resident_id")
    if (work_org_id is not None) != (role_ is Role.UNIT):
        raise InvalidInput("a unit token needs the work-unit organisation's id, and only a "
                           "unit token takes one", field="work_org_id")
    if expires_days is not None and expires_days <= 0:
        raise InvalidInput("expires_days must be a positive number of days",
                           field="expires_days")
    token = TOKEN_PREFIX + secrets.token_urlsafe(32)
    with services.db.session() as session:
        if unit and session.scalar(select(Unit.id).where(Unit.code == unit)) is None:
            raise NotFound(f"no unit with code {unit!r}", field="unit")
        if member_id is not None and session.get(Member, member_id) is None:
            raise NotFound(f"no member with id {member_id}", field="member_id")
        if resident_id is not None and session.get(Resident, resident_id) is None:
            raise NotFound(f"no resident with id {resident_id}", field="resident_id")
        if work_org_id is not None and session.get(WorkOrg, work_org_id) is None:
            raise NotFound(f"no work-unit organisation with id {work_org_id}",
                           field="work_org_id")
        row = ApiToken(
            name=name, role=role_.value, scope_code=unit or None, member_id=member_id,
            resident_id=resident_id, work_org_id=work_org_id,
            token_hash=hash_token(token), prefix=token[:8],
            expires_at=utcnow() + timedelta(days=expires_days) if expires_days else None,
        )
        session.add(row)
        session.flush()
        return token, _describe(row)


_cache: dict[tuple[int, str], tuple[float, Principal | None]] = {}
CACHE_MAX = 10_000


def verify_token(services: Services, token: str) -> Principal | None:
    """The principal of a live token, or None when it is unknown, revoked, expired, or its
    scope unit no longer exists (remembered for ``token_cache_seconds``)."""
    if not token.startswith(TOKEN_PREFIX) or len(token) > 200:
        return None
    key, now = (id(services), hash_token(token)), time.monotonic()
    hit = _cache.get(key)
    if hit is not None and hit[0] > now:
        return hit[1]
    principal = _verify(services, key[1])
    ttl = services.settings.token_cache_seconds
    if ttl > 0:
        if len(_cache) >= CACHE_MAX:
            _cache.clear()
        _cache[key] = (now + ttl, principal)
    return principal


def forget_tokens() -> None:
    """Drop every remembered verification (after a revocation in this process)."""
    _cache.clear()


def _verify(services: Services, digest: str) -> Principal | None:
    with services.db.session() as session:
        row = session.scalar(select(ApiToken).where(ApiToken.token_hash == digest))
        if row is None or row.revoked_at is not None:
            return None
        if row.expires_at is not None and row.expires_at <= utcnow():
            return None
        scope_path = None
        if row.scope_code:
            scope_path = session.scalar(select(Unit.path).where(Unit.code == row.scope_code))
            if scope_path is None:
                return None
        return Principal(Role(row.role), row.name, token_id=row.id, scope_code=row.scope_code,
                         scope_path=scope_path, member_id=row.member_id,
                         resident_id=row.resident_id, work_org_id=row.work_org_id)


def list_tokens(services: Services, *, include_revoked: bool = False) -> list[dict[str, Any]]:
    with services.db.session() as session:
        query = select(ApiToken).order_by(ApiToken.id)
        if not include_revoked:
            query = query.where(ApiToken.revoked_at.is_(None))
        return [_describe(row) for row in session.scalars(query)]


def revoke_token(services: Services, token_id: int) -> dict[str, Any]:
    with services.db.session() as session:
        row = session.get(ApiToken, token_id)
        if row is None:
            raise NotFound(f"no token with id {token_id}", field="token_id")
        if row.revoked_at is None:
            row.revoked_at = utcnow()
        described = _describe(row)
    forget_tokens()
    return described


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value else None


def _describe(row: ApiToken) -> dict[str, Any]:
    return {
        "id": row.id, "name": row.name, "role": row.role, "unit": row.scope_code,
        "member_id": row.member_id, "resident_id": row.resident_id,
        "work_org_id": row.work_org_id, "prefix": row.prefix, "created_at": _iso(row.created_at),
        "expires_at": _iso(row.expires_at), "revoked_at": _iso(row.revoked_at),
    }

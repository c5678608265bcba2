"""Who is calling: ``current_principal()`` from the ``Authorization: Bearer <token>`` header,
and ``require(permission)`` at the top of a view.

Browsers showing the map pages may instead hold the token in the ``gridsvc_token`` cookie
(HttpOnly, SameSite=Strict; set by ``POST /session``), honoured for GET and HEAD and for
POSTs to views marked ``@checks_only`` (they store nothing, e.g. the validation page's upload
form): a request that writes must carry the header, so a forged cross-site form cannot write.

No header is the public (``gridsvc.access.PUBLIC``). A header that is not a live token is a 401
/problems/unauthorized with ``WWW-Authenticate: Bearer`` (never silently public, so a client
with a revoked token learns it). A public caller without the permission gets 401, a token
without it 403 /problems/forbidden. Tokens are made with ``gridsvc token create``.
"""

from __future__ import annotations

from flask import abort, current_app, g, request

from gridsvc.access import PUBLIC, Permission, Principal, Role
from gridsvc.services.accounts import verify_token
from gridsvc.web import current_services
from gridsvc.web.problems import problem_response

TOKEN_COOKIE = "gridsvc_token"


def current_principal() -> Principal:
    """The caller of this request (verified once per request)."""
    principal = g.get("principal")
    if principal is None:
        header = request.headers.get("Authorization", "")
        if not header.strip() and (request.method in ("GET", "HEAD") or _stores_nothing()):
            cookie = request.cookies.get(TOKEN_COOKIE, "")
            header = f"Bearer {cookie}" if cookie else ""
        principal = g.principal = _from_header(header)
    return principal


def _stores_nothing() -> bool:
    """Is this a view marked ``@checks_only`` (``gridsvc.web.audit``)?"""
    view = current_app.view_functions.get(request.endpoint or "")
    return bool(getattr(view, "_audit_skip", False))


def _from_header(header: str) -> Principal:
    if not header.strip():
        return PUBLIC
    scheme, _, token = header.strip().partition(" ")
    principal = None
    if scheme.lower() == "bearer" and token.strip():
        principal = verify_token(current_services(), token.strip())
    if principal is None:
        _unauthorized("the Authorization header holds no live token: send "
                      "'Authorization: Bearer <token>' with a token from 'gridsvc token create' "
                      "that is not revoked or expired")
    return principal


def require(permission: Permission, *alternatives: Permission) -> Principal:
    """Return the caller when their role has ``permission`` (or one of ``alternatives``);
    otherwise abort with 401/403."""
    principal = current_principal()
    if any(principal.may(p) for p in (permission, *alternatives)):
        return principal
    if principal.role is Role.PUBLIC:
        _unauthorized(f"this endpoint needs a token whose role may {permission.value}: send "
                      "'Authorization: Bearer <token>'")
    abort(problem_response(403, "forbidden",
                           f"a {principal.role.value} token may not {permission.value}"))


def _unauthorized(detail: str) -> None:
    response = problem_response(401, "unauthorized", detail)
    response.headers["WWW-Authenticate"] = 'Bearer realm="gridsvc"'
    g.principal = PUBLIC  # so the audit entry of the refusal names the caller as public
    abort(response)

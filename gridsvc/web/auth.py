"""Who is calling: ``current_principal()`` from the ``Authorization: Bearer <token>`` header,
and ``require(permission)`` at the top of a view.

Browsers showing the map pages may instead hold the token in the ``gridsvc_token`` cookie
(HttpOnly, SameSite=Strict; set by ``POST /session``), honoured for GET, HEAD and OPTIONS, and
for any other method only with the cookie's CSRF token (``gridsvc.web.csrf``: the
``X-CSRF-Token`` header or the ``csrf_token`` form field), so a forged form from another
origin cannot act with the browser's cookie. ``page_csrf_token()`` is the token a page embeds.
A request with an Authorization header never uses the cookie and needs no CSRF token.

On ``/ogc`` only, ``Authorization: Basic`` is accepted too, the token as the password (any
user name): desktop GIS that cannot send a header of its own (QGIS 3.22's connection dialog)
have Basic authentication. Basic sends the token readable on the wire, so over plain HTTP it
is refused (401 saying why) unless ``GRIDSVC_ALLOW_BASIC_HTTP`` is on or the request comes
from and is addressed to this host (127.0.0.1/::1/localhost, no network crossed); HTTPS, also
behind a trusted proxy's ``X-Forwarded-Proto`` (``GRIDSVC_PROXY_HOPS``), always allows it. A
401 on ``/ogc`` then offers both challenges, ``Bearer`` and ``Basic``.

No header is the public (``gridsvc.access.PUBLIC``). A header that is not a live token is a 401
/problems/unauthorized with ``WWW-Authenticate: Bearer`` (never silently public, so a client
with a revoked token learns it). A public caller without the permission gets 401, a token
without it 403 /problems/forbidden. Tokens are made with ``gridsvc token create``.
"""

from __future__ import annotations

import base64
import binascii
import ipaddress
from typing import NoReturn
from urllib.parse import urlsplit

from flask import abort, g, request
from sqlalchemy.exc import SQLAlchemyError

from gridsvc.access import PUBLIC, Permission, Principal, Role
from gridsvc.services.accounts import verify_token
from gridsvc.storage.engine import is_unavailable
from gridsvc.web import csrf, current_services
from gridsvc.web.problems import problem_response

TOKEN_COOKIE = "gridsvc_token"


def current_principal() -> Principal:
    """The caller of this request (verified once per request)."""
    principal = g.get("principal")
    if principal is None:
        header = request.headers.get("Authorization", "")
        cookie = request.cookies.get(TOKEN_COOKIE, "").strip()
        if not header.strip() and cookie:
            if request.method in csrf.SAFE_METHODS or csrf.carries_token(cookie):
                header = f"Bearer {cookie}"
            else:
                g.csrf_missing = True  # the cookie alone does not authorise this write
        principal = g.principal = _from_header(header)
    return principal


def caller_or_public() -> Principal:
    """``current_principal()`` for the public endpoints (the lookup): the public when the
    database cannot verify the token now, so the lookup keeps answering from its index
    through an outage (with what the public may see)."""
    try:
        return current_principal()
    except SQLAlchemyError as exc:
        if not is_unavailable(exc):
            raise
        g.principal = PUBLIC  # once per request, not once per question
        return PUBLIC


def page_csrf_token() -> str | None:
    """The CSRF token of this browser's session, for a page to embed (None: not signed in)."""
    cookie = request.cookies.get(TOKEN_COOKIE, "").strip()
    return csrf.token_for(cookie) if cookie else None


def _from_header(header: str) -> Principal:
    if not header.strip():
        return PUBLIC
    scheme, _, token = header.strip().partition(" ")
    principal = None
    if scheme.lower() == "basic" and _basic_path():
        token = _basic_token(token)
        scheme = "bearer"
    if scheme.lower() == "bearer" and token.strip():
        principal = verify_token(current_services(), token.strip())
    if principal is None:
        _unauthorized("the Authorization header holds no live token: send "
                      "'Authorization: Bearer <token>' with a token from 'gridsvc token create' "
                      "that is not revoked or expired")
    return principal


def _basic_path() -> bool:
    return request.path == "/ogc" or request.path.startswith("/ogc/")


def basic_allowed() -> bool:
    """Whether this request may sign in with HTTP Basic (see the module's docstring)."""
    if not _basic_path():
        return False
    if request.is_secure or current_services().settings.allow_basic_http:
        return True
    return _is_loopback(request.remote_addr) and _is_loopback(
        urlsplit("//" + request.host).hostname)


def _is_loopback(host: str | None) -> bool:
    if not host:
        return False
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _basic_token(credentials: str) -> str:
    """The password of Basic credentials (the token); 401 when refused or malformed."""
    if not basic_allowed():
        _unauthorized("HTTP Basic sends the token readable on the wire: it is accepted over "
                      "HTTPS only (or when GRIDSVC_ALLOW_BASIC_HTTP is on); use HTTPS, or send "
                      "'Authorization: Bearer <token>'")
    try:
        decoded = base64.b64decode(credentials.strip(), validate=True).decode("utf-8")
    except (binascii.Error, UnicodeDecodeError):
        decoded = ""
    _user, sep, password = decoded.partition(":")
    if not sep or not password.strip():
        _unauthorized("HTTP Basic credentials must be base64 of 'any-name:<token>': the token "
                      "from 'gridsvc token create' is the password")
    return password.strip()


def require(permission: Permission, *alternatives: Permission) -> Principal:
    """Return the caller when their role has ``permission`` (or one of ``alternatives``);
    otherwise abort with 401/403."""
    principal = current_principal()
    if any(principal.may(p) for p in (permission, *alternatives)):
        return principal
    if principal.role is Role.PUBLIC and g.get("csrf_missing"):
        abort(problem_response(
            403, "forbidden",
            f"the browser's sign-in cookie authorises a {request.method} only with the page's "
            f"CSRF token (the {csrf.HEADER} header or the {csrf.FORM_FIELD} form field, from "
            "a page of this site); API clients send 'Authorization: Bearer <token>'"))
    if principal.role is Role.PUBLIC:
        _unauthorized(f"this endpoint needs a token whose role may {permission.value}: send "
                      "'Authorization: Bearer <token>'")
    abort(problem_response(403, "forbidden",
                           f"a {principal.role.value} token may not {permission.value}"))


def _unauthorized(detail: str) -> NoReturn:
    response = problem_response(401, "unauthorized", detail)
    response.headers["WWW-Authenticate"] = 'Bearer realm="gridsvc"'
    if basic_allowed():
        response.headers["WWW-Authenticate"] += ', Basic realm="gridsvc", charset="UTF-8"'
    g.principal = PUBLIC  # so the audit entry of the refusal names the caller as public
    abort(response)

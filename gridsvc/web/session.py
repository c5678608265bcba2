"""Signing a browser in for the map pages: the token in an HttpOnly cookie.

A browser cannot send an Authorization header when it loads a page, so:

- ``GET /session``: a small login page (a form with one ``token`` field);
- ``POST /session`` (form field ``token``, or JSON ``{"token": ...}``): checks the token and
  sets it as the ``gridsvc_token`` cookie (HttpOnly, SameSite=Strict, Secure over HTTPS, for the
  whole site, until the browser closes); then redirects (303) to ``next`` when it names a path
  of this site, else 204. An unknown, revoked or expired token is 401 and sets nothing;
- ``DELETE /session`` or ``POST /session/logout``: removes the cookie (204, or 303 to the
  login page from its form).

``gridsvc.web.auth`` honours the cookie for GET and HEAD, and for other methods only with the
CSRF token the pages of this site embed (``gridsvc.web.csrf``; the validation page's upload
form and the editor send it). A sign-in or sign-out carrying an ``Origin`` of another site is
refused (403), so another site cannot sign a browser in or out.

``require_page(permission)`` is ``require`` for a page: a browser (that prefers HTML) that is
not signed in, or whose token may not, gets a small page with the same status (401/403) that
links to the login page and comes back here after signing in.
"""

from __future__ import annotations

from html import escape
from urllib.parse import urlsplit

from flask import Blueprint, Response, abort, g, redirect, render_template, request, url_for
from werkzeug.exceptions import HTTPException
from werkzeug.wrappers import Response as BaseResponse

from gridsvc.access import Permission, Principal
from gridsvc.services.accounts import verify_token
from gridsvc.web import current_services
from gridsvc.web.audit import set_target
from gridsvc.web.auth import TOKEN_COOKIE, current_principal, require
from gridsvc.web.problems import problem_response

bp = Blueprint("session", __name__)
HTML = "text/html"


def wants_html() -> bool:
    """Does the client name HTML in Accept and prefer it to JSON (a browser loading a page,
    not curl's or fetch()'s ``*/*``)?"""
    accept = request.accept_mimetypes
    named = any(value in (HTML, "application/xhtml+xml") for value, _q in accept)
    return named and accept.best_match([HTML, "application/json",
                                        "application/problem+json"]) == HTML


def _safe_next(target: str | None) -> str | None:
    """``target`` when it is a path on this site (never another host: no open redirect)."""
    if not target or not target.startswith("/") or target.startswith("//") or "\\" in target:
        return None
    parts = urlsplit(target)
    return target if not parts.scheme and not parts.netloc else None


def _same_origin() -> bool:
    """No Origin header (a script, curl) or this site's own host."""
    origin = request.headers.get("Origin")
    return origin is None or urlsplit(origin).netloc == request.host


def _login_page(status: int, message: str = "", next_path: str | None = None) -> Response:
    html = render_template("login.html", message=message, next=next_path or "",
                           signed_in=_signed_in_as())
    return Response(html, status=status, mimetype=HTML,
                    headers={"Cache-Control": "no-store"})


def _signed_in_as() -> Principal | None:
    if not request.cookies.get(TOKEN_COOKIE):
        return None
    try:
        return verify_token(current_services(), request.cookies[TOKEN_COOKIE])
    except Exception:  # the page still shows the form when the database hiccups
        return None


def require_page(permission: Permission) -> Principal:
    """``require(permission)`` for an HTML page: a browser gets a page linking to the login
    page (status 401 or 403 kept) instead of problem+json."""
    try:
        return require(permission)
    except HTTPException as exc:
        status = exc.response.status_code if exc.response is not None else exc.code
        if status not in (401, 403) or not wants_html():
            raise
        here = request.full_path.rstrip("?")
        login = url_for("session.login_page", next=here)
        what = ("this page needs you to sign in" if status == 401 else
                "this form came without the CSRF token of a page of this site: open the page "
                "here and send it again" if g.get("csrf_missing") else
                f"a {current_principal().role.value} token may not {permission.value} here")
        html = (f"<!doctype html><html lang='en'><meta charset='utf-8'><title>Sign in · "
                f"gridsvc</title><p>{escape(what[0].upper() + what[1:])}.</p>"
                f"<p><a href='{escape(login)}'>Sign in with a token</a></p></html>")
        response = Response(html, status=status, mimetype=HTML)
        if exc.response is not None and "WWW-Authenticate" in exc.response.headers:
            response.headers["WWW-Authenticate"] = exc.response.headers["WWW-Authenticate"]
        abort(response)


@bp.get("/session")
def login_page() -> Response:
    """The login form."""
    return _login_page(200, next_path=_safe_next(request.args.get("next")))


@bp.post("/session")
def sign_in() -> BaseResponse:
    if not _same_origin():
        return problem_response(403, "forbidden", "signing in must come from this site")
    data = request.get_json(silent=True) if request.is_json else None
    token = (data.get("token") if isinstance(data, dict) else request.form.get("token")) or ""
    token = str(token).strip()
    next_path = _safe_next(request.form.get("next") or request.args.get("next"))
    principal = verify_token(current_services(), token) if token else None
    if principal is None:
        detail = ("the token is unknown, revoked or expired" if token else
                  "send the token as the form field 'token'")
        if wants_html():
            return _login_page(401, detail.capitalize() + ".", next_path)
        refused = problem_response(401, "unauthorized", detail)
        refused.headers["WWW-Authenticate"] = 'Bearer realm="gridsvc"'
        return refused
    g.principal = principal  # the audit log records who signed in
    set_target(f"token:{principal.token_id}")
    response: BaseResponse = redirect(next_path, 303) if next_path else Response(status=204)
    response.set_cookie(TOKEN_COOKIE, token, httponly=True, samesite="Strict",
                        secure=request.is_secure, path="/")
    response.headers["Cache-Control"] = "no-store"
    return response


@bp.delete("/session")
def sign_out() -> Response:
    if not _same_origin():
        return problem_response(403, "forbidden", "signing out must come from this site")
    response = Response(status=204)
    response.delete_cookie(TOKEN_COOKIE, path="/", httponly=True, samesite="Strict",
                           secure=request.is_secure)
    return response


@bp.post("/session/logout")
def sign_out_form() -> Response:
    """The login page's sign-out button (a form cannot send DELETE)."""
    response = sign_out()
    if response.status_code == 204:
        response.status_code = 303
        response.headers["Location"] = url_for("session.login_page")
    return response

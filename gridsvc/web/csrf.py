"""CSRF tokens for writes that a browser authorises with the ``gridsvc_token`` cookie.

Rules (``gridsvc.web.auth`` applies them; no view marker is involved):

- a GET, HEAD or OPTIONS may be authorised by the cookie alone;
- any other method (POST, PUT, PATCH, DELETE) is authorised by the cookie only when the request
  also carries the CSRF token of that cookie, in the ``X-CSRF-Token`` header (scripts) or the
  ``csrf_token`` form field (HTML forms); otherwise the cookie is ignored, so the caller is the
  public and a view that needs a token answers 403 ``forbidden`` naming the missing token;
- a request with an ``Authorization`` header (API clients) never needs it.

The token is ``HMAC-SHA256(key=session token, "gridsvc-csrf-v1")``, hex: bound to the session,
unforgeable without the session token (256 random bits), the same in every worker and host
(nothing to configure or share) and useless after sign-out or revocation. It is never put in
a cookie: cookies are shared by every port of a host (a page on ``127.0.0.1:8080`` can read
and set the cookies of ``127.0.0.1:5000``, and SameSite treats them as one site), so the token
travels only inside pages this site renders (``<meta name="csrf-token">`` and the forms'
hidden field), which another origin cannot read.
"""

from __future__ import annotations

import hashlib
import hmac
from html import escape

import folium
from flask import Response, request

from gridsvc.maps.assets import figure_of
from gridsvc.maps.safe_html import RawHtml, render_page
from gridsvc.web.security_headers import script_nonce

HEADER = "X-CSRF-Token"
FORM_FIELD = "csrf_token"
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
_LABEL = b"gridsvc-csrf-v1"


def token_for(session_token: str) -> str:
    """The CSRF token of a session (cookie) token."""
    return hmac.new(session_token.encode(), _LABEL, hashlib.sha256).hexdigest()


def carries_token(session_token: str) -> bool:
    """Does this request carry the CSRF token of ``session_token`` (header or form field)?"""
    sent = request.headers.get(HEADER, "")
    if not sent and request.mimetype in ("multipart/form-data",
                                         "application/x-www-form-urlencoded"):
        sent = request.form.get(FORM_FIELD, "")
    return bool(sent) and hmac.compare_digest(sent.strip(), token_for(session_token))


def map_page(m: folium.Map, token: str | None) -> Response:
    """The rendered map page; with a token (the browser is signed in by cookie) its head holds
    ``<meta name="csrf-token" content="...">`` for the page's scripts, and the page is never
    kept by a shared cache."""
    if token:
        tag = f'<meta name="csrf-token" content="{escape(token)}">'
        figure_of(m).header.add_child(RawHtml(tag), name="gridsvc-csrf")
    # its inline scripts carry this response's CSP nonce (gridsvc.web.security_headers)
    response = Response(render_page(figure_of(m), script_nonce()), mimetype="text/html")
    if token:
        response.headers["Cache-Control"] = "private, no-store"
    return response

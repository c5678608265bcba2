"""Security headers on every response the app gives (JSON, pages, static files, errors).

- ``Content-Security-Policy``: scripts only from this origin (``script-src 'self'``), plus,
  on a page that has inline scripts (the folium map pages and the editor), the nonce of that
  response (``script_nonce()``, fresh per response) and the hashes of folium's constant header
  scripts; never ``'unsafe-inline'`` for scripts, so markup that stored text might smuggle into
  a page runs nothing. Styles may be inline (Leaflet and folium position everything with
  them); images from anywhere (base-map tiles come from the configured tile server); fetches,
  fonts, forms and everything else from this origin only; no plugins (``object-src 'none'``),
  no ``<base>`` (``base-uri 'none'``), and no framing (``frame-ancestors 'none'``: no page of
  gridsvc embeds another).
- ``X-Content-Type-Options: nosniff``, ``X-Frame-Options: DENY``, and
  ``Referrer-Policy: strict-origin-when-cross-origin`` (a tile server learns the origin, never
  a path or query, which may hold an address).

Cache-Control is not set here (see ``caching``). ``HEADERS`` is also what answers given before
the app runs carry (``gridsvc.web.edge``).
"""

from __future__ import annotations

import secrets

from flask import Flask, Response, g

from gridsvc.maps.safe_html import constant_script_hashes

BASE_POLICY = {
    "default-src": "'self'",
    "script-src": "'self'",
    "style-src": "'self' 'unsafe-inline'",
    "img-src": "* data: blob:",
    "font-src": "'self' data:",
    "connect-src": "'self'",
    "object-src": "'none'",
    "base-uri": "'none'",
    "form-action": "'self'",
    "frame-ancestors": "'none'",
}
HEADERS = {
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "strict-origin-when-cross-origin",
}


def policy(nonce: str | None = None) -> str:
    """The Content-Security-Policy value; with ``nonce``, inline scripts carrying it (and
    folium's constant header scripts) may run."""
    directives = dict(BASE_POLICY)
    if nonce:
        directives["script-src"] = " ".join(
            ["'self'", f"'nonce-{nonce}'", *constant_script_hashes()])
    return "; ".join(f"{name} {value}" for name, value in directives.items())


def edge_headers() -> list[tuple[str, str]]:
    """The headers of an answer given before the app (no inline script there)."""
    return [("Content-Security-Policy", policy()), *HEADERS.items()]


def script_nonce() -> str:
    """This response's CSP nonce, for the page's inline <script> elements."""
    if "csp_nonce" not in g:
        g.csp_nonce = secrets.token_urlsafe(18)
    return g.csp_nonce


def _add_headers(response: Response) -> Response:
    response.headers["Content-Security-Policy"] = policy(g.get("csp_nonce"))
    for name, value in HEADERS.items():
        response.headers.setdefault(name, value)
    return response


def install(app: Flask) -> None:
    """Send the headers on every response of ``app``."""
    app.after_request(_add_headers)

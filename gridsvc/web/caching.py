"""Cache-Control on answers that depend on who asks.

Every answer under ``/ogc``, ``/api/v1`` and the map pages (``/maps/...``) may differ per token
or signed-in cookie (the subtree a token sees, contacts shown per caller), so, unless the view
set its own ``Cache-Control``, it is ``Cache-Control: private, no-store`` with
``Vary: Authorization, Cookie``: no shared cache keeps it and a client's disk cache (QGIS keeps
one) never holds leaders' names and phones, nor answers one connection's token with another's.
``no-store`` rather than ``no-cache`` with revalidation: the ETags of single features still
give 304 to a client that sends If-None-Match itself. The public documents of the OGC API
(``/ogc``, ``/ogc/conformance``, ``/ogc/api``) are the same for every caller and get
``Cache-Control: no-cache`` (revalidate: they change when the service is upgraded).
"""

from __future__ import annotations

from flask import Flask, Response, request

PERSONAL_PREFIXES = ("/ogc", "/api/v1", "/maps")
PUBLIC_PATHS = {"/ogc", "/ogc/", "/ogc/conformance", "/ogc/api"}
NO_STORE = "private, no-store"


def cache_headers(response: Response) -> Response:
    path = request.path
    if not path.startswith(PERSONAL_PREFIXES) or "Cache-Control" in response.headers:
        return response
    if path in PUBLIC_PATHS and response.status_code < 400:
        response.headers["Cache-Control"] = "no-cache"
        return response
    response.headers["Cache-Control"] = NO_STORE
    response.vary.add("Authorization")
    response.vary.add("Cookie")
    return response


def install(app: Flask) -> None:
    app.after_request(cache_headers)

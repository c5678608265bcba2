"""The Flask web layer: an app factory and one blueprint per resource.

Blueprints call the service layer (``gridsvc.services``) only; the ``Services`` object lives in
``app.extensions["gridsvc"]``. Nothing here runs at import time.
"""

from __future__ import annotations

from flask import Flask, current_app

from gridsvc import logsafe
from gridsvc.services.context import Services
from gridsvc.settings import Settings


def create_app(settings: Settings | None = None) -> Flask:
    """Build the app for ``settings`` (``Settings.from_env()`` when none are given)."""
    from gridsvc.io.uploads import remove_stale
    from gridsvc.web import (
        audit,
        boundaries,
        caching,
        coverage,
        editor,
        limits,
        lookup,
        loop,
        members,
        meta,
        ogc,
        params,
        ratelimit,
        security_headers,
        session,
        units,
        vendor,
    )
    from gridsvc.web import maps as map_pages
    from gridsvc.web.problems import register_problem_handlers

    logsafe.install()
    settings = settings or Settings.from_env()
    app = Flask(__name__)
    params.install(app)  # ids past SQL integers are 404, JSON nested too deep 400
    limits.install(app, settings)  # body size limits (413), trusted proxies
    security_headers.install(app)  # CSP, nosniff, no framing on every response
    caching.install(app)  # private, no-store on answers that depend on the token
    app.json.ensure_ascii = False  # type: ignore[attr-defined]  # Chinese names stay readable
    app.json.sort_keys = False  # type: ignore[attr-defined]  # DefaultJSONProvider has it
    app.extensions["gridsvc"] = Services.from_settings(settings)
    remove_stale(settings.uploads)  # what a killed process left of its uploads
    register_problem_handlers(app)
    audit.install(app)
    app.register_blueprint(meta.bp)
    app.register_blueprint(units.bp)
    app.register_blueprint(boundaries.bp)
    app.register_blueprint(coverage.bp)
    app.register_blueprint(lookup.bp)
    app.register_blueprint(members.bp)
    app.register_blueprint(loop.bp)
    app.register_blueprint(map_pages.bp)
    app.register_blueprint(vendor.bp)
    app.register_blueprint(editor.bp)
    app.register_blueprint(ogc.bp)
    app.register_blueprint(session.bp)
    ratelimit.install(app, settings)  # the public lookup's rate limit (429)
    return app


def current_services() -> Services:
    return current_app.extensions["gridsvc"]

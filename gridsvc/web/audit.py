"""Recording requests in the audit log, and reading it (``GET /api/v1/audit``, admin only).

``install(app)`` adds a hook after every request that records:

- every request that may write (POST, PUT, PATCH, DELETE) to a known route, unless its view is
  marked ``@checks_only`` (it reads or checks and never stores, e.g. a batch lookup);
- every request to a view marked ``@personal_read`` (it returns personal data), including
  refused ones.

The target is what the view put in ``g.audit_target``, else the route's record id (``unit:``,
``member:``, ``roster:``, ``work-org:``, ``token:``); ``g.audit_detail`` adds counts. No
personal data goes into an entry: ids and codes only.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Any, TypeVar

from flask import Blueprint, Flask, Response, current_app, g, request
from sqlalchemy.exc import SQLAlchemyError
from werkzeug.exceptions import HTTPException

from gridsvc.access import Permission, Principal
from gridsvc.services import audit
from gridsvc.services.errors import InvalidInput
from gridsvc.storage.engine import is_unavailable
from gridsvc.web import current_services
from gridsvc.web.auth import current_principal, require
from gridsvc.web.geojson import json_response
from gridsvc.web.params import int_arg, text_arg
from gridsvc.web.problems import database_unavailable

bp = Blueprint("audit", __name__, url_prefix="/api/v1")

WRITE_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})
TARGET_ARGS = {"code": "unit", "member_id": "member", "roster_id": "roster",
               "org_id": "work-org", "token_id": "token", "feature_id": "unit"}

F = TypeVar("F", bound=Callable[..., Any])


def personal_read(view: F) -> F:
    """Mark a view that returns personal data: every call is recorded."""
    view._audit_read = True  # type: ignore[attr-defined]  # a marker attribute on the view
    return view


def checks_only(view: F) -> F:
    """Mark a POST view that stores nothing (a check or a lookup): not recorded."""
    view._audit_skip = True  # type: ignore[attr-defined]  # a marker attribute on the view
    return view


def set_target(target: str, **detail: Any) -> None:
    g.audit_target = target
    g.setdefault("audit_detail", {}).update(detail)


def install(app: Flask) -> None:
    app.after_request(_record_request)
    app.register_blueprint(bp)


def _record_request(response: Response) -> Response:
    """Record the request when it must be. A personal read whose entry cannot be stored (the
    database down, or an SQLite write lock held past the busy timeout) is not served: 503
    with Retry-After instead of the data. A write has already happened and keeps its answer."""
    if request.url_rule is None or request.endpoint is None:
        return response
    view = current_app.view_functions.get(request.endpoint)
    is_read = getattr(view, "_audit_read", False)
    is_write = request.method in WRITE_METHODS and not getattr(view, "_audit_skip", False)
    if not (is_write or is_read):
        return response
    stored = False
    who = _caller()
    if who is not None:
        stored = audit.record(
            current_services(), who, f"{request.method} {request.url_rule.rule}",
            target=g.get("audit_target") or _target_from_route(),
            result=_result(response), status=response.status_code,
            detail=g.get("audit_detail"), remote=request.remote_addr,
        )
    if stored or not is_read or response.status_code >= 400:
        return response
    return database_unavailable("the read could not be recorded in the audit log (the "
                                "database is unavailable or busy), so it is not served; "
                                "retry in a few seconds")


def _caller() -> Principal | None:
    """Who made the request: as verified for it, else verified now; None when the token
    cannot be verified (the database is unavailable: the entry could not be stored either)."""
    principal = g.get("principal")
    if principal is not None:
        return principal
    try:
        return current_principal()
    except HTTPException:  # an unknown token: current_principal recorded the public
        return g.get("principal")
    except SQLAlchemyError as exc:
        if not is_unavailable(exc):
            raise
        return None


def _target_from_route() -> str | None:
    for arg, kind in TARGET_ARGS.items():
        if request.view_args and arg in request.view_args:
            return f"{kind}:{request.view_args[arg]}"
    return None


def _result(response: Response) -> str:
    if response.status_code < 400:
        return "ok"
    if response.mimetype == "application/problem+json":
        body = response.get_json(silent=True) or {}
        return str(body.get("type", "")).rsplit("/", 1)[-1] or "error"
    return "error"


def _time_arg(name: str) -> datetime | None:
    raw = text_arg(name)
    if raw is None:
        return None
    try:
        value = datetime.fromisoformat(raw.replace("Z", "+00:00"))
    except ValueError:
        raise InvalidInput(f"{name} must be an ISO 8601 time, got {raw!r}", field=name) from None
    if value.tzinfo is None:
        raise InvalidInput(f"{name} needs a time zone (e.g. +08:00 or Z)", field=name)
    return value


@bp.get("/audit")
def list_entries() -> Response:
    """The audit log, newest first (admin)."""
    viewer = require(Permission.READ_AUDIT)
    return json_response(audit.query(
        current_services(), viewer=viewer, actor=text_arg("actor"), action=text_arg("action"),
        target=text_arg("target"), since=_time_arg("since"), until=_time_arg("until"),
        limit=int_arg("limit", 100), offset=int_arg("offset", 0)))

"""Staff-only endpoints: ``require_staff()`` at the top of a view.

Until accounts and roles exist, a staff request carries ``Authorization: Bearer <token>`` with
the token of ``Settings.staff_token`` (``GRIDSVC_STAFF_TOKEN``). With no token configured the
staff endpoints are off (403 /problems/forbidden); a missing or wrong token is a 401
/problems/unauthorized with a ``WWW-Authenticate: Bearer`` header.
"""

from __future__ import annotations

import hmac

from flask import abort, request

from gridsvc.web import current_services
from gridsvc.web.problems import problem_response


def require_staff() -> None:
    """Return when the request carries the staff token; otherwise abort with a problem."""
    token = current_services().settings.staff_token
    if not token:
        abort(problem_response(
            403, "forbidden",
            "staff endpoints are off until GRIDSVC_STAFF_TOKEN is set",
        ))
    scheme, _, given = request.headers.get("Authorization", "").partition(" ")
    # bytes, so a non-ASCII header is a mismatch, not a TypeError
    matches = hmac.compare_digest(given.strip().encode(), token.encode())
    if scheme.lower() != "bearer" or not matches:
        response = problem_response(
            401, "unauthorized",
            "this endpoint is for staff: send 'Authorization: Bearer <staff token>'",
        )
        response.headers["WWW-Authenticate"] = 'Bearer realm="gridsvc staff"'
        abort(response)

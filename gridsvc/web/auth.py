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

# slug -> (title, meaning), for the /problems/<slug> pages.
AUTH_PROBLEMS = {
    "unauthorized": (
        "Unauthorized",
        "The endpoint is for staff: send 'Authorization: Bearer <staff token>' with the token "
        "of GRIDSVC_STAFF_TOKEN.",
    ),
    "forbidden": (
        "Forbidden",
        "Staff endpoints are off until GRIDSVC_STAFF_TOKEN is set on the server.",
    ),
}


def require_staff() -> None:
    """Return when the request carries the staff token; otherwise abort with a problem."""
    token = current_services().settings.staff_token
    if not token:
        abort(problem_response(
            403, "forbidden",
            "staff endpoints are off until GRIDSVC_STAFF_TOKEN is set",
            title=AUTH_PROBLEMS["forbidden"][0],
        ))
    scheme, _, given = request.headers.get("Authorization", "").partition(" ")
    if scheme.lower() != "bearer" or not hmac.compare_digest(given.strip(), token):
        response = problem_response(
            401, "unauthorized",
            "this endpoint is for staff: send 'Authorization: Bearer <staff token>'",
            title=AUTH_PROBLEMS["unauthorized"][0],
        )
        response.headers["WWW-Authenticate"] = 'Bearer realm="gridsvc staff"'
        abort(response)

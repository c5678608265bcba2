"""Every error as application/problem+json (RFC 9457).

``type`` is ``/problems/<slug>``, a page served by the meta blueprint that describes the
problem; ``title``, ``status``, ``detail`` and ``instance`` (the request path) follow, plus the
extension members a ``ServiceError`` carries in ``extra`` (``field``, ``code``, ``report``...).
Unexpected errors are logged with their traceback and answered with a generic 500.
"""

from __future__ import annotations

from typing import Any, cast

from flask import Flask, Response, current_app, request
from sqlalchemy.exc import SQLAlchemyError
from werkzeug.exceptions import HTTPException, MethodNotAllowed

from gridsvc.io.uploads import is_disk_full
from gridsvc.maps.basemap import BasemapError
from gridsvc.services.errors import ServiceError
from gridsvc.storage.engine import is_unavailable
from gridsvc.validation.text_rules import TextRuleError

PROBLEM_MIMETYPE = "application/problem+json"

# slug -> (title, what it means and what to do); the slugs are a stable public contract.
PROBLEM_TYPES: dict[str, tuple[str, str]] = {
    "not-found": ("Not found", "The unit, page or resource named in the request does not exist."),
    "invalid-input": (
        "Invalid input",
        "A query parameter, form field or uploaded file is not acceptable; `field` names it "
        "and `detail` says why.",
    ),
    "validation-failed": (
        "Validation failed",
        "The boundary data broke validation rules, so nothing was stored. `report` lists every "
        "problem with its row, code and field.",
    ),
    "conflict": ("Conflict", "The request conflicts with the stored data."),
    "precondition-failed": (
        "Precondition failed",
        "The unit changed since you read it: another planner saved it first, so your save was "
        "refused and nothing was stored. `version` is the stored version; GET the unit again "
        "(new ETag) and redo the edit.",
    ),
    "precondition-required": (
        "Precondition required",
        "Changing a unit needs If-Match with the unit's ETag from GET /api/v1/units/{code}, "
        "so a save can never overwrite someone else's silently ('*' is not accepted).",
    ),
    "method-not-allowed": (
        "Method not allowed",
        "The path exists but does not accept this HTTP method; the Allow header lists those "
        "it does.",
    ),
    "payload-too-large": (
        "Payload too large",
        "The request body is larger than its limit: GRIDSVC_MAX_UPLOAD_MB for a multipart "
        "upload, GRIDSVC_MAX_JSON_MB for any other (JSON) body. `setting` names the limit "
        "and `limit_bytes` gives it.",
    ),
    "not-acceptable": ("Not acceptable", "None of the requested media types can be produced."),
    "unsupported-media-type": (
        "Unsupported media type",
        "The request body is not in a format this endpoint accepts.",
    ),
    "unavailable": ("Service unavailable", "The service or its database cannot answer now."),
    "database-unavailable": (
        "Database unavailable",
        "The database cannot be reached or is busy (restarting, connection lost, locked). "
        "Retry after the seconds in Retry-After; the service reconnects by itself. A write "
        "that was cut off was rolled back or, rarely, committed: read before redoing it.",
    ),
    "storage-full": (
        "Storage full",
        "The service's disk (its upload folder, GRIDSVC_UPLOAD_DIR, or the database's) is "
        "full, so the request was refused and nothing was stored. Retry after the seconds in "
        "Retry-After, once the operator has freed space.",
    ),
    "rate-limited": (
        "Too many requests",
        "This client (its address, or its token when one is sent) sent more requests than "
        "the rate limit named in `setting` allows (`rate`): GRIDSVC_LOOKUP_RATE_LIMIT for "
        "lookups, GRIDSVC_REGISTRATION_RATE_LIMIT for self-registrations, "
        "GRIDSVC_MEMBERS_RATE_LIMIT for staff member searches, updates and roster uploads. "
        "Retry after the seconds in Retry-After; use the batch lookup for many points.",
    ),
    "archive-too-large": (
        "Archive too large to unpack",
        "The zip would unpack past a limit, so nothing was read or stored: more entries than "
        "GRIDSVC_ZIP_MAX_ENTRIES, more bytes in all than GRIDSVC_ZIP_MAX_MB, or an entry that "
        "expands more than GRIDSVC_ZIP_MAX_RATIO times (a zip bomb). `entry` names the "
        "entry, `setting` the limit and `limit` its value.",
    ),
    "internal-error": (
        "Internal error",
        "The service failed unexpectedly. The error was logged; please report the time and path.",
    ),
    "http-error": ("HTTP error", "The request failed; see `status` and `detail`."),
    "malformed-request": (
        "Malformed request",
        "The HTTP request could not be read (its request line, a header or the chunked body "
        "is malformed), so it never reached the service; `detail` says what.",
    ),
    "uri-too-long": (
        "URI too long",
        "The request line (path and query) is longer than the server reads (4094 bytes); "
        "send long inputs, such as many points, in a POST body instead.",
    ),
    "headers-too-large": (
        "Request header fields too large",
        "The request has more than 100 header fields, or one longer than 8190 bytes.",
    ),
    "unauthorized": (
        "Unauthorized",
        "The endpoint needs a token, or the one sent is unknown, revoked or expired: send "
        "'Authorization: Bearer <token>' with a token made by 'gridsvc token create'.",
    ),
    "forbidden": (
        "Forbidden",
        "The token's role may not do this, or the record lies outside the token's subtree "
        "(`detail` says which). Reads outside the subtree answer 404 instead, so they do not "
        "reveal what exists there.",
    ),
    "basemap-refused": (
        "Base map refused",
        "The configured base map (GRIDSVC_BASEMAP*) cannot be used for this page, e.g. gcj02 "
        "tiles under overlays that cannot be shifted; `detail` names the setting.",
    ),
    "not-covered": (
        "Point not covered by any micro-grid",
        "The point lies in no building micro-grid (a road, a park, between buildings). "
        "`nearest` names the closest micro-grid within GRIDSVC_NEAREST_RADIUS_M with its "
        "distance (fallback true: staff must confirm it), or is null.",
    ),
    "address-not-resolved": (
        "Address not resolved to a building",
        "The address did not match exactly one building: `match_status` says whether it was "
        "unmatched, weak (e.g. only the compound) or ambiguous, and `candidates` lists the "
        "closest gazetteer entries. Nothing is guessed; add the building number or district.",
    ),
}

HTTP_SLUGS = {
    400: "invalid-input",
    401: "unauthorized",
    403: "forbidden",
    404: "not-found",
    405: "method-not-allowed",
    406: "not-acceptable",
    409: "conflict",
    412: "precondition-failed",
    413: "payload-too-large",
    415: "unsupported-media-type",
    422: "validation-failed",
    428: "precondition-required",
    429: "rate-limited",
    503: "unavailable",
}


def problem_response(
    status: int,
    slug: str,
    detail: str,
    *,
    title: str | None = None,
    extra: dict[str, Any] | None = None,
) -> Response:
    """An application/problem+json response for the current request."""
    body = {
        "type": f"/problems/{slug}",
        "title": title or PROBLEM_TYPES.get(slug, PROBLEM_TYPES["http-error"])[0],
        "status": status,
        "detail": detail,
        "instance": request.path,
    }
    body.update({k: v for k, v in (extra or {}).items() if k not in body})
    response = cast(Response, current_app.json.response(body))  # an app.response_class
    response.status_code = status
    response.mimetype = PROBLEM_MIMETYPE
    return response


def _service_error(error: ServiceError) -> Response:
    return problem_response(
        error.status, error.slug, error.detail, title=error.title, extra=error.extra
    )


def _http_error(error: HTTPException) -> Response:
    status = error.code or 500
    if status >= 500:
        return _unexpected(error)
    slug = HTTP_SLUGS.get(status, "http-error")
    detail = error.description or error.name
    if status == 404:
        detail = f"nothing at {request.path}; GET / lists the service's resources"
    title = error.name if slug == "http-error" else None
    response = problem_response(status, slug, detail, title=title)
    if isinstance(error, MethodNotAllowed) and error.valid_methods:
        response.headers["Allow"] = ", ".join(sorted(error.valid_methods))
    return response


def _unexpected(error: Exception) -> Response:
    current_app.logger.exception("unexpected error on %s %s", request.method, request.path)
    return problem_response(
        500, "internal-error", "the service failed unexpectedly; the error was logged"
    )


DATABASE_RETRY_AFTER_S = 5


def database_unavailable(detail: str) -> Response:
    """503 database-unavailable with Retry-After."""
    response = problem_response(503, "database-unavailable", detail)
    response.headers["Retry-After"] = str(DATABASE_RETRY_AFTER_S)
    return response


def _database_error(error: SQLAlchemyError) -> Response:
    """The database is down or busy: 503 to retry (the pool reconnects by itself, see
    ``storage.engine``); any other database error is unexpected."""
    if not is_unavailable(error):
        return _unexpected(error)
    current_app.logger.warning("database unavailable on %s %s: %s", request.method,
                               request.path, error)
    return database_unavailable("the database cannot be reached or is busy; retry in a few "
                                "seconds")


def _text_rule_error(exc: TextRuleError) -> Response:
    """A text that breaks ``gridsvc.validation.text_rules`` and reached here unconverted."""
    extra: dict[str, Any] = {"field": exc.field}
    if exc.row is not None:
        extra["row"] = exc.row
    return problem_response(400, "invalid-input", str(exc), extra=extra)


def _os_error(error: OSError) -> Response:
    """A full disk (ENOSPC, EDQUOT) is 503 storage-full with Retry-After; any other operating
    system error is unexpected."""
    if not is_disk_full(error):
        return _unexpected(error)
    current_app.logger.warning("disk full on %s %s: %s", request.method, request.path, error)
    response = problem_response(503, "storage-full", "the service's disk is full; nothing was "
                                "stored, retry later")
    response.headers["Retry-After"] = str(DATABASE_RETRY_AFTER_S)
    return response


def _basemap_error(exc: BasemapError) -> Response:
    """The configured base map cannot serve this page (e.g. gcj02 tiles under unshifted
    overlays): a configuration problem the operator fixes, said plainly."""
    return problem_response(503, "basemap-refused", str(exc))


def register_problem_handlers(app: Flask) -> None:
    app.register_error_handler(ServiceError, _service_error)
    app.register_error_handler(BasemapError, _basemap_error)
    app.register_error_handler(TextRuleError, _text_rule_error)
    app.register_error_handler(OSError, _os_error)
    app.register_error_handler(SQLAlchemyError, _database_error)
    app.register_error_handler(HTTPException, _http_error)
    app.register_error_handler(Exception, _unexpected)

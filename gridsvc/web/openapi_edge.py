"""The answers an operation may give besides its own, added to both OpenAPI documents here.

``add_edge_answers(doc)`` runs last on ``/api/v1/openapi.json`` and on ``/ogc/api``; for every
operation it lists, when the operation does not list them already:

- 400: any query parameter or path segment is checked before the view runs (no control
  character, no text past its length; ``gridsvc.web.params``), so every operation may refuse;
- 413: an operation with a request body (``GRIDSVC_MAX_UPLOAD_MB``, ``GRIDSVC_MAX_JSON_MB``);
- 429: an operation in ``RATE_LIMITED`` (the endpoints ``gridsvc.web.ratelimit`` limits;
  tests/test_openapi.py keeps the two equal), with ``Retry-After``;
- 503: every operation (the database cannot be reached or is busy), with ``Retry-After``.

The responses are shared components (``#/components/responses/...``) holding the document's
``Problem`` schema; a component the document defines already is kept.
"""

from __future__ import annotations

from typing import Any

PROBLEM = "application/problem+json"
METHODS = ("get", "put", "post", "delete", "patch", "head", "options")

# (method, path as in the /api/v1 document) of the rate-limited operations.
RATE_LIMITED = {("get", "/api/v1/lookup"), ("post", "/api/v1/lookup/batch"),
                ("post", "/api/v1/members"), ("get", "/api/v1/members"),
                ("put", "/api/v1/members/{member_id}"), ("post", "/api/v1/rosters")}

EDGE_RESPONSES: dict[int, tuple[str, str]] = {
    400: ("BadRequest", "A parameter or field is invalid (a control character, too long, not "
                        "a value it may take); `field` names it"),
    413: ("PayloadTooLarge", "The body exceeds GRIDSVC_MAX_UPLOAD_MB (multipart upload) or "
                             "GRIDSVC_MAX_JSON_MB (any other body), or an uploaded zip would "
                             "unpack past GRIDSVC_ZIP_MAX_* (/problems/archive-too-large)"),
    429: ("TooManyRequests", "More requests from this client than its rate limit allows: "
                             "GRIDSVC_LOOKUP_RATE_LIMIT, GRIDSVC_REGISTRATION_RATE_LIMIT or "
                             "GRIDSVC_MEMBERS_RATE_LIMIT, named in `setting` "
                             "(/problems/rate-limited)"),
    503: ("Unavailable", "The database cannot be reached or is busy "
                         "(/problems/database-unavailable)"),
}
RETRY_AFTER = {"Retry-After": {"description": "Seconds to wait before retrying",
                               "schema": {"type": "integer", "minimum": 1}}}


def edge_statuses(method: str, path: str, operation: dict[str, Any]) -> list[int]:
    """The edge answers ``operation`` (``method`` on ``path``) may give."""
    statuses = [400]
    if "requestBody" in operation:
        statuses.append(413)
    if (method, path) in RATE_LIMITED:
        statuses.append(429)
    return [*statuses, 503]


def add_edge_answers(doc: dict[str, Any], path_prefix: str = "") -> dict[str, Any]:
    """Add the edge answers to every operation of ``doc`` (paths under ``path_prefix`` in the
    service, e.g. ``/ogc``) and their shared responses to its components; returns ``doc``."""
    responses = doc.setdefault("components", {}).setdefault("responses", {})
    for status, (name, description) in EDGE_RESPONSES.items():
        response: dict[str, Any] = {"description": description, "content": {
            PROBLEM: {"schema": {"$ref": "#/components/schemas/Problem"}}}}
        if status in (429, 503):
            response["headers"] = RETRY_AFTER
        responses.setdefault(name, response)
    for path, item in doc["paths"].items():
        for method, operation in item.items():
            if method not in METHODS:
                continue
            listed = operation.setdefault("responses", {})
            for status in edge_statuses(method, path_prefix + path.rstrip("/"), operation):
                ref = {"$ref": f"#/components/responses/{EDGE_RESPONSES[status][0]}"}
                listed.setdefault(str(status), ref)
    return doc

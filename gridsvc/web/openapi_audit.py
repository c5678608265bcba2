"""OpenAPI path and schema of the audit log (listed in openapi.RESOURCE_DOCS)."""

from __future__ import annotations

from typing import Any

from gridsvc.web.openapi import NULLABLE_STR, _json, _ok, _param, _problems
from gridsvc.web.openapi_members import PAGE_PARAMS, STAFF_PROBLEMS

TIME = {"type": "string", "format": "date-time"}

PATHS: dict[str, Any] = {
    "/api/v1/audit": {"get": {
        "summary": "The audit log, newest first (admin token).",
        "description": "Every write and every read of personal data: who (token name and "
                       "role, or cli:<user>), when, what (method and route), on which record "
                       "(unit:<code>, member:<id>, roster:<id>...), and the result (ok or the "
                       "problem type). Entries hold ids, never names, phones or addresses. "
                       "Kept GRIDSVC_AUDIT_RETENTION_DAYS days (default 180).",
        "operationId": "listAudit",
        "parameters": [
            _param("actor", "Exactly this actor", {"type": "string"}),
            _param("action", "Actions starting with this, e.g. 'PUT /api/v1/members'",
                   {"type": "string"}),
            _param("target", "Exactly this record, e.g. member:12", {"type": "string"}),
            _param("since", "From this time (ISO 8601 with a zone)", TIME),
            _param("until", "Before this time (ISO 8601 with a zone)", TIME),
            *PAGE_PARAMS,
        ],
        "responses": {"200": _ok("A page of entries", **{"application/json":
                                                         _json("AuditPage")}),
                      **_problems(400), **STAFF_PROBLEMS},
    }},
}

SCHEMAS: dict[str, Any] = {
    "AuditEntry": {
        "type": "object",
        "required": ["id", "at", "actor", "role", "action", "target", "result", "status"],
        "properties": {
            "id": {"type": "integer"}, "at": TIME, "actor": {"type": "string"},
            "role": {"enum": ["admin", "planner", "staff", "member", "public"]},
            "token_id": {"type": ["integer", "null"]}, "action": {"type": "string"},
            "target": NULLABLE_STR, "result": {"type": "string"},
            "status": {"type": ["integer", "null"]}, "detail": {"type": "object"},
            "remote": NULLABLE_STR,
        },
    },
    "AuditPage": {
        "type": "object", "required": ["items", "total", "limit", "offset"],
        "properties": {"items": {"type": "array", "items": {"$ref":
                                                            "#/components/schemas/AuditEntry"}},
                       "total": {"type": "integer"}, "limit": {"type": "integer"},
                       "offset": {"type": "integer"}},
    },
}

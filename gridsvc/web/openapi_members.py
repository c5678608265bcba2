"""OpenAPI paths and schemas of registration (双报到): members, rosters, work-unit
organisations (listed in openapi.RESOURCE_DOCS). Unit entries reuse ``ChainEntry`` from the
lookup document."""

from __future__ import annotations

from typing import Any

from gridsvc.services.member_assignment import ROLES
from gridsvc.services.registration import STATUSES
from gridsvc.spatial.coordsys import COORDSYS
from gridsvc.web.openapi import JSON, NULLABLE_STR, PROBLEM, _json, _ok, _param, _problems, _ref

STAFF_NOTE = (" Staff (or admin) token: only members living in the token's subtree; "
              "every call is in the audit log.")
ROW_NOTE = ("Row numbers are spreadsheet rows: the header is row 1, the first data row is "
            "row 2.")


def _problem(description: str) -> dict[str, Any]:
    return {"description": description, "content": {PROBLEM: {"schema": _ref("Problem")}}}


STAFF_PROBLEMS = {
    "401": _problem("No token, or not a live one (/problems/unauthorized)"),
    "403": _problem("The token's role may not do this, or the change would reach outside "
                    "its subtree (/problems/forbidden)"),
}
CONFLICT = {"409": _problem("Conflict (/problems/conflict)")}

ENTRY_OR_NULL = {"oneOf": [_ref("ChainEntry"), {"type": "null"}]}
STATUS = {"enum": list(STATUSES)}
LIST = {"type": "array", "items": {"type": "string"}}
TEXT_OR_LIST = {"oneOf": [{"type": "string"}, LIST, {"type": "null"}],
                "description": "A list, or one text separated by 、 , ， ; ；"}
NUMBER_OR_TEXT = {"type": ["number", "string", "null"]}
ID = {"type": "integer"}
PAGE_PARAMS = [
    _param("limit", "Page size", {"type": "integer", "minimum": 1, "maximum": 1000,
                                  "default": 100}),
    _param("offset", "Items to skip", {"type": "integer", "minimum": 0, "default": 0}),
]


def _page(item: str) -> dict[str, Any]:
    return {"type": "object", "required": ["items", "total", "limit", "offset"],
            "properties": {"items": {"type": "array", "items": _ref(item)},
                           "total": {"type": "integer"}, "limit": {"type": "integer"},
                           "offset": {"type": "integer"}}}


MEMBER_INPUT = {
    "type": "object",
    "description": "A member's registration. name and phone are required, and a home address "
                   "or a point (lon, lat and coordsys). Roster columns may use the Chinese "
                   "headers 姓名, 手机/手机号/联系电话/电话, 所在党组织/党组织, 工作单位/单位, "
                   "居住地址/家庭住址/现住址/住址, 经度, 纬度, 坐标系, 特长/技能, 服务意向, "
                   "角色/身份.",
    "properties": {
        "name": {"type": "string"},
        "phone": {"type": "string", "description": "Mainland mobile; spaces, dashes and +86 "
                                                   "are removed"},
        "party_org": NULLABLE_STR,
        "work_unit": {"type": ["string", "null"], "description":
                      "Links the member to the work-unit organisation of this name"},
        "home_address": NULLABLE_STR,
        "lon": NUMBER_OR_TEXT,
        "lat": NUMBER_OR_TEXT,
        "coordsys": {"oneOf": [{"enum": list(COORDSYS)}, {"type": "null"}],
                     "description": "Required with a point"},
        "skills": TEXT_OR_LIST,
        "intentions": TEXT_OR_LIST,
        "roles": {**TEXT_OR_LIST, "description": f"Each one of {', '.join(ROLES)}"},
    },
}

MATCH = {
    "type": "object",
    "description": "How the member was placed. method: address, point or staff. A weak or "
                   "ambiguous address keeps status, reason and candidates; a fallback point "
                   "has fallback true, distance_m and nearest (the proposed building).",
    "properties": {
        "method": {"enum": ["address", "point", "staff"]},
        "coordsys": {"type": "string"},
        "status": {"type": "string"},
        "score": {"type": "number"},
        "level": {"type": ["string", "null"]},
        "reason": {"type": "string"},
        "address": {"type": "string"},
        "candidates": {"type": "array", "items": {"type": "object"}},
        "fallback": {"type": "boolean"},
        "distance_m": {"type": ["number", "null"]},
        "nearest": {"type": "object"},
        "household_rule": {"type": "string"},
    },
}

REGISTRATION = {
    "type": "object",
    "description": "The answer to a self-registration: a request reference, the member's own "
                   "submission with name and phone masked, the outcome of placing it, and "
                   "where they report (public unit contacts only). chain is empty unless "
                   "assigned. Made from the submission alone: the same whether or not the "
                   "phone is a member's (no member id).",
    "required": ["request", "note", "status", "reason", "member", "chain", "household",
                 "match"],
    "properties": {
        "request": {"type": "string", "pattern": "^[0-9a-f]{16}$",
                    "description": "A random reference to quote to community staff"},
        "note": {"type": "string"},
        "status": {"enum": ["assigned", "needs-confirmation"]},
        "reason": NULLABLE_STR,
        "member": {"type": "object", "required": ["name", "phone"], "properties": {
            "name": {"type": "string"},
            "phone": {"type": "string", "pattern": r"^\d{3}\*{4}\d{4}$"},
        }},
        "chain": {"type": "array", "items": _ref("ChainEntry")},
        "household": {"oneOf": [{"allOf": [_ref("ChainEntry")], "type": "object",
                                 "properties": {"rule": {"type": "string"}}},
                                {"type": "null"}]},
        "match": _ref("MemberMatch"),
    },
}

POINT_OR_NULL = {"oneOf": [{"type": "object", "required": ["lon", "lat", "coordsys"],
                            "properties": {"lon": {"type": "number"},
                                           "lat": {"type": "number"},
                                           "coordsys": {"type": "string"}}},
                           {"type": "null"}]}

MEMBER = {
    "type": "object",
    "description": "A member as staff see it (personal data included).",
    "required": ["id", "name", "phone", "status", "building", "household", "match", "version"],
    "properties": {
        "id": ID, "name": {"type": "string"}, "phone": {"type": "string"},
        "party_org": NULLABLE_STR, "work_unit": NULLABLE_STR,
        "work_org": {"oneOf": [{"type": "object", "properties": {"id": ID,
                                                                 "name": NULLABLE_STR}},
                               {"type": "null"}]},
        "home_address": NULLABLE_STR,
        "input_point": POINT_OR_NULL,
        "point": {**POINT_OR_NULL, "description": "The wgs84 point used for the assignment"},
        "skills": LIST, "intentions": LIST, "roles": LIST,
        "status": STATUS, "reason": NULLABLE_STR,
        "building": {**ENTRY_OR_NULL, "description": "Assigned building; for "
                     "needs-confirmation the proposed (nearest) one, if any"},
        "household": ENTRY_OR_NULL,
        "match": _ref("MemberMatch"),
        "version": {"type": "integer"},
        "created_at": NULLABLE_STR, "updated_at": NULLABLE_STR,
        "chain": {"type": "array", "items": _ref("ChainEntry"),
                  "description": "Detail only: the building's chain, root first"},
    },
}

REGISTRATION_REQUEST = {
    "type": "object",
    "required": ["id", "reference", "status", "outcome", "member_id", "submitted"],
    "properties": {
        "id": ID, "reference": {"type": "string"},
        "status": {"enum": ["registered", "duplicate", "applied", "dismissed"]},
        "outcome": STATUS, "member_id": {"type": ["integer", "null"]},
        "submitted": {"type": "object", "description": "The submission as read, in the "
                                                        "fields of MemberInput"},
        "created_at": NULLABLE_STR, "resolved_at": NULLABLE_STR, "resolved_by": NULLABLE_STR,
    },
}

ROSTER = {
    "type": "object",
    "required": ["id", "kind", "filename", "counts"],
    "properties": {
        "id": ID, "kind": {"enum": ["members", "work-orgs"]}, "filename": {"type": "string"},
        "counts": {"type": "object", "additionalProperties": {"type": "integer"},
                   "description": "rows, assigned, needs-confirmation, rejected; members: "
                                  "created, updated, unchanged; work-orgs: members_linked"},
        "created_at": NULLABLE_STR,
        "rows_note": {"type": "string"},
    },
}

ROSTER_ROW = {
    "type": "object",
    "required": ["row", "status", "problems", "data"],
    "properties": {
        "row": {"type": "integer", "minimum": 2, "description": ROW_NOTE},
        "status": STATUS,
        "problems": {"type": "array", "items": {
            "type": "object", "required": ["severity", "rule", "message"],
            "properties": {"severity": {"enum": ["error", "warning"]},
                           "rule": {"type": "string"}, "message": {"type": "string"},
                           "row": {"type": "integer"}, "field": {"type": "string"}}}},
        "data": {"type": "object", "additionalProperties": {"type": "string"},
                 "description": "The row as written, by column header"},
        "member_id": {"type": ["integer", "null"]},
        "work_org_id": {"type": ["integer", "null"]},
    },
}

WORK_ORG_INPUT = {
    "type": "object",
    "required": ["name"],
    "description": "Roster headers: 单位名称, 办公地址, 经度, 纬度, 坐标系, 联系人, 联系电话",
    "properties": {
        "name": {"type": "string"}, "office_address": NULLABLE_STR,
        "lon": NUMBER_OR_TEXT, "lat": NUMBER_OR_TEXT,
        "coordsys": {"oneOf": [{"enum": list(COORDSYS)}, {"type": "null"}]},
        "contact_name": NULLABLE_STR, "contact_phone": NULLABLE_STR,
    },
}

WORK_ORG = {
    "type": "object",
    "required": ["id", "name", "status", "community", "chain", "members"],
    "properties": {
        "id": ID, "name": {"type": "string"}, "office_address": NULLABLE_STR,
        "point": POINT_OR_NULL, "contact_name": NULLABLE_STR, "contact_phone": NULLABLE_STR,
        "status": STATUS, "reason": NULLABLE_STR, "match": {"type": "object"},
        "community": {**ENTRY_OR_NULL, "description": "The community where the office sits"},
        "chain": {"type": "array", "items": _ref("ChainEntry")},
        "members": {"type": "integer", "description": "Members linked by work unit"},
    },
}

WORK_ORG_REPORT = {
    "type": "object",
    "required": ["organisation", "members", "counts"],
    "properties": {
        "organisation": _ref("WorkOrg"),
        "members": {"type": "array", "items": {
            "type": "object", "required": ["id", "name", "phone", "status", "residence"],
            "properties": {
                "id": ID, "name": {"type": "string"}, "phone": {"type": "string"},
                "status": STATUS,
                "residence": {"type": "object", "additionalProperties": _ref("ChainEntry"),
                              "description": "Where the member lives, by level key (street, "
                                             "community, grid, building); empty if unplaced"},
                "same_community": {"type": "boolean"},
            }}},
        "counts": {"type": "object", "additionalProperties": {"type": "integer"}},
    },
}

MEMBER_ID = _param("member_id", "The member's id", ID, where="path")
ETAG = {"ETag": {"description": "\"member-<id>-<version>\": send it back in If-Match",
                 "schema": {"type": "string"}}}


def _if_match(required: bool) -> dict[str, Any]:
    return {"name": "If-Match", "in": "header", "required": required,
            "description": "The member's ETag as read (\"member-<id>-<version>\", from GET "
                           "/api/v1/members/{member_id}); "
                           + ("'*' is not accepted." if required else
                              "optional here: checked when sent, '*' checks nothing."),
            "schema": {"type": "string"}}


STALE = {"412": _problem("The member changed since it was read, or If-Match names another "
                         "record; nothing stored (/problems/precondition-failed)")}
MEMBER_OK = {"200": {**_ok("The member", **{JSON: _json("Member")}), "headers": ETAG}}
ROSTER_ID = _param("roster_id", "The roster import's id", ID, where="path")
STAFF = {**STAFF_PROBLEMS}

PATHS: dict[str, Any] = {
    "/api/v1/members": {
        "post": {
            "summary": "A member registers (双报到): assigned to their building micro-grid",
            "description": "Public, rate-limited (GRIDSVC_REGISTRATION_RATE_LIMIT). 202 with a "
                           "request reference and the member's own submission masked, the "
                           "same whether or not the phone is registered already: a new phone "
                           "makes the member at once, a registered one waits unchanged as a "
                           "duplicate request for the staff who hold that member "
                           "(/api/v1/registration-requests). A rejected registration (bad "
                           "field, address not found, point not covered) is 400 naming the "
                           "field.",
            "operationId": "registerMember",
            "requestBody": {"required": True, "content": {JSON: {"schema":
                                                                 _ref("MemberInput")}}},
            "responses": {"202": _ok("Received", **{JSON: _json("MemberRegistration")}),
                          **_problems(400)},
        },
        "get": {
            "summary": "Members, filtered and paged, by id." + STAFF_NOTE,
            "operationId": "listMembers",
            "parameters": [
                _param("status", "Only this outcome", STATUS),
                _param("unit", "Only members whose building is in this unit's subtree",
                       {"type": "string"}),
                _param("q", "Name contains", {"type": "string"}),
                *PAGE_PARAMS,
            ],
            "responses": {"200": _ok("A page of members", **{JSON: _json("MemberPage")}),
                          **_problems(400, 404), **STAFF},
        },
    },
    "/api/v1/members/{member_id}": {
        "get": {
            "summary": "One member with the chain of their building." + STAFF_NOTE
                       + " A member token reads its own record here too.",
            "operationId": "getMember", "parameters": [MEMBER_ID],
            "responses": {**MEMBER_OK, **_problems(404), **STAFF},
        },
        "put": {
            "summary": "Update a member and assign again." + STAFF_NOTE,
            "description": "Fields given replace the stored ones (null clears); the others "
                           "stay. A staff confirmation stands while address and point are "
                           "unchanged. If-Match is required, as for a unit's geometry: 428 "
                           "without it, 412 when someone else saved first. A phone that "
                           "belongs to another member is 409 naming the field only, the same "
                           "whether or not the caller may see that member.",
            "operationId": "updateMember", "parameters": [MEMBER_ID, _if_match(True)],
            "requestBody": {"required": True, "content": {JSON: {"schema":
                                                                 _ref("MemberInput")}}},
            "responses": {**MEMBER_OK, **_problems(400, 404), **CONFLICT, **STALE,
                          "428": _problem("If-Match is missing "
                                          "(/problems/precondition-required)"),
                          **STAFF},
        },
    },
    "/api/v1/members/me": {"get": {
        "summary": "A member's own record (member tokens).",
        "operationId": "getMyRecord",
        "responses": {**MEMBER_OK, **_problems(404), **STAFF},
    }},
    "/api/v1/members/{member_id}/confirm": {"post": {
        "summary": "Confirm a member's building (status assigned, match.method staff)."
                   + STAFF_NOTE,
        "operationId": "confirmMember", "parameters": [MEMBER_ID, _if_match(False)],
        "requestBody": {"required": True, "content": {JSON: {"schema": {
            "type": "object", "required": ["building"],
            "properties": {"building": {"type": "string",
                                        "description": "A micro-grid (building) code"}}}}}},
        "responses": {**MEMBER_OK, **_problems(400, 404), **STALE, **STAFF},
    }},
    "/api/v1/registration-requests": {"get": {
        "summary": "Self-registrations, by id; status duplicate: waiting for staff."
                   + STAFF_NOTE,
        "description": "Only requests about a member the token may see (the member the "
                       "registration made, or the one whose phone it gave), with the "
                       "submission unmasked.",
        "operationId": "listRegistrationRequests",
        "parameters": [_param("status", "Only this status",
                              {"enum": ["registered", "duplicate", "applied", "dismissed"]}),
                       *PAGE_PARAMS],
        "responses": {"200": _ok("A page of requests",
                                 **{JSON: _json("RegistrationRequestPage")}),
                      **_problems(400), **STAFF},
    }},
    "/api/v1/registration-requests/{request_id}/resolve": {"post": {
        "summary": "Decide a duplicate registration: apply it to the member, or dismiss it."
                   + STAFF_NOTE,
        "description": "apply updates the member with the submission as PUT "
                       "/api/v1/members/{member_id} does (its rules: 400, 403 outside the "
                       "subtree, 409 for a phone taken); dismiss changes nothing. A request "
                       "that is not a duplicate waiting is 409.",
        "operationId": "resolveRegistrationRequest",
        "parameters": [_param("request_id", "The request's id", ID, where="path")],
        "requestBody": {"required": True, "content": {JSON: {"schema": {
            "type": "object", "required": ["action"],
            "properties": {"action": {"enum": ["apply", "dismiss"]}}}}}},
        "responses": {"200": _ok("The request, decided",
                                 **{JSON: _json("RegistrationRequest")}),
                      **_problems(400, 404), **CONFLICT, **STAFF},
    }},
    "/api/v1/rosters": {"post": {
        "summary": "Import a roster of members (or work-unit organisations)." + STAFF_NOTE,
        "description": "One transaction. Every row ends assigned, needs-confirmation or "
                       "rejected and is kept; list them at /rosters/{roster_id}/rows. "
                       "Members are matched by phone: a re-import updates, never duplicates. "
                       + ROW_NOTE,
        "operationId": "importRoster",
        "requestBody": {"required": True, "content": {"multipart/form-data": {"schema": {
            "type": "object", "required": ["file"],
            "properties": {
                "file": {"type": "string", "contentMediaType": "application/octet-stream",
                         "description": ".csv (UTF-8 or GBK/GB18030) or .xlsx"},
                "kind": {"enum": ["members", "work-orgs"], "default": "members"},
            }}}}},
        "responses": {"201": _ok("The import and its counts", **{JSON: _json("Roster")}),
                      **_problems(400, 413), **STAFF},
    }},
    "/api/v1/rosters/{roster_id}": {"get": {
        "summary": "A roster import and its counts." + STAFF_NOTE,
        "operationId": "getRoster", "parameters": [ROSTER_ID],
        "responses": {"200": _ok("The import", **{JSON: _json("Roster")}),
                      **_problems(404), **STAFF},
    }},
    "/api/v1/rosters/{roster_id}/rows": {"get": {
        "summary": "The rows of a roster import with their outcome and problems." + STAFF_NOTE,
        "description": ROW_NOTE,
        "operationId": "getRosterRows",
        "parameters": [ROSTER_ID, _param("status", "Only this outcome", STATUS),
                       *PAGE_PARAMS],
        "responses": {"200": _ok("A page of rows", **{JSON: _json("RosterRowPage")}),
                      **_problems(400, 404), **STAFF},
    }},
    "/api/v1/work-orgs": {
        "post": {
            "summary": "Register a work-unit Party organisation at the community where its "
                       "office sits." + STAFF_NOTE,
            "operationId": "registerWorkOrg",
            "requestBody": {"required": True, "content": {JSON: {"schema":
                                                                 _ref("WorkOrgInput")}}},
            "responses": {"201": _ok("Registered", **{JSON: _json("WorkOrg")}),
                          **_problems(400), **CONFLICT, **STAFF},
        },
        "get": {
            "summary": "Work-unit organisations, paged." + STAFF_NOTE,
            "operationId": "listWorkOrgs",
            "parameters": [_param("q", "Name contains", {"type": "string"}), *PAGE_PARAMS],
            "responses": {"200": _ok("A page", **{JSON: _json("WorkOrgPage")}),
                          **_problems(400), **STAFF},
        },
    },
    "/api/v1/work-orgs/{org_id}/report": {"get": {
        "summary": "The organisation's community and where each of its members lives (both "
                   "links of 双报到)." + STAFF_NOTE,
        "operationId": "workOrgReport",
        "parameters": [_param("org_id", "The organisation's id", ID, where="path")],
        "responses": {"200": _ok("The report", **{JSON: _json("WorkOrgReport")}),
                      **_problems(404), **STAFF},
    }},
}

SCHEMAS: dict[str, Any] = {
    "MemberInput": MEMBER_INPUT,
    "MemberMatch": MATCH,
    "MemberRegistration": REGISTRATION,
    "Member": MEMBER,
    "MemberPage": _page("Member"),
    "RegistrationRequest": REGISTRATION_REQUEST,
    "RegistrationRequestPage": _page("RegistrationRequest"),
    "Roster": ROSTER,
    "RosterRow": ROSTER_ROW,
    "RosterRowPage": _page("RosterRow"),
    "WorkOrgInput": WORK_ORG_INPUT,
    "WorkOrg": WORK_ORG,
    "WorkOrgPage": _page("WorkOrg"),
    "WorkOrgReport": WORK_ORG_REPORT,
}

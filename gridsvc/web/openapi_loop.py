"""OpenAPI paths and schemas of the service loop (双服务): needs, their actions, ratings,
posts and claims, points, residents, the outbox (listed in openapi.RESOURCE_DOCS)."""

from __future__ import annotations

from typing import Any

from gridsvc.domain.loop import (
    BENEFICIARY_FLAGS,
    CHANNELS,
    QIANJIANG_POST_KINDS,
    TRANSITIONS,
    URGENCIES,
    NeedKind,
    NeedState,
    Outcome,
    state_table_markdown,
)
from gridsvc.web.openapi import JSON, NULLABLE_STR, PROBLEM, _json, _ok, _param, _problems, _ref


def _problem(description: str) -> dict[str, Any]:
    return {"description": description, "content": {PROBLEM: {"schema": _ref("Problem")}}}


REFUSED = {
    "403": _problem("The caller has no relationship to this need that allows it "
                    "(/problems/forbidden); `state` and `allowed` name the need's state and "
                    "the actions the caller may take"),
    "409": _problem("Not possible from the need's current state, or someone else got there "
                    "first (/problems/conflict); `state` and `allowed` as for 403"),
}
COMMON = _problems(400, 401, 404)
ID = {"type": "integer"}
NEED_ID = _param("need_id", "The need's id", ID, where="path")
PAGE = [_param("limit", "Page size", {"type": "integer", "minimum": 1, "maximum": 1000,
                                      "default": 50}),
        _param("offset", "Items to skip", {"type": "integer", "minimum": 0, "default": 0})]
OBJ = {"type": "object"}

POINT = {"type": "object", "required": ["lon", "lat", "coordsys"], "properties": {
    "lon": {"type": "number"}, "lat": {"type": "number"}, "coordsys": {"type": "string"}}}

NEED_INPUT = {
    "type": "object",
    "description": "A need as ordered (居民点单). A resident token orders for themselves; "
                   "staff (or a member acting as 党员中心户) order on a resident's behalf and "
                   "give reporter {kind, name, phone, resident_id}. Give the confirmed point "
                   "or an address (both are kept).",
    "required": ["kind", "category", "title"],
    "properties": {
        "kind": {"enum": [k.value for k in NeedKind]},
        "category": {"type": "string", "description": "A configured post kind, default: "
                     + ", ".join(QIANJIANG_POST_KINDS)},
        "title": {"type": "string", "description": "Public: no names"},
        "summary": {"type": ["string", "null"], "description": "Public summary: no names"},
        "detail": {"type": ["string", "null"], "description": "Private"},
        "urgency": {"enum": list(URGENCIES)},
        "due_on": {"type": ["string", "null"], "format": "date"},
        "persons_needed": {"type": "integer", "minimum": 1},
        "est_hours": {"type": ["number", "null"]},
        "skills": {"type": "array", "items": {"type": "string"}},
        "address": NULLABLE_STR,
        "point": POINT,
        "channel": {"enum": list(CHANNELS)},
        "consent": {"type": "boolean"},
        "flags": {"type": "array", "items": {"enum": list(BENEFICIARY_FLAGS)},
                  "description": "Restricted: seen by community staff only"},
        "reporter": {"type": "object", "properties": {
            "kind": {"enum": ["household_head", "grid_worker", "staff"]},
            "name": {"type": "string"}, "phone": NULLABLE_STR,
            "resident_id": {"type": ["integer", "null"]}}},
    },
}

NEED = {
    "type": "object",
    "description": "A need as the caller may see it. Everyone who may see it gets the pool "
                   "view (kind, category, title, summary, urgency, grid, community, state); "
                   "staff of its community also detail, address, points, reporter, flags, "
                   "routing, order and updates; the reporter their own data and updates; the "
                   "taker, once holding it, the detail, address, point and reporter's name "
                   "and phone (an audited read). `allowed`: the actions the caller may take.",
    "required": ["id", "ledger_no", "kind", "category", "state", "allowed"],
    "properties": {
        "id": ID, "ledger_no": {"type": "string"}, "kind": {"type": "string"},
        "category": {"type": "string"}, "title": {"type": "string"},
        "summary": NULLABLE_STR, "state": {"enum": [s.value for s in NeedState]},
        "outcome": {"oneOf": [{"enum": [o.value for o in Outcome]}, {"type": "null"}]},
        "grid": {"type": ["object", "null"]}, "community": {"type": ["object", "null"]},
        "allowed": {"type": "array", "items": {"type": "string"}},
    },
}
NEED_PAGE = {"type": "object", "required": ["items", "total", "limit", "offset"],
             "properties": {"items": {"type": "array", "items": _ref("Need")},
                            "total": ID, "limit": ID, "offset": ID}}

ACTION_BODY = {
    "type": "object",
    "description": "reason (required for decline, release, revoke, reopen); dispatch: taker "
                   "{kind: member | work_org, id}, respond_hours, due_on; record: "
                   "participants [{member_id, hours}] (or hours for a member's own service), "
                   "started_at, ended_at (ISO 8601 with zone), summary, confirmed; close: "
                   "outcome, duplicate_of; file: title, summary.",
    "properties": {"reason": {"type": "string"}, "outcome": {"enum": [o.value for o in Outcome]},
                   "taker": OBJ, "participants": {"type": "array", "items": OBJ}},
}

RATING = {"type": "object", "required": ["rating"], "properties": {
    "rating": {"oneOf": [{"enum": ["满意", "基本满意", "不满意"]},
                         {"type": "integer", "minimum": 1, "maximum": 5}]},
    "comment": NULLABLE_STR}}

ACTIONS_DOC = ("The need's state machine (who: staff of its community, the taker of its live "
               "order, a member of its community, the reporting resident):\n\n"
               + state_table_markdown())


def _op(summary: str, op_id: str, responses: dict[str, Any], *, params: list[Any] | None = None,
        body: str | None = None, description: str | None = None) -> dict[str, Any]:
    op: dict[str, Any] = {"summary": summary, "operationId": op_id, "responses": responses}
    if params:
        op["parameters"] = params
    if body:
        op["requestBody"] = {"required": False, "content": {JSON: _json(body)}}
    if description:
        op["description"] = description
    return op


NEED_OK = {"200": _ok("The need as the caller sees it", **{JSON: _json("Need")})}
ANY_OK = {"200": _ok("Done", **{JSON: {"schema": OBJ}})}
CREATED = {"201": _ok("Created", **{JSON: {"schema": OBJ}})}

PATHS: dict[str, Any] = {
    "/api/v1/needs": {
        "post": _op("Order a need (居民点单): routed at once by its point", "submitNeed",
                    {"201": _ok("The need", **{JSON: _json("Need")}), **COMMON,
                     "403": REFUSED["403"], "409": REFUSED["409"]}, body="NeedInput",
                    description="Not covered points are 404 /problems/not-covered, "
                                "unresolved addresses 404 /problems/address-not-resolved."),
        "get": _op("Needs, newest first: the community ledger (staff), the caller's own "
                   "(residents), the published pool (everyone else)", "listNeeds",
                   {"200": _ok("A page", **{JSON: _json("NeedPage")}), **COMMON},
                   params=[_param("community", "Needs of this unit's subtree",
                                  {"type": "string"}),
                           _param("state", "Only this state",
                                  {"enum": [s.value for s in NeedState]}),
                           _param("kind", "Only this kind", {"enum": [k.value for k in NeedKind]}),
                           *PAGE]),
    },
    "/api/v1/needs/figures": {
        "get": _op("The loop's figures for a subtree: needs by kind and state, claimed and "
                   "resolved rates, median hours to claim and to resolve, service hours, "
                   "service rate of reported members, satisfaction (counts only)",
                   "needFigures", {**ANY_OK, **COMMON},
                   params=[_param("unit", "The unit at the root (default: the city, for "
                                  "city-wide tokens)", {"type": "string"})]),
    },
    "/api/v1/needs/{need_id}": {
        "get": _op("One need as the caller may see it (a need that does not exist for the "
                   "caller is 404)", "getNeed", {**NEED_OK, **COMMON}, params=[NEED_ID]),
    },
    "/api/v1/needs/{need_id}/actions/{action}": {
        "post": _op("Take an action on the need", "needAction",
                    {**NEED_OK, **COMMON, **REFUSED},
                    params=[NEED_ID, _param("action", "The action", {"enum": list(TRANSITIONS)},
                                            where="path")],
                    body="NeedAction", description=ACTIONS_DOC),
    },
    "/api/v1/needs/{need_id}/reroute": {
        "post": _op("Staff route the need again under today's boundaries (reason required)",
                    "rerouteNeed", {**NEED_OK, **COMMON, **REFUSED}, params=[NEED_ID],
                    body="NeedAction"),
    },
    "/api/v1/needs/{need_id}/ratings": {
        "post": _op("Rate the need's service (活动评单); the party follows from the caller",
                    "rateNeed", {**CREATED, **COMMON, **REFUSED}, params=[NEED_ID],
                    body="Rating"),
        "get": _op("The ratings the caller may see and the weighted score", "needRatings",
                   {**ANY_OK, **COMMON, "409": REFUSED["409"]}, params=[NEED_ID]),
    },
    "/api/v1/records/{record_id}/example": {
        "post": _op("Staff choose a service record as the week's example (+2 points)",
                    "chooseExample", {**ANY_OK, **COMMON},
                    params=[_param("record_id", "The record's id", ID, where="path")]),
    },
    "/api/v1/records/{record_id}/corrections": {
        "post": _op("Request a correction of a record's hours (the taker or staff); staff "
                    "approve it", "requestCorrection", {**CREATED, **COMMON, "409":
                                                         REFUSED["409"]},
                    params=[_param("record_id", "The record's id", ID, where="path")],
                    body="NeedAction"),
    },
    "/api/v1/record-corrections/{correction_id}/{decision}": {
        "post": _op("Staff approve (the record takes the corrected hours) or reject a "
                    "correction", "decideCorrection", {**ANY_OK, **COMMON, **REFUSED},
                    params=[_param("correction_id", "The correction's id", ID, where="path"),
                            _param("decision", "approve or reject",
                                   {"enum": ["approve", "reject"]}, where="path")]),
    },
    "/api/v1/points/rankings": {
        "get": _op("Members of a subtree ranked for a week, month, quarter or year by "
                   "completed services, then points (ties by member id; names masked; past "
                   "periods frozen): weekly examples, monthly publication, quarterly ten best",
                   "pointsRankings", {**ANY_OK, **COMMON},
                   params=[_param("period", "2026-W49, 2026-12, 2026-Q4 or 2026",
                                  {"type": "string"}, required=True),
                           _param("unit", "The unit at the root", {"type": "string"},
                                  required=True),
                           _param("limit", "How many (default 10)",
                                  {"type": "integer", "minimum": 1, "maximum": 100})]),
    },
    "/api/v1/points/{kind}/{subject_id}": {
        "get": _op("Points of a member or work-unit organisation: week, month, quarter, year "
                   "and the year's entries", "pointsBalance", {**ANY_OK, **COMMON},
                   params=[_param("kind", "member or work_org",
                                  {"enum": ["member", "work_org"]}, where="path"),
                           _param("subject_id", "Its id", ID, where="path")]),
    },
    "/api/v1/work-orgs/{org_id}/service-report": {
        "get": _op("A work unit's service report: per member services, hours and yearly "
                   "satisfaction, and the talk list (约谈, below 70%); never who was served",
                   "workOrgServiceReport", {**ANY_OK, **COMMON},
                   params=[_param("org_id", "The organisation's id", ID, where="path"),
                           _param("year", "The year (default: this year)",
                                  {"type": "integer", "minimum": 2000, "maximum": 2100})]),
    },
    "/api/v1/posts": {
        "post": _op("Staff open a service post (服务岗位) in a community", "openPost",
                    {**CREATED, **COMMON, "403": REFUSED["403"]}, body="PostInput"),
        "get": _op("The open posts of a community", "listPosts", {**ANY_OK, **COMMON},
                   params=[_param("community", "The community's code", {"type": "string"},
                                  required=True)]),
    },
    "/api/v1/posts/{post_id}/claims": {
        "post": _op("A member claims a post (at most N, default 2)", "claimPost",
                    {**CREATED, **COMMON, **REFUSED},
                    params=[_param("post_id", "The post's id", ID, where="path")]),
    },
    "/api/v1/post-claims/{claim_id}": {
        "delete": _op("Release a post claim (the member or staff)", "releasePostClaim",
                      {**ANY_OK, **COMMON},
                      params=[_param("claim_id", "The claim's id", ID, where="path")]),
    },
    "/api/v1/residents": {
        "post": _op("Staff record a resident whose phone they verified", "addResident",
                    {**CREATED, **COMMON, **REFUSED}, body="ResidentInput"),
    },
    "/api/v1/outbox": {
        "get": _op("Notifications waiting (or sent), oldest first (admin)", "listOutbox",
                   {**ANY_OK, **COMMON, "403": REFUSED["403"]},
                   params=[_param("status", "pending (default), sent or failed",
                                  {"enum": ["pending", "sent", "failed"]}), *PAGE]),
    },
}

SCHEMAS: dict[str, Any] = {
    "NeedInput": NEED_INPUT, "Need": NEED, "NeedPage": NEED_PAGE, "NeedAction": ACTION_BODY,
    "Rating": RATING,
    "PostInput": {"type": "object", "required": ["community", "kind"], "properties": {
        "community": {"type": "string"}, "kind": {"type": "string"},
        "title": NULLABLE_STR, "capacity": {"type": "integer", "minimum": 1}}},
    "ResidentInput": {"type": "object", "required": ["name", "phone"], "properties": {
        "name": {"type": "string"}, "phone": {"type": "string"}}},
}

"""Registration (双报到) over HTTP: members, rosters and work-unit organisations.

``POST /api/v1/members`` is public: a member registers themselves and gets back 202, a
request reference and their own submission with name and phone masked, the same whether or
not the phone is registered already (a duplicate waits for staff at
``/registration-requests``). Every other route returns personal data: staff read and
write the members of their subtree, a member token reads its own record (``/members/me``),
and every call is in the audit log. Roster uploads are multipart with the file in ``file``
(CSV or XLSX) and an optional ``kind`` (``members``, the default, or ``work-orgs``).
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from flask import Blueprint, Response, request

from gridsvc.access import Permission
from gridsvc.io.roster import SUFFIXES
from gridsvc.io.uploads import upload_folder
from gridsvc.services import members, registration, work_orgs
from gridsvc.services.errors import InvalidInput, NotFound
from gridsvc.web import current_services
from gridsvc.web.audit import personal_read, set_target
from gridsvc.web.auth import require
from gridsvc.web.geojson import json_response
from gridsvc.web.params import int_arg, text_arg
from gridsvc.web.units import if_match_version

bp = Blueprint("members", __name__, url_prefix="/api/v1")

ROSTER_KINDS = ("members", "work-orgs")


def _body() -> Any:
    data = request.get_json(silent=True)
    if not isinstance(data, dict):
        raise InvalidInput("send a JSON object (Content-Type: application/json)", field="body")
    return data


def _page() -> dict[str, int]:
    return {"limit": int_arg("limit", 100), "offset": int_arg("offset", 0)}


# --- members ---------------------------------------------------------------------------------


@bp.post("/members")
def register_member() -> Response:
    """Public self-registration: 202 with a request reference, the same whether or not the
    phone is a member's (``members.register_member``)."""
    return json_response(members.register_member(current_services(), _body()), status=202)


@bp.get("/registration-requests")
@personal_read
def list_registration_requests() -> Response:
    viewer = require(Permission.READ_MEMBERS)
    page = members.list_requests(current_services(), status=text_arg("status"), **_page(),
                                 viewer=viewer)
    set_target(f"registration-requests?status={text_arg('status') or '*'}",
               returned=len(page["items"]), ids=[r["id"] for r in page["items"]])
    return json_response(page)


@bp.post("/registration-requests/<int:request_id>/resolve")
def resolve_registration_request(request_id: int) -> Response:
    """Staff apply a duplicate registration to the member, or dismiss it."""
    viewer = require(Permission.WRITE_MEMBERS)
    body = _body()
    set_target(f"registration-request:{request_id}", action=str(body.get("action"))[:20])
    return json_response(members.resolve_request(current_services(), request_id,
                                                 body.get("action"), viewer))


@bp.get("/members")
@personal_read
def list_members() -> Response:
    viewer = require(Permission.READ_MEMBERS)
    page = members.list_members(
        current_services(), status=text_arg("status"), unit=text_arg("unit"),
        search=text_arg("q"), **_page(), viewer=viewer)
    set_target(f"members?unit={text_arg('unit') or viewer.scope_code or '*'}",
               returned=len(page["items"]), ids=[m["id"] for m in page["items"]])
    return json_response(page)


def member_etag(member_id: int, version: int) -> str:
    """A member's entity tag (unquoted): ``member-<id>-<version>``. ``PUT`` sends it back in
    If-Match (read by ``gridsvc.web.units.if_match_version``, as for units)."""
    return f"member-{member_id}-{version}"


def _member_response(view: dict[str, Any]) -> Response:
    response = json_response(view)
    response.set_etag(member_etag(view["id"], view["version"]))
    return response


def _if_match(member_id: int) -> int | None:
    """The member version If-Match names (None without it or with '*'); 412 when it names
    none of this member."""
    return if_match_version(f"member-{member_id}", what=f"member {member_id}")


@bp.get("/members/<int:member_id>")
@personal_read
def get_member(member_id: int) -> Response:
    viewer = require(Permission.READ_MEMBERS, Permission.READ_OWN_RECORD)
    return _member_response(members.get_member(current_services(), member_id, viewer))


@bp.get("/members/me")
@personal_read
def my_record() -> Response:
    """A member's own record (member tokens)."""
    viewer = require(Permission.READ_OWN_RECORD)
    if viewer.member_id is None:
        raise NotFound("this token belongs to no member; /members/me is for member tokens")
    set_target(f"member:{viewer.member_id}")
    return _member_response(members.get_member(current_services(), viewer.member_id, viewer))


@bp.put("/members/<int:member_id>")
def update_member(member_id: int) -> Response:
    """If-Match is required (428 without it, once the member and fields are found fine), as
    for a unit's geometry."""
    viewer = require(Permission.WRITE_MEMBERS)
    body = _body()
    expected = _if_match(member_id)
    return _member_response(members.update_member(current_services(), member_id, body,
                                                   viewer, expected_version=expected,
                                                   require_version=True))


@bp.post("/members/<int:member_id>/confirm")
def confirm_member(member_id: int) -> Response:
    """If-Match is honoured when sent (412 when stale) but not required: a confirmation
    sets only the building staff chose, never fields someone else typed."""
    viewer = require(Permission.WRITE_MEMBERS)
    body = _body()
    expected = _if_match(member_id)
    return _member_response(members.confirm_member(current_services(), member_id,
                                                    body.get("building"), viewer,
                                                    expected_version=expected))


# --- rosters ---------------------------------------------------------------------------------


def _upload_name(filename: str) -> str:
    name = Path(filename.replace("\\", "/")).name
    return re.sub(r"[^\w.\- ]", "_", name).strip(" .") or "roster"


@bp.post("/rosters")
def upload_roster() -> Response:
    viewer = require(Permission.WRITE_MEMBERS)
    kind = (request.form.get("kind") or "members").strip()
    if kind not in ROSTER_KINDS:
        raise InvalidInput(f"kind must be one of {', '.join(ROSTER_KINDS)}, got {kind!r}",
                           field="kind")
    upload = request.files.get("file")
    if upload is None or not upload.filename:
        raise InvalidInput("send the roster as the multipart field 'file'", field="file")
    name = _upload_name(upload.filename)
    if Path(name).suffix.lower() not in SUFFIXES:
        raise InvalidInput(f"{upload.filename!r}: upload a {' or '.join(SUFFIXES)} file",
                           field="file")
    importer = members.import_members if kind == "members" else work_orgs.import_work_orgs
    with upload_folder(current_services().settings.uploads, "roster") as folder:
        path = folder / name
        upload.save(path)
        result = importer(current_services(), path, filename=name, viewer=viewer)
    set_target(f"roster:{result['id']}", kind=kind, counts=result["counts"])
    return json_response(result, status=201)


@bp.get("/rosters/<int:roster_id>")
def get_roster(roster_id: int) -> Response:
    viewer = require(Permission.READ_MEMBERS)
    return json_response(registration.get_roster(current_services(), roster_id, viewer))


@bp.get("/rosters/<int:roster_id>/rows")
@personal_read
def roster_rows(roster_id: int) -> Response:
    viewer = require(Permission.READ_MEMBERS)
    return json_response(registration.roster_rows(current_services(), roster_id,
                                                  status=text_arg("status"), **_page(),
                                                  viewer=viewer))


# --- work-unit organisations -----------------------------------------------------------------


@bp.post("/work-orgs")
def register_work_org() -> Response:
    viewer = require(Permission.WRITE_MEMBERS)
    return json_response(work_orgs.register_work_org(current_services(), _body(), viewer),
                         status=201)


@bp.get("/work-orgs")
@personal_read
def list_work_orgs() -> Response:
    viewer = require(Permission.READ_MEMBERS)
    return json_response(work_orgs.list_work_orgs(current_services(), search=text_arg("q"),
                                                  **_page(), viewer=viewer))


@bp.get("/work-orgs/<int:org_id>/report")
@personal_read
def work_org_report(org_id: int) -> Response:
    viewer = require(Permission.READ_MEMBERS)
    return json_response(work_orgs.work_org_report(current_services(), org_id=org_id,
                                                   viewer=viewer))

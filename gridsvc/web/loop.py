"""The service loop (双服务) over HTTP: needs and their actions, ratings, service posts and
claims, points, residents and the outbox. Views call ``gridsvc.services.loop`` only; the
service decides what each caller may do and see (relationships, not roles)."""

from __future__ import annotations

from typing import Any

from flask import Blueprint, Response, request

from gridsvc.services.errors import InvalidInput
from gridsvc.services.loop import (
    figures,
    needs,
    outbox,
    points,
    posts,
    ratings,
    records,
    reports,
    residents,
    workflow,
)
from gridsvc.web import current_services
from gridsvc.web.audit import personal_read, set_target
from gridsvc.web.auth import current_principal
from gridsvc.web.geojson import json_response
from gridsvc.web.params import int_arg, text_arg

bp = Blueprint("loop", __name__, url_prefix="/api/v1")


def _body() -> Any:
    if not request.get_data():
        return {}
    data = request.get_json(silent=True)
    if not isinstance(data, dict):
        raise InvalidInput("send a JSON object (Content-Type: application/json)", field="body")
    return data


@bp.post("/needs")
def submit_need() -> Response:
    result = needs.submit_need(current_services(), current_principal(), _body())
    set_target(f"need:{result['id']}")
    return json_response(result, status=201)


@bp.get("/needs")
def list_needs() -> Response:
    return json_response(needs.list_needs(
        current_services(), current_principal(), community=text_arg("community"),
        state=text_arg("state"), kind=text_arg("kind"), limit=int_arg("limit", 50),
        offset=int_arg("offset", 0)))


@bp.get("/needs/figures")
def need_figures() -> Response:
    return json_response(figures.figures(current_services(), current_principal(),
                                         text_arg("unit")))


@bp.get("/needs/<int:need_id>")
@personal_read
def get_need(need_id: int) -> Response:
    set_target(f"need:{need_id}")
    return json_response(needs.get_need(current_services(), current_principal(), need_id))


@bp.post("/needs/<int:need_id>/actions/<action>")
def act(need_id: int, action: str) -> Response:
    set_target(f"need:{need_id}", action=action)
    return json_response(workflow.act(current_services(), current_principal(), need_id,
                                      action, _body()))


@bp.post("/needs/<int:need_id>/reroute")
def reroute(need_id: int) -> Response:
    set_target(f"need:{need_id}")
    return json_response(needs.reroute(current_services(), current_principal(), need_id,
                                       _body()))


@bp.post("/needs/<int:need_id>/ratings")
def rate(need_id: int) -> Response:
    set_target(f"need:{need_id}")
    return json_response(ratings.rate(current_services(), current_principal(), need_id,
                                      _body()), status=201)


@bp.get("/needs/<int:need_id>/ratings")
def list_ratings(need_id: int) -> Response:
    return json_response(ratings.ratings(current_services(), current_principal(), need_id))


@bp.post("/records/<int:record_id>/example")
def choose_example(record_id: int) -> Response:
    set_target(f"record:{record_id}")
    return json_response(points.choose_example(current_services(), current_principal(),
                                               record_id))


@bp.post("/records/<int:record_id>/corrections")
def request_correction(record_id: int) -> Response:
    set_target(f"record:{record_id}")
    return json_response(records.request_correction(
        current_services(), current_principal(), record_id, _body()), status=201)


@bp.post("/record-corrections/<int:correction_id>/<decision>")
def decide_correction(correction_id: int, decision: str) -> Response:
    set_target(f"record-correction:{correction_id}")
    return json_response(records.decide_correction(
        current_services(), current_principal(), correction_id, decision))


@bp.get("/points/rankings")
def rankings() -> Response:
    period, unit = text_arg("period"), text_arg("unit")
    if not period or not unit:
        raise InvalidInput("give period (2026-W49, 2026-12, 2026-Q4, 2026) and unit=<code>",
                           field="period" if not period else "unit")
    return json_response(points.rankings(current_services(), current_principal(), period,
                                         unit, int_arg("limit", 10)))


@bp.get("/points/<kind>/<int:subject_id>")
def balance(kind: str, subject_id: int) -> Response:
    return json_response(points.balance(current_services(), current_principal(), kind,
                                        subject_id))


@bp.get("/work-orgs/<int:org_id>/service-report")
def service_report(org_id: int) -> Response:
    year = int_arg("year", 0)
    if year and not 2000 <= year <= 2100:
        raise InvalidInput("year must be 2000..2100", field="year")
    return json_response(reports.service_report(current_services(), current_principal(),
                                                org_id, year or None))


@bp.post("/posts")
def open_post() -> Response:
    result = posts.open_post(current_services(), current_principal(), _body())
    set_target(f"post:{result['id']}")
    return json_response(result, status=201)


@bp.get("/posts")
def list_posts() -> Response:
    community = text_arg("community")
    if community is None:
        raise InvalidInput("give community=<code>", field="community")
    return json_response({"items": posts.list_posts(current_services(), current_principal(),
                                                    community)})


@bp.post("/posts/<int:post_id>/claims")
def claim_post(post_id: int) -> Response:
    set_target(f"post:{post_id}")
    return json_response(posts.claim_post(current_services(), current_principal(), post_id,
                                          _body()), status=201)


@bp.delete("/post-claims/<int:claim_id>")
def release_claim(claim_id: int) -> Response:
    set_target(f"post-claim:{claim_id}")
    return json_response(posts.release_claim(current_services(), current_principal(),
                                             claim_id))


@bp.post("/residents")
def add_resident() -> Response:
    result = residents.add_resident(current_services(), current_principal(), _body())
    set_target(f"resident:{result['id']}")
    return json_response(result, status=201)


@bp.get("/outbox")
def list_outbox() -> Response:
    return json_response(outbox.list_outbox(
        current_services(), current_principal(), status=text_arg("status") or "pending",
        limit=int_arg("limit", 100), offset=int_arg("offset", 0)))

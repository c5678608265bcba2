"""The OpenAPI document matches the app: same routes, and real responses fit its schemas."""

from __future__ import annotations

import io
import re

import pytest
from api_support import C1, H1, app_client, bearer, sample_records, write_geojson
from editor_support import EDITOR_CALLS
from jsonschema import Draft202012Validator
from loop_support import LOOP_CALLS
from maps_support import MAP_CALLS
from members_support import REGISTRATION_CALLS

from gridsvc.access import cli_principal
from gridsvc.services.boundaries import import_records
from gridsvc.web.openapi import openapi_document

IGNORED_METHODS = {"HEAD", "OPTIONS"}


def route_template(rule: str) -> str:
    """Flask's ``/units/<code>`` (or ``<string:code>``) as OpenAPI's ``/units/{code}``."""
    return re.sub(r"<(?:[^:<>]+:)?([^<>]+)>", r"{\1}", rule)


def app_operations(app) -> set[tuple[str, str]]:
    return {
        (method.lower(), route_template(rule.rule))
        for rule in app.url_map.iter_rules()
        if rule.rule.startswith("/api/v1/")
        for method in rule.methods or ()
        if method not in IGNORED_METHODS
    }


def doc_operations(doc: dict) -> set[tuple[str, str]]:
    return {(method, path) for path, item in doc["paths"].items() for method in item}


def follow(doc: dict, node: dict) -> dict:
    """A response object, following ``$ref`` into components."""
    while "$ref" in node:
        target = doc
        for part in node["$ref"].removeprefix("#/").split("/"):
            target = target[part]
        node = target
    return node


def test_document_lists_exactly_the_apps_routes(settings):
    with app_client(settings) as client:
        assert doc_operations(openapi_document()) == app_operations(client.application)


def test_component_schemas_are_valid_json_schema():
    doc = openapi_document()
    assert doc["openapi"].startswith("3.1")
    for schema in doc["components"]["schemas"].values():
        Draft202012Validator.check_schema(schema)  # raises, naming the bad keyword
    refs = re.findall(r"'\$ref': '([^']+)'", repr(doc))
    for ref in refs:  # every reference points at something
        assert follow(doc, {"$ref": ref}), ref


@pytest.fixture
def client(settings):
    with app_client(settings) as c:
        assert import_records(c.application.extensions["gridsvc"], sample_records(),
            viewer=cli_principal()).stored
        yield c


def _upload(content: bytes, name: str = "tree.geojson") -> dict:
    return {"data": {"file": (io.BytesIO(content), name)}, "content_type": "multipart/form-data"}


def _as(headers: dict, calls: list[tuple[str, str, dict]]) -> list[tuple[str, str, dict]]:
    return [(method, url, {**kwargs, "headers": headers}) for method, url, kwargs in calls]


def test_real_responses_match_the_documented_schemas(client, settings, tmp_path):
    doc = openapi_document()
    admin = bearer(settings, "admin")
    planner = bearer(settings, "planner", C1)
    good = write_geojson(sample_records(), tmp_path / "good.geojson").read_bytes()
    renamed = sample_records()
    renamed[0].name = "和平街道(新)"
    changed = write_geojson(renamed, tmp_path / "changed.geojson").read_bytes()
    broken = sample_records()
    broken[1].parent_code = "NOPE"
    bad = write_geojson(broken, tmp_path / "bad.geojson").read_bytes()
    calls: list[tuple[str, str, dict]] = [
        ("get", "/api/v1/levels", {}),
        ("get", "/api/v1/openapi.json", {}),
        ("get", "/api/v1/units?level=2", {}),  # 401: no token
        ("get", "/api/v1/boundaries/export", {"headers": {"Authorization": "Bearer gs_nope"}}),
        ("post", "/api/v1/boundaries/import", {**_upload(good), "headers": planner}),  # 403
        *_as(admin, [
            ("get", "/api/v1/units?level=2", {}),
            ("get", "/api/v1/units?geometry=1&limit=3", {}),
            ("get", "/api/v1/units?f=geojson&limit=3", {}),
            ("get", "/api/v1/units?bbox=1,2,3", {}),
            ("get", "/api/v1/units?parent=999", {}),
            ("get", f"/api/v1/units/{H1}?geometry=1", {}),
            ("get", f"/api/v1/units/{C1}?f=geojson", {}),
            ("get", "/api/v1/units/999", {}),
            ("get", f"/api/v1/units/{C1}/children", {}),
            ("get", f"/api/v1/units/{C1}/children?f=geojson", {}),
            ("get", f"/api/v1/units/{C1}/subtree", {}),
            ("get", "/api/v1/tree/subtree?max_level=3", {}),
            ("get", "/api/v1/tree/subtree?max_level=x", {}),
            ("get", "/api/v1/boundaries/validate", {}),
            ("get", "/api/v1/boundaries/validate?unit=999", {}),
            ("post", "/api/v1/boundaries/validate", _upload(bad)),
            ("post", "/api/v1/boundaries/import", _upload(bad)),
            ("post", "/api/v1/boundaries/import", _upload(good)),
            ("post", "/api/v1/boundaries/import", _upload(changed)),
            ("post", "/api/v1/boundaries/import", _upload(b"{}", "tree.shp")),
            ("get", "/api/v1/boundaries/export", {}),
            ("get", "/api/v1/boundaries/export?format=gpkg", {}),
            ("get", "/api/v1/boundaries/export?format=shp", {}),
            ("get", f"/api/v1/coverage?unit={C1}", {}),
            *EDITOR_CALLS,  # 400 and 428: no geometry, no If-Match
            *MAP_CALLS,
            *LOOP_CALLS,
        ]),
        ("get", "/api/v1/lookup?lon=120.9007&lat=32.0007&coordsys=wgs84", {}),
        ("post", "/api/v1/lookup/batch", {"json": [{"lon": 120.9007, "lat": 32.0007,
                                                    "coordsys": "wgs84"}, {"address": "x"}]}),
        ("post", "/api/v1/gazetteer/import", _upload(b"address\n", "g.csv")),  # 401: no token
        *REGISTRATION_CALLS,
    ]
    adapter = client.application.url_map.bind("localhost")
    answered: set[tuple[str, str]] = set()
    statuses: set[int] = set()
    for method, url, kwargs in calls:
        resp = getattr(client, method)(url, **kwargs)
        rule, _args = adapter.match(url.split("?")[0], method=method.upper(), return_rule=True)
        path = route_template(rule.rule)
        responses = doc["paths"][path][method]["responses"]
        assert str(resp.status_code) in responses, (method, url, resp.status_code)
        content = follow(doc, responses[str(resp.status_code)])["content"]
        assert resp.mimetype in content, (method, url, resp.mimetype)
        schema = content[resp.mimetype]["schema"]
        if resp.is_json:
            validator = Draft202012Validator({**schema, "components": doc["components"]})
            errors = [e.message for e in validator.iter_errors(resp.get_json())]
            assert not errors, (method, url, errors[:3])
        answered.add((method, path))
        statuses.add(resp.status_code)
    assert answered == doc_operations(doc)  # every operation was exercised
    assert statuses == {200, 201, 400, 401, 403, 404, 422, 428}

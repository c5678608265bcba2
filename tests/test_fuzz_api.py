"""Schemathesis against the OpenAPI documents, in-process (WSGI), on the small sample tree.

Every operation of ``/api/v1/openapi.json`` and of the OGC API's ``/ogc/api`` gets a bounded
number of generated requests (``GRIDSVC_TEST_FUZZ_EXAMPLES``, 10 by default; ``make fuzz``
sends 50), valid and invalid (positive and negative modes), seeded (``derandomize``) so a run
is reproducible.
Each response must not be a server error, and its status code, content type and body must be
ones the document lists for the operation. Runs once per database backend on one app per
backend; the database is throwaway, so the writing operations (imports, PUT geometry,
registrations, rosters) are fuzzed too.
"""

from __future__ import annotations

import io
import os
import re
from collections.abc import Iterator

import pytest
import schemathesis
from api_support import C1, app_client, bearer, sample_records
from conftest import empty_database
from flask import Flask
from hypothesis import HealthCheck, Phase, settings
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from gridsvc.access import cli_principal
from gridsvc.hierarchy import load_hierarchy
from gridsvc.services.boundaries import import_records
from gridsvc.settings import Settings
from gridsvc.web.ogc_openapi import ogc_openapi_document
from gridsvc.web.openapi import openapi_document

CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance,
          response_schema_conformance]
# GRIDSVC_TEST_FUZZ_EXAMPLES=200 fuzzes deeper, e.g. before a release.
EXAMPLES_PER_OPERATION = int(os.environ.get("GRIDSVC_TEST_FUZZ_EXAMPLES", "10"))

# The document the app serves at /api/v1/openapi.json (test_served_document_is_the_fuzzed_one);
# loaded at import so that pytest lists one test per operation.
schema = schemathesis.openapi.from_dict(openapi_document())
# The OGC document as the app serves it to the test client (its server is /ogc on localhost).
OGC_SERVER = "http://localhost/ogc"
ogc_schema = schemathesis.openapi.from_dict(ogc_openapi_document(
    OGC_SERVER, [lv.key for lv in load_hierarchy().levels]))
for fuzzed in (schema, ogc_schema):
    fuzzed.config.generation.update(modes=["positive", "negative"],
                                    max_examples=EXAMPLES_PER_OPERATION, deterministic=True)


def admin_headers(settings: Settings) -> dict[str, str]:
    """The one place that says how the fuzzer authenticates: an admin token, so the staff and
    planner operations run their real code rather than stopping at 401."""
    return bearer(settings, "admin")


@pytest.fixture(scope="module", params=["spatialite", "postgis"])
def fuzz_app(request: pytest.FixtureRequest, _databases, tmp_path_factory) -> Iterator[Flask]:
    """One app per backend for all operations (the ``db`` fixture would build one per test)."""
    database = _databases[request.param]
    empty_database(database)
    url = database.engine.url.render_as_string(hide_password=False)
    # The public lookup's rate limit is off: the fuzzer sends far more than its 120 lookups a
    # minute from one address, and 429s would hide what the lookups answer.
    settings = Settings(database_url=url, instance_dir=tmp_path_factory.mktemp("fuzz"),
                        lookup_rate_limit="", registration_rate_limit="",
                        members_rate_limit="", index_check_seconds=0)
    with app_client(settings) as client:
        assert import_records(client.application.extensions["gridsvc"], sample_records(),
            viewer=cli_principal()).stored
        client.application.config["fuzz_auth"] = admin_headers(settings)
        yield client.application
    empty_database(database)


# No shrinking phase: a failure shows the request as generated, and the run stays bounded.
@schema.parametrize()
@settings(max_examples=EXAMPLES_PER_OPERATION, derandomize=True, database=None, deadline=None,
          phases=[Phase.explicit, Phase.generate], suppress_health_check=list(HealthCheck))
def test_api_answers_as_documented(case, fuzz_app: Flask) -> None:
    case.call_and_validate(app=fuzz_app, headers=fuzz_app.config["fuzz_auth"], checks=CHECKS)


@ogc_schema.parametrize()
@settings(max_examples=EXAMPLES_PER_OPERATION, derandomize=True, database=None, deadline=None,
          phases=[Phase.explicit, Phase.generate], suppress_health_check=list(HealthCheck))
def test_ogc_api_answers_as_documented(case, fuzz_app: Flask) -> None:
    case.call_and_validate(app=fuzz_app, headers=fuzz_app.config["fuzz_auth"], checks=CHECKS)


def test_served_documents_are_the_fuzzed_ones(fuzz_app: Flask) -> None:
    client = fuzz_app.test_client()
    assert client.get("/api/v1/openapi.json").get_json() == openapi_document()
    assert client.get("/ogc/api").get_json() == ogc_schema.raw_schema


def test_document_declares_every_path_parameter() -> None:
    """``{code}`` was once declared ``in: query``, which no client could send."""
    for path, item in openapi_document()["paths"].items():
        for operation in item.values():
            declared = {p["name"] for p in operation.get("parameters", []) if p["in"] == "path"}
            assert declared == set(re.findall(r"{(\w+)}", path)), path


# Requests the fuzzer once answered with 500; each is now refused or answered as documented.
HOSTILE = [
    ("post", "/api/v1/lookup/batch", {"json": [{"lon": 0, "lat": 0, "coordsys": {}}]},
     200, None),
    ("post", "/api/v1/lookup/batch", {"json": [{"address": "幸福路88号", "district": 1.5}]},
     200, None),
    ("put", "/api/v1/members/245158416321431994368", {"json": {}}, 404, None),
    ("get", "/api/v1/members/" + "9" * 5000, {}, 404, None),
    ("put", f"/api/v1/units/{C1}/geometry", {"json": {}, "headers": {"If-Match": '""'}}, 412,
     None),
    ("get", "/api/v1/units?q=a%00b", {}, 400, "q"),
    ("get", "/api/v1/units/%00", {}, 400, "code"),
    # control characters in a path or query parameter, matched route or not, and in a batch
    # address (its body is read with orjson, not get_json): 400 naming where
    ("get", "/api/v1/units/a%07b", {}, 400, "code"),
    ("get", "/api/v1/lookup?address=%E5%B9%B8%E7%A6%8F%1B", {}, 400, "address"),
    ("get", "/api/v1/no/such%00path", {}, 400, "path"),
    ("get", "/ogc/collections/grid/items/a%01", {}, 400, "feature_id"),
    ("post", "/api/v1/lookup/batch", {"json": [{"address": "幸福路\x0088号"}]}, 200, None),
    ("post", "/api/v1/lookup/batch", {"json": [{"address": "幸福路88号", "district": "\x85"}]},
     200, None),
    ("get", "/api/v1/tree/subtree?max_level=%C2%B3", {}, 400, "max_level"),
    ("get", "/api/v1/members?offset=" + "1" * 30, {}, 400, "offset"),
    ("post", "/api/v1/members", {"data": "[" * 100_000, "content_type": "application/json"},
     400, None),
    ("post", "/api/v1/members", {"json": {"name": "a\x00b"}}, 400, "name"),
    ("post", "/api/v1/boundaries/validate",
     {"data": {"file": b"{}", "map": "1" * 5000}}, 400, "map"),
]


@pytest.mark.parametrize(("method", "url", "kwargs", "status", "field"), HOSTILE,
                         ids=[f"{m} {u[:40]}" for m, u, *_ in HOSTILE])
def test_hostile_requests_are_answered_without_server_error(fuzz_app: Flask, method, url,
                                                             kwargs, status, field) -> None:
    kwargs = dict(kwargs)
    headers = {**fuzz_app.config["fuzz_auth"], **kwargs.pop("headers", {})}
    if isinstance(kwargs.get("data"), dict):  # a fresh upload each run
        kwargs["data"] = {**kwargs["data"], "file": (io.BytesIO(kwargs["data"]["file"]), "t.json")}
    response = getattr(fuzz_app.test_client(), method)(url, headers=headers, **kwargs)
    assert response.status_code == status, response.get_data(as_text=True)[:300]
    body = response.get_json()
    if status == 200:  # a batch: the bad item is a problem naming its field
        problems = [r for r in body["results"] if "problem" in r]
        assert problems and problems[0]["problem"]["status"] == 400, body
    elif field is not None:
        assert body["field"] == field, body

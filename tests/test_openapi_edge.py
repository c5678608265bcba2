"""Both OpenAPI documents list the answers that come from outside an operation's own code:
400 (parameters checked before every view), 413 (every body has a limit), 429 (the
rate-limited operations, exactly those ratelimit.py limits) and 503 (the database), from the
one helper in gridsvc/web/openapi_edge.py."""

from __future__ import annotations

import dataclasses
import re

import pytest

from gridsvc.web import create_app, ratelimit
from gridsvc.web.ogc_openapi import ogc_openapi_document
from gridsvc.web.openapi import openapi_document
from gridsvc.web.openapi_edge import RATE_LIMITED

DOCUMENTS = {"api": openapi_document(),
             "ogc": ogc_openapi_document("http://localhost/ogc", ["street", "grid"])}


def operations(doc):
    for path, item in doc["paths"].items():
        for method, operation in item.items():
            yield method, path, operation


@pytest.mark.parametrize("name", DOCUMENTS)
def test_every_operation_lists_the_edge_answers(name):
    doc = DOCUMENTS[name]
    for method, path, operation in operations(doc):
        listed = operation["responses"]
        assert {"400", "503"} <= set(listed), (method, path)
        if "requestBody" in operation:
            assert "413" in listed, (method, path)
        for response in listed.values():
            if "$ref" in response:
                assert response["$ref"].split("/")[-1] in doc["components"]["responses"]
    for name_ in ("TooManyRequests", "Unavailable"):
        assert "Retry-After" in doc["components"]["responses"][name_]["headers"]


def test_the_rate_limited_operations_are_those_limited(settings):
    app = create_app(dataclasses.replace(settings, lookup_rate_limit="10/minute"))
    limited = set()
    for rule in app.url_map.iter_rules():
        if rule.endpoint in ratelimit.LIMITED_ENDPOINTS:
            path = re.sub(r"<(?:\w+:)?(\w+)>", r"{\1}", rule.rule)
            limited |= {(m.lower(), path) for m in rule.methods - {"HEAD", "OPTIONS"}}
    assert limited == RATE_LIMITED
    api = DOCUMENTS["api"]
    for method, path, operation in operations(api):
        assert ("429" in operation["responses"]) == ((method, path) in RATE_LIMITED), path

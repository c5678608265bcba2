"""Hardening of the HTTP API: body size limits (413), the lookup rate limit (429), and every
error, down to an unexpected exception or an unreachable database, as problem+json with a
stable, documented type."""

from __future__ import annotations

import dataclasses
import io
from collections.abc import Callable

import psycopg
import pytest
from api_support import app_client
from flask.testing import FlaskClient
from sqlalchemy.exc import OperationalError
from werkzeug.test import TestResponse

from gridsvc.settings import Settings
from gridsvc.storage.engine import is_unavailable
from gridsvc.web.problems import PROBLEM_TYPES

MB = 1024 * 1024
PROBLEM = "application/problem+json"
BATCH = "/api/v1/lookup/batch"
LOOKUP = "/api/v1/lookup?lon=120.9007&lat=32.0007&coordsys=wgs84"


def assert_problem(resp: TestResponse, status: int, slug: str) -> dict:
    """A problem+json answer of ``status`` whose stable type is documented and served."""
    assert resp.status_code == status, resp.get_data(as_text=True)[:500]
    assert resp.mimetype == PROBLEM
    body = resp.get_json()
    assert body["type"] == f"/problems/{slug}" and body["status"] == status
    assert body["title"] and body["detail"] and body["instance"]
    assert slug in PROBLEM_TYPES
    return body


def limited(settings: Settings, **changes: object):
    """A client of an app with small limits (1 MB bodies, 2 lookups a minute)."""
    base = {"max_json_mb": 1, "max_upload_mb": 1, "lookup_rate_limit": "2/minute"}
    return app_client(dataclasses.replace(settings, **(base | changes)))


def _raise_unexpected() -> None:
    raise RuntimeError("a bug")


def _raise_database_down() -> None:
    raise OperationalError("SELECT 1", {}, psycopg.OperationalError("connection refused"))


def _upload(size: int) -> dict:
    return {"data": {"file": (io.BytesIO(b"x" * size), "big.geojson")},
            "content_type": "multipart/form-data"}


ERRORS: dict[str, tuple[Callable[[FlaskClient], TestResponse], int, str]] = {
    "unknown-route": (lambda c: c.get("/api/v1/no-such-thing"), 404, "not-found"),
    "wrong-method": (lambda c: c.delete("/api/v1/lookup"), 405, "method-not-allowed"),
    "json-too-large": (lambda c: c.post(BATCH, data=b"[" + b" " * (2 * MB) + b"]",
                                        content_type="application/json"),
                       413, "payload-too-large"),
    "upload-too-large": (lambda c: c.post("/api/v1/boundaries/validate", **_upload(2 * MB)),
                         413, "payload-too-large"),
    "rate-limited": (lambda c: [c.get(LOOKUP) for _ in range(3)][-1], 429, "rate-limited"),
    "malformed-json-batch": (lambda c: c.post(BATCH, data=b"[{", content_type="application/json"),
                             400, "invalid-input"),
    "malformed-json-registration": (lambda c: c.post("/api/v1/members", data=b"{\"name\":",
                                                     content_type="application/json"),
                                    400, "invalid-input"),
    "unexpected-exception": (lambda c: c.get("/test/bug"), 500, "internal-error"),
    "database-down": (lambda c: c.get("/test/database-down"), 503, "database-unavailable"),
}


@pytest.mark.parametrize("case", list(ERRORS))
def test_every_error_is_problem_json(settings: Settings, case: str) -> None:
    call, status, slug = ERRORS[case]
    with limited(settings) as client:
        client.application.add_url_rule("/test/bug", "bug", _raise_unexpected)
        client.application.add_url_rule("/test/database-down", "database_down",
                                        _raise_database_down)
        body = assert_problem(call(client), status, slug)
        assert client.get(body["type"]).status_code == 200  # the type's page describes it


# --- body limits --------------------------------------------------------------------------------


def test_json_body_has_its_own_smaller_limit(settings: Settings) -> None:
    with limited(settings, max_upload_mb=4, lookup_rate_limit="0") as client:
        big = client.post(BATCH, data=b"[" + b" " * (MB + 10) + b"]",
                          content_type="application/json")
        body = assert_problem(big, 413, "payload-too-large")
        assert body["setting"] == "GRIDSVC_MAX_JSON_MB" and body["limit_bytes"] == MB
        assert "1 MB" in body["detail"] and "GRIDSVC_MAX_JSON_MB" in body["detail"]
        # just under the limit the body reaches the view
        fits = client.post(BATCH, data=b"[" + b" " * (MB - 10) + b"]",
                           content_type="application/json")
        assert fits.status_code == 200, fits.get_data()[:300]
        # a multipart upload past the JSON limit but within the upload limit is not refused
        upload = client.post("/api/v1/boundaries/validate", **_upload(2 * MB))
        assert upload.status_code != 413
        too_big = client.post("/api/v1/boundaries/validate", **_upload(5 * MB))
        body = assert_problem(too_big, 413, "payload-too-large")
        assert body["setting"] == "GRIDSVC_MAX_UPLOAD_MB" and "4 MB" in body["detail"]


def test_a_body_without_length_is_cut_at_the_limit(settings: Settings) -> None:
    """A chunked body (no Content-Length, as gunicorn passes it) is counted as it is read."""
    def chunked(client: FlaskClient, body: bytes) -> TestResponse:
        return client.post(BATCH, input_stream=io.BytesIO(body), content_type="application/json",
                           headers={"Transfer-Encoding": "chunked"},
                           environ_overrides={"wsgi.input_terminated": True})

    with limited(settings) as client:
        resp = chunked(client, b"[" + b" " * (2 * MB) + b"]")
        assert resp.request.content_length is None
        assert assert_problem(resp, 413, "payload-too-large")["setting"] == "GRIDSVC_MAX_JSON_MB"
        fits = chunked(client, b'[{"address": "x"}' + b" " * (MB - 100) + b"]")
        assert fits.status_code == 200, fits.get_data()[:300]
        assert len(fits.get_json()["results"]) == 1  # the whole body reached the view


# --- the lookup rate limit ----------------------------------------------------------------------


def test_lookup_is_rate_limited_per_client_address(settings: Settings) -> None:
    with limited(settings, lookup_rate_limit="3/minute") as client:
        assert [client.get(LOOKUP).status_code != 429 for _ in range(3)] == [True] * 3
        refused = client.get(LOOKUP)
        body = assert_problem(refused, 429, "rate-limited")
        retry = int(refused.headers["Retry-After"])
        assert 1 <= retry <= 60 and body["retry_after"] == retry
        assert body["rate"] == "3 per 1 minute" and "127.0.0.1" in body["detail"]
        # another client address has its own count
        other = client.get(LOOKUP, environ_base={"REMOTE_ADDR": "127.0.0.2"})
        assert other.status_code != 429
        # the batch endpoint is counted on its own, and limited the same way
        batches = [client.post(BATCH, json=[]).status_code for _ in range(4)]
        assert batches == [200, 200, 200, 429]
        # other endpoints are never limited
        assert {client.get("/api/v1/levels").status_code for _ in range(5)} == {200}


@pytest.mark.parametrize("off", ["0", ""])
def test_rate_limit_can_be_turned_off(settings: Settings, off: str) -> None:
    with limited(settings, lookup_rate_limit=off) as client:
        assert 429 not in {client.get(LOOKUP).status_code for _ in range(6)}


def test_a_bad_rate_limit_is_refused_at_start(settings: Settings) -> None:
    with pytest.raises(ValueError, match="GRIDSVC_LOOKUP_RATE_LIMIT='lots'"), \
            limited(settings, lookup_rate_limit="lots"):
        pass


def test_forwarded_addresses_count_only_behind_a_trusted_proxy(settings: Settings) -> None:
    def statuses(client: FlaskClient, forwarded_for: str) -> list[int]:
        headers = {"X-Forwarded-For": forwarded_for}
        return [client.get(LOOKUP, headers=headers).status_code for _ in range(2)]

    with limited(settings, lookup_rate_limit="2/minute") as client:  # no proxy: ignored
        assert 429 not in statuses(client, "127.0.0.5")
        assert statuses(client, "127.0.0.6") == [429, 429]  # a forged header changes nothing
    with limited(settings, lookup_rate_limit="2/minute", proxy_hops=1) as client:
        assert 429 not in statuses(client, "127.0.0.5")
        assert 429 not in statuses(client, "127.0.0.6")  # each client behind the proxy
        assert statuses(client, "127.0.0.5") == [429, 429]


def test_settings_read_the_new_variables() -> None:
    settings = Settings.from_env({
        "GRIDSVC_MAX_JSON_MB": "3", "GRIDSVC_LOOKUP_RATE_LIMIT": "5/second",
        "GRIDSVC_ZIP_MAX_MB": "10", "GRIDSVC_ZIP_MAX_RATIO": "50",
        "GRIDSVC_ZIP_MAX_ENTRIES": "20", "GRIDSVC_PROXY_HOPS": "1"})
    assert (settings.max_json_mb, settings.lookup_rate_limit, settings.zip_max_mb,
            settings.zip_max_ratio, settings.zip_max_entries, settings.proxy_hops) == (
        3, "5/second", 10, 50, 20, 1)
    defaults = Settings()
    assert defaults.max_json_mb < defaults.max_upload_mb
    assert defaults.lookup_rate_limit == "120/minute"


# --- which database errors are "unavailable" ------------------------------------------------


def _sqlite_error(message: str) -> OperationalError:
    import sqlite3

    return OperationalError("SELECT 1", {}, sqlite3.OperationalError(message))


def test_only_outages_count_as_unavailable() -> None:
    assert is_unavailable(_sqlite_error("database is locked"))
    assert is_unavailable(_sqlite_error("unable to open database file"))
    assert not is_unavailable(_sqlite_error("no such table: units"))  # a bug: 500
    assert is_unavailable(OperationalError("x", {}, psycopg.OperationalError("gone")))
    assert not is_unavailable(RuntimeError("database is locked"))


def test_limit_answers_are_documented(settings: Settings) -> None:
    """413, 429 and 503 are in the OpenAPI document where they can happen, and real answers
    fit its Problem schema."""
    from jsonschema import Draft202012Validator

    from gridsvc.web.openapi import openapi_document

    doc = openapi_document()
    expected = [("get", "/api/v1/lookup", "429"), ("post", BATCH, "429"),
                ("post", BATCH, "413"), ("post", "/api/v1/boundaries/import", "413"),
                ("post", "/api/v1/members", "413"), ("get", "/api/v1/levels", "503"),
                ("get", "/api/v1/units", "503")]
    for method, path, status in expected:
        assert status in doc["paths"][path][method]["responses"], (method, path, status)
    responses = doc["components"]["responses"]
    assert "Retry-After" in responses["TooManyRequests"]["headers"]
    assert "Retry-After" in responses["Unavailable"]["headers"]
    validator = Draft202012Validator({**doc["components"]["schemas"]["Problem"],
                                      "components": doc["components"]})
    with limited(settings, lookup_rate_limit="1/minute") as client:
        answers = [client.get(LOOKUP), client.get(LOOKUP),
                   client.post(BATCH, data=b"[" + b" " * (2 * MB) + b"]",
                               content_type="application/json")]
    assert [a.status_code for a in answers][1:] == [429, 413]
    for answer in answers[1:]:
        assert not list(validator.iter_errors(answer.get_json()))

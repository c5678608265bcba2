"""Boundary upload, validation and export over HTTP, on both databases."""

from __future__ import annotations

import dataclasses
import io
import json

import pytest
from api_support import (
    ALL_CODES,
    B1,
    B2,
    C1,
    G1,
    G2,
    H1,
    app_client,
    sample_records,
    sign_in,
    write_geojson,
)

from gridsvc.access import cli_principal
from gridsvc.services.boundaries import import_records
from gridsvc.services.context import Services

pytestmark = pytest.mark.storage

PROBLEM = "application/problem+json"


@pytest.fixture
def client(settings):
    """An administrator's client (tests/test_scope_units.py covers the other roles)."""
    with app_client(settings) as c:
        yield sign_in(c, settings)


@pytest.fixture
def stored(settings):
    """The sample tree, stored through the service layer."""
    svc = Services.from_settings(settings)
    try:
        assert import_records(svc, sample_records(), viewer=cli_principal()).stored
    finally:
        svc.close()


def upload(client, url: str, content: bytes, filename: str, **form: str):
    data = {"file": (io.BytesIO(content), filename), **form}
    return client.post(url, data=data, content_type="multipart/form-data")


def good_file(tmp_path) -> bytes:
    return write_geojson(sample_records(), tmp_path / "good.geojson").read_bytes()


def bad_file(tmp_path) -> bytes:
    """The sample tree plus a building whose parent does not exist."""
    records = sample_records()
    stray = dataclasses.replace(records[6], row=len(records) + 1, code=B1 + "99",
                                parent_code="NOPE")
    return write_geojson([*records, stray], tmp_path / "bad.geojson").read_bytes()


def stored_total(client) -> int:
    return client.get("/api/v1/units?limit=1").get_json()["total"]


def test_import_stores_then_reimport_changes_nothing(client, tmp_path):
    content = good_file(tmp_path)
    first = upload(client, "/api/v1/boundaries/import", content, "和平街道.geojson")
    assert first.status_code == 201, first.get_json()
    body = first.get_json()
    assert (body["stored"], body["created"], body["updated"]) == (True, len(ALL_CODES), 0)
    assert body["report"]["ok"] is True and body["revision"] is not None
    assert stored_total(client) == len(ALL_CODES)
    again = upload(client, "/api/v1/boundaries/import", content, "和平街道.geojson")
    assert again.status_code == 200
    body = again.get_json()
    assert (body["created"], body["updated"], body["unchanged"]) == (0, 0, len(ALL_CODES))
    assert body["revision"] is None


def test_bad_file_is_refused_with_its_report_and_nothing_stored(client, tmp_path):
    resp = upload(client, "/api/v1/boundaries/import", bad_file(tmp_path), "bad.geojson")
    assert resp.status_code == 422 and resp.mimetype == PROBLEM
    body = resp.get_json()
    assert body["type"] == "/problems/validation-failed"
    assert body["instance"] == "/api/v1/boundaries/import"
    report = body["report"]
    assert report["ok"] is False and report["errors"] >= 1
    stray = [p for p in report["problems"] if p.get("code") == B1 + "99"]
    assert any(p["rule"] == "unknown-parent" and p["field"] == "parent_code" for p in stray)
    assert stored_total(client) == 0


def test_validate_upload_reports_and_never_stores(client, tmp_path):
    bad = upload(client, "/api/v1/boundaries/validate", bad_file(tmp_path), "bad.geojson")
    assert bad.status_code == 200
    assert bad.get_json()["ok"] is False
    good = upload(client, "/api/v1/boundaries/validate", good_file(tmp_path), "good.geojson")
    assert good.status_code == 200
    assert good.get_json()["ok"] is True
    assert good.get_json()["features"] == len(ALL_CODES)
    assert stored_total(client) == 0


def test_dry_run_import_stores_nothing(client, tmp_path):
    resp = upload(client, "/api/v1/boundaries/import", good_file(tmp_path), "good.geojson",
                  dry_run="1")
    assert resp.status_code == 200
    assert resp.get_json()["dry_run"] is True and resp.get_json()["stored"] is False
    assert stored_total(client) == 0


def test_field_map_names_the_files_own_columns(client, tmp_path):
    collection = json.loads(good_file(tmp_path))
    for feature in collection["features"]:
        feature["properties"]["GRID_ID"] = feature["properties"].pop("code")
    content = json.dumps(collection, ensure_ascii=False).encode()
    unmapped = upload(client, "/api/v1/boundaries/validate", content, "grid.geojson")
    assert unmapped.get_json()["ok"] is False
    mapped = upload(client, "/api/v1/boundaries/import", content, "grid.geojson",
                    map=json.dumps({"code": "GRID_ID"}))
    assert mapped.status_code == 201, mapped.get_json()
    assert stored_total(client) == len(ALL_CODES)


@pytest.mark.parametrize(
    ("filename", "content", "form", "field", "words"),
    [
        ("grid.shp", b"\x00" * 100, {}, "file", "zip"),
        ("grid.txt", b"code,name", {}, "file", ".gpkg"),
        ("grid.geojson", b"this is not json", {}, "file", "grid.geojson"),
        ("grid.geojson", b"{}", {"map": "{not json"}, "map", "JSON"),
        ("grid.geojson", b"{}", {"map": '{"code": 1}'}, "map", "strings"),
        ("grid.geojson", b"{}", {"repair": "perhaps"}, "repair", "repair"),
    ],
)
def test_bad_uploads_are_invalid_input(client, filename, content, form, field, words):
    resp = upload(client, "/api/v1/boundaries/import", content, filename, **form)
    assert resp.status_code == 400 and resp.mimetype == PROBLEM
    body = resp.get_json()
    assert body["type"] == "/problems/invalid-input" and body["field"] == field
    assert words in body["detail"]
    assert "gridsvc-upload-" not in body["detail"]  # no server paths


def test_missing_file_part(client):
    resp = client.post("/api/v1/boundaries/import", data={"dry_run": "1"},
                       content_type="multipart/form-data")
    assert resp.status_code == 400 and resp.get_json()["field"] == "file"


def test_upload_too_large_is_a_413_problem(settings):
    with app_client(dataclasses.replace(settings, max_upload_mb=1)) as client:
        sign_in(client, settings)
        resp = upload(client, "/api/v1/boundaries/import", b" " * (1024 * 1024 + 10),
                      "big.geojson")
    assert resp.status_code == 413 and resp.mimetype == PROBLEM
    body = resp.get_json()
    assert body["type"] == "/problems/payload-too-large"
    assert "1 MB" in body["detail"]


def test_validate_stored_tree_and_subtree(client, stored):
    whole = client.get("/api/v1/boundaries/validate").get_json()
    assert whole["ok"] is True and whole["features"] == len(ALL_CODES)
    part = client.get(f"/api/v1/boundaries/validate?unit={C1}").get_json()
    assert part["ok"] is True and part["features"] == 6
    missing = client.get("/api/v1/boundaries/validate?unit=999")
    assert missing.status_code == 404 and missing.get_json()["type"] == "/problems/not-found"


@pytest.mark.parametrize(
    ("fmt", "media", "suffix"),
    [
        ("geojson", "application/geo+json", ".geojson"),
        ("gpkg", "application/geopackage+sqlite3", ".gpkg"),
        ("shp", "application/zip", ".zip"),
    ],
)
def test_export_round_trips_through_import(client, stored, fmt, media, suffix):
    resp = client.get(f"/api/v1/boundaries/export?format={fmt}")
    assert resp.status_code == 200 and resp.mimetype == media
    disposition = resp.headers["Content-Disposition"]
    assert disposition.startswith("attachment") and f"gridsvc-tree{suffix}" in disposition
    back = upload(client, "/api/v1/boundaries/import", resp.data, f"export{suffix}")
    assert back.status_code == 200, back.get_json()
    body = back.get_json()
    assert (body["created"], body["updated"], body["unchanged"]) == (0, 0, len(ALL_CODES))


def test_export_subtree_and_bad_format(client, stored):
    resp = client.get(f"/api/v1/boundaries/export?unit={G1}")
    assert resp.mimetype == "application/geo+json"
    codes = {f["properties"]["code"] for f in resp.get_json()["features"]}
    assert codes == {G1, B1, B2, H1}
    assert G2 not in codes
    bad = client.get("/api/v1/boundaries/export?format=kml")
    assert bad.status_code == 400 and bad.get_json()["field"] == "format"
    missing = client.get("/api/v1/boundaries/export?unit=999")
    assert missing.status_code == 404

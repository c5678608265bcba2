"""Logs never contain phones, addresses or coordinates."""

from __future__ import annotations

import logging

import pytest
from api_support import app_client, bearer
from members_support import city, city_services

from gridsvc.cli.server import ServeOptions
from gridsvc.logsafe import redact


@pytest.mark.parametrize("text, secret", [
    ("call 13812345678 now", "13812345678"),
    ("call 138-1234-5678 now", "1234-5678"),
    ("+86 138 1234 5678", "1234 5678"),
    ("at 120.90071,32.00071", "120.90071"),
    ("at 120.90071,32.00071", "32.00071"),
    ("lives at 长江路5号阳光小区3栋2单元201室", "长江路5号"),
    ("GET /api/v1/lookup?address=%E9%95%BF&lon=120.9 HTTP/1.1", "address="),
])
def test_redact_removes_personal_data(text, secret):
    assert secret not in redact(text)


def test_redact_keeps_what_is_not_personal():
    assert redact("GET /api/v1/units 200 in 3 ms") == "GET /api/v1/units 200 in 3 ms"


@pytest.mark.storage
def test_requests_with_personal_data_leave_none_in_the_logs(settings, tmp_path, caplog):
    city_services(settings, tmp_path).close()
    e = city().gazetteer[0]
    phone = "13612345678"
    caplog.set_level(logging.DEBUG)
    logging.getLogger("sqlalchemy.engine").setLevel(logging.INFO)  # statements, parameters
    try:
        with app_client(settings) as client:
            app = client.application

            def boom():
                raise ValueError(f"failed for {phone} at {e.address} ({e.lon:.6f},{e.lat:.6f})")

            app.add_url_rule("/boom", view_func=boom)
            assert client.post("/api/v1/members", json={
                "name": "张三", "phone": phone, "home_address": e.address}).status_code == 202
            assert client.post("/api/v1/members", json={
                "name": "张三", "phone": phone, "home_address": e.address}).status_code == 202
            client.get(f"/api/v1/lookup?address={e.address}")
            client.get(f"/api/v1/lookup?lon={e.lon}&lat={e.lat}&coordsys=wgs84")
            assert client.get("/api/v1/members?q=张", headers=bearer(settings, "staff")
                              ).status_code == 200
            assert client.get("/boom").status_code == 500
    finally:
        logging.getLogger("sqlalchemy.engine").setLevel(logging.WARNING)
    logged = caplog.text + "".join(r.exc_text or "" for r in caplog.records)
    assert "unexpected error" in logged and "INSERT INTO members" in logged  # logs were made
    for secret in (phone, "1234-5678", e.address, f"{e.lon:.6f}", f"{e.lat:.6f}", "张三"):
        assert secret not in logged, secret


def test_the_access_log_leaves_query_strings_out():
    fmt = ServeOptions(access_log=True).gunicorn_settings()["access_log_format"]
    assert "%(U)s" in fmt
    assert not any(part in fmt for part in ("%(r)s", "%(q)s", "%(f)s", "%(a)s"))

"""API tokens: stored hashed, verified on every request, revocable, expiring, scoped."""

from __future__ import annotations

import dataclasses
from datetime import timedelta

import pytest
from api_support import app_client, sample_records
from click.testing import CliRunner
from sqlalchemy import select, text

from gridsvc.access import cli_principal
from gridsvc.cli import cli
from gridsvc.services import accounts
from gridsvc.services.boundaries import import_records
from gridsvc.services.context import Services
from gridsvc.services.errors import InvalidInput, NotFound
from gridsvc.storage.models import ApiToken, utcnow

pytestmark = pytest.mark.storage
AUDIT = "/api/v1/audit"


@pytest.fixture
def svc(settings):
    services = Services.from_settings(settings)
    assert import_records(services, sample_records(), viewer=cli_principal()).stored
    yield services
    services.close()


def test_tokens_are_stored_hashed_and_verified(svc, settings):
    token, info = accounts.create_token(svc, "ops", "admin")
    assert token.startswith("gs_") and len(token) > 40
    with svc.db.engine.connect() as conn:
        dump = " ".join(str(v) for row in conn.execute(text("select * from api_tokens"))
                        for v in row)
    assert token not in dump and token[8:] not in dump
    assert info["prefix"] == token[:8]
    with app_client(settings) as client:
        assert client.get(AUDIT, headers={"Authorization": f"Bearer {token}"}).status_code == 200
        for header in ("Bearer " + token[:-1] + "x", "Basic " + token, "Bearer", "Bearer 秘密",
                       token):
            resp = client.get(AUDIT, headers={"Authorization": header})
            assert resp.status_code == 401, header
            assert resp.mimetype == "application/problem+json"
            assert resp.get_json()["type"] == "/problems/unauthorized"
            assert resp.headers["WWW-Authenticate"].startswith("Bearer")
        assert client.get(AUDIT).status_code == 401  # the public


def test_revoked_and_expired_tokens_and_vanished_scopes_stop_working(svc, settings):
    from api_support import C1

    revoked, r_info = accounts.create_token(svc, "gone", "admin")
    expired, e_info = accounts.create_token(svc, "old", "admin", expires_days=1)
    scoped, _ = accounts.create_token(svc, "c1 staff", "staff", unit=C1)
    accounts.revoke_token(svc, r_info["id"])
    with svc.db.session() as session:
        session.get(ApiToken, e_info["id"]).expires_at = utcnow() - timedelta(seconds=1)
    assert accounts.verify_token(svc, revoked) is None
    assert accounts.verify_token(svc, expired) is None
    principal = accounts.verify_token(svc, scoped)
    assert principal is not None and principal.scope_path.endswith(f"/{C1}/")
    with svc.db.session() as session:  # the scope unit's code changes: the token dies
        session.execute(text("update units set code = 'X' || code where code = :c"), {"c": C1})
    accounts.forget_tokens()  # as after token_cache_seconds
    assert accounts.verify_token(svc, scoped) is None
    with app_client(settings) as client:
        for token in (revoked, expired):
            assert client.get(AUDIT, headers={"Authorization": f"Bearer {token}"}
                              ).status_code == 401
    assert [t["name"] for t in accounts.list_tokens(svc)] == ["old", "c1 staff"]
    assert len(accounts.list_tokens(svc, include_revoked=True)) == 3


@pytest.mark.parametrize("kwargs, field", [
    ({"name": "", "role": "admin"}, "name"),
    ({"name": "x", "role": "root"}, "role"),
    ({"name": "x", "role": "public"}, "role"),
    ({"name": "x", "role": "admin", "unit": "320602001"}, "unit"),
    ({"name": "x", "role": "member"}, "member_id"),
    ({"name": "x", "role": "staff", "member_id": 1}, "member_id"),
    ({"name": "x", "role": "staff", "expires_days": 0}, "expires_days"),
])
def test_bad_token_requests_name_the_field(svc, kwargs, field):
    kwargs = dict(kwargs)
    name, role = kwargs.pop("name"), kwargs.pop("role")
    with pytest.raises(InvalidInput) as err:
        accounts.create_token(svc, name, role, **kwargs)
    assert err.value.extra["field"] == field


def test_a_scope_must_exist(svc):
    with pytest.raises(NotFound):
        accounts.create_token(svc, "x", "planner", unit="nope")


def test_the_cookie_authorises_writes_only_with_its_csrf_token(svc, settings):
    from gridsvc.web.auth import TOKEN_COOKIE
    from gridsvc.web.csrf import token_for

    token, _ = accounts.create_token(svc, "browser", "staff")
    other, _ = accounts.create_token(svc, "other browser", "staff")
    with app_client(settings) as client:
        client.set_cookie(TOKEN_COOKIE, token)
        assert client.get("/api/v1/members").status_code == 200
        # a write with only the cookie is refused, naming the missing token
        refused = client.put("/api/v1/members/999999", json={"name": "x"})
        assert refused.status_code == 403 and "CSRF" in refused.get_json()["detail"]
        for wrong in ("", "0" * 64, token, token_for(other)):
            assert client.put("/api/v1/members/999999", json={"name": "x"},
                              headers={"X-CSRF-Token": wrong}).status_code == 403
        # with the token the cookie authorises (the member does not exist: 404, not 401/403)
        assert client.put("/api/v1/members/999999", json={"name": "x"},
                          headers={"X-CSRF-Token": token_for(token)}).status_code == 404
        # a view that stores nothing (not audited) is not opened to the cookie alone
        check = client.post("/api/v1/boundaries/validate", data={})
        assert check.status_code == 403 and "CSRF" in check.get_json()["detail"]
        # a form sends the token as a field: authorised, so the missing file is what is wrong
        form = client.post("/api/v1/boundaries/validate", data={"csrf_token": token_for(token)})
        assert form.status_code == 400 and form.get_json()["field"] == "file"
        # public writes stay public for a signed-in browser
        lookup = client.post("/api/v1/lookup/batch", json=[{"lon": 0, "lat": 0}])
        assert lookup.status_code == 200
    with app_client(settings) as client:  # API clients send the header and no CSRF token
        client.set_cookie(TOKEN_COOKIE, other)
        assert client.put("/api/v1/members/999999", json={"name": "x"},
                          headers={"Authorization": f"Bearer {token}"}).status_code == 404


def test_the_cli_makes_lists_and_revokes_tokens(svc, settings, monkeypatch):
    monkeypatch.setenv("GRIDSVC_DATABASE_URL", settings.database_url)
    runner = CliRunner()
    made = runner.invoke(cli, ["token", "create", "--name", "ops desk", "--role", "admin"])
    assert made.exit_code == 0, made.output
    token = made.stdout.strip().splitlines()[0]
    assert accounts.verify_token(svc, token).name == "ops desk"
    listed = runner.invoke(cli, ["token", "list"])
    assert "ops desk" in listed.output and token not in listed.output
    token_id = svc.db.engine.connect().execute(
        select(ApiToken.id).where(ApiToken.name == "ops desk")).scalar_one()
    assert runner.invoke(cli, ["token", "revoke", str(token_id)]).exit_code == 0
    assert accounts.verify_token(svc, token) is None
    bad = runner.invoke(cli, ["token", "create", "--name", "x", "--role", "staff",
                              "--unit", "nope"])
    assert bad.exit_code != 0 and "no unit" in bad.output
    log = runner.invoke(cli, ["audit", "list", "--json"])
    entries = __import__("json").loads(log.stdout)["items"]
    assert [(e["action"], e["result"]) for e in entries][:3] == [
        ("cli token create", "failed: ClickException"), ("cli token revoke", "ok"),
        ("cli token create", "ok")]
    assert all(e["actor"].startswith("cli:") for e in entries)


def test_a_verified_token_is_remembered_for_a_few_seconds_only(svc):
    token, info = accounts.create_token(svc, "busy client", "staff")
    assert accounts.verify_token(svc, token).name == "busy client"
    with svc.db.session() as session:  # revoked by another process: no cache cleared here
        session.get(ApiToken, info["id"]).revoked_at = utcnow()
    assert accounts.verify_token(svc, token) is not None  # still trusted for a moment
    accounts.forget_tokens()
    assert accounts.verify_token(svc, token) is None
    uncached = Services.from_settings(dataclasses.replace(svc.settings, token_cache_seconds=0))
    try:
        other, other_info = accounts.create_token(uncached, "careful", "staff")
        assert accounts.verify_token(uncached, other) is not None
        with uncached.db.session() as session:
            session.get(ApiToken, other_info["id"]).revoked_at = utcnow()
        assert accounts.verify_token(uncached, other) is None
    finally:
        uncached.close()

"""Security headers on every kind of response, the CSP's nonces and hashes against the inline
scripts the pages really hold, and stored text that is inert for Jinja and for <script>
(branca parses macro output as a template again: a name must never run on the server).
Browser checks (no CSP violation on any page, markup that runs nothing) are in
tests/test_xss_browser.py and the other browser tests."""

from __future__ import annotations

import base64
import dataclasses
import hashlib
import json
import re

import pytest
from api_support import B1, C1, G1, S, app_client, sample_records, sign_in

from gridsvc.access import cli_principal
from gridsvc.maps.safe_html import html_text, script_json
from gridsvc.services.boundaries import import_records

SERVER_SIDE = "{{ 'RAN' ~ 'JINJA' }}{% for x in 'ab' %}LOOP{{ x }}{% endfor %}{# note #}"
SCRIPT_ATTR = re.compile(r"<script(?P<attrs>[^>]*)>(?P<code>.*?)</script>", re.S)


@pytest.fixture
def client(settings):
    with app_client(dataclasses.replace(settings, basemap="none")) as c:
        sign_in(c, settings)
        records = sample_records()
        for r in records:
            if r.code in (S, C1, G1, B1):
                r.name, r.leader = SERVER_SIDE + r.name, SERVER_SIDE
        assert import_records(c.application.extensions["gridsvc"], records,
            viewer=cli_principal()).stored
        yield c


def csp(response) -> dict[str, str]:
    return dict(part.strip().split(" ", 1) for part in
                response.headers["Content-Security-Policy"].split(";"))


@pytest.mark.parametrize("path", [
    "/api/v1/levels", f"/api/v1/units/{G1}", "/api/v1/units/nope", "/api/v1/openapi.json",
    "/no/such/path", "/problems/not-found", "/ogc?f=html", "/ogc/collections/grid/items",
    "/session", "/static/editor/editor.js", "/vendor/node_modules/leaflet/dist/leaflet.js",
    f"/maps/coverage?unit={C1}", "/maps/editor", "/healthz"])
def test_every_response_carries_the_headers(client, path):
    resp = client.get(path)
    policy = csp(resp)
    assert "'unsafe-inline'" not in policy["script-src"] and "unsafe-eval" not in policy[
        "script-src"]
    assert policy["script-src"].split()[0] == "'self'"
    assert policy["object-src"] == "'none'" and policy["base-uri"] == "'none'"
    assert policy["frame-ancestors"] == "'none'"
    assert resp.headers["X-Content-Type-Options"] == "nosniff"
    assert resp.headers["X-Frame-Options"] == "DENY"
    assert resp.headers["Referrer-Policy"] == "strict-origin-when-cross-origin"


def test_error_answers_carry_the_headers_too(client):
    for resp in (client.delete("/api/v1/levels"), client.get("/api/v1/units?limit=x")):
        assert resp.status_code in (400, 405)
        assert csp(resp)["script-src"] == "'self'"
        assert resp.headers["X-Frame-Options"] == "DENY"


@pytest.mark.parametrize("path", [
    f"/maps/coverage?unit={S}&inline=1", f"/maps/coverage?unit={S}&inline=0",
    f"/maps/distribution?unit={S}&detail=1", f"/maps/validation?unit={C1}",
    f"/maps/editor?unit={G1}"])
def test_each_inline_script_carries_the_nonce_or_a_listed_hash(client, path):
    first, second = client.get(path), client.get(path)
    assert first.status_code == 200
    sources = csp(first)["script-src"].split()
    [nonce] = [s[len("'nonce-"):-1] for s in sources if s.startswith("'nonce-")]
    assert f"'nonce-{nonce}'" not in csp(second)["script-src"]  # fresh per response
    html = first.get_data(as_text=True)
    inline = [m for m in SCRIPT_ATTR.finditer(html) if "src=" not in m["attrs"]]
    assert len(inline) >= 2
    for script in inline:
        digest = base64.b64encode(hashlib.sha256(script["code"].encode()).digest()).decode()
        assert f'nonce="{nonce}"' in script["attrs"] or f"'sha256-{digest}'" in sources


@pytest.mark.parametrize("path", [
    f"/maps/coverage?unit={S}&inline=1", f"/maps/coverage?unit={S}&inline=0",
    f"/maps/validation?unit={S}", f"/maps/distribution?unit={S}&inline=1",
    "/maps/editor?unit={{ 'RAN' ~ 'JINJA' }}"])
def test_stored_text_is_never_a_template(client, path):
    """A name holding Jinja syntax reaches the page as that text (on the page title, in the
    inlined layers), never evaluated."""
    resp = client.get(path)
    assert resp.status_code == 200
    html = resp.get_data(as_text=True)
    assert "RANJINJA" not in html and "LOOPa" not in html
    if "inline=1" in path:
        assert script_json(SERVER_SIDE)[1:-1] in html  # the inlined names, escaped


def test_script_json_and_html_text_escape_what_could_break_out():
    text = "</script><!--<script>{{x}}{%y%}{#z#}&\u2028\u2029'\"\\<"
    out = script_json({"name": text, "n": [{}, {"a": {}}]})
    for bad in ("<", ">", "&", "\u2028", "\u2029", "{{", "{%", "{#"):
        assert bad not in out
    assert json.loads(out) == {"name": text, "n": [{}, {"a": {}}]}  # same value in JS
    assert json.loads(script_json(json.dumps([text]).encode())) == [text]  # JSON text as is
    shown = html_text(text)
    assert not set("<>\"'") & set(shown) and "{" not in shown

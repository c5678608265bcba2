"""Stored text that is markup runs nothing, in headless Chromium, on every page that shows it.

Unit names, leaders, 党员中心户, member names, a token's name and an uploaded file's name are set
(by import, by OGC PATCH, by upload) to HTML and script payloads, to a ``</script>`` break-out
and to a Jinja expression that would build one on the server. Each page is opened with every
tooltip and popup of its map opened (and one real hover), and a payload that ran would set
``window.__xss`` or open a dialog; the page's Content-Security-Policy must report no violation
either (the text is shown as text, not blocked).
"""

from __future__ import annotations

import json
import urllib.request
from pathlib import Path

import pytest
from api_support import B1, B2, C1, G1, G2, H1, S, bearer, sample_records, write_geojson
from browser import assert_all_requests_local, assert_no_console_errors, open_page
from shapely.geometry import box
from sqlalchemy import select

from gridsvc.access import cli_principal
from gridsvc.maps.assets import assets_dir, missing_files
from gridsvc.services.boundaries import import_records
from gridsvc.storage.models import Member, Unit

pytestmark = [pytest.mark.browser, pytest.mark.storage]

IMG = '<img src=x onerror="window.__xss=1;alert(1)">'
SCRIPT = "</script><script>window.__xss=2;alert(2)</script><!--"
ATTR = "\"'><svg onload=\"window.__xss=3;alert(3)\">"
# Rendered by Jinja (branca parses macro output again), this is a </script><img onerror=...>.
JINJA = "{{ '%c/script%c%cimg src=x onerror=window.__xss=4%c'|format(60,62,60,62) }}"
PAYLOADS = (IMG, SCRIPT, ATTR, JINJA)
FILE_NAME = '<img src=x onerror="window.__xss=5">{{7*7}}.geojson'

OPEN_ALL = """() => {
  // Every tooltip and popup of every layer on the page's Leaflet maps, opened as a hover or a
  // click opens it (Leaflet renders the same content); returns how many were opened.
  const maps = new Set(), roots = [];
  if (window.gridsvcMaps) Object.values(window.gridsvcMaps.layers).forEach((s) => {
    maps.add(s.map); roots.push([s.map, s.group]); });
  const ed = window.gridsvcEditor;
  if (ed) [ed.context, ed.problems, ed.drawn].forEach((g) => roots.push([ed.map, g]));
  let opened = 0;
  const visit = (map, layer) => {
    if (layer.getLayers) layer.getLayers().forEach((child) => visit(map, child));
    const tip = layer.getTooltip && layer.getTooltip();
    const popup = layer.getPopup && layer.getPopup();
    if (!tip && !popup) return;
    const at = layer.getLatLng ? layer.getLatLng() : layer.getBounds().getCenter();
    if (tip) { map.openTooltip(tip.getContent(), at); opened += 1; }
    if (popup) { map.openPopup(popup.getContent(), at); opened += 1; }
  };
  roots.forEach(([map, group]) => visit(map, group));
  return opened;
}"""


@pytest.fixture
def server(live_server):
    """The sample tree with markup in names and leaders, G2 renamed through OGC PATCH, and
    members named with markup."""
    if missing_files(assets_dir()):
        pytest.fail("browser assets not installed: run `make install`", pytrace=False)
    svc = live_server.app.extensions["gridsvc"]
    records = sample_records()
    by_code = {r.code: r for r in records}
    by_code[S].name = JINJA
    by_code[C1].name = IMG
    by_code[G1].name = ATTR
    by_code[B1].name, by_code[B1].leader = JINJA, IMG
    by_code[B2].name, by_code[B2].leader = IMG, SCRIPT
    by_code[H1].name, by_code[H1].leader = SCRIPT, JINJA
    assert import_records(svc, records, viewer=cli_principal()).stored
    admin = bearer(live_server.app.extensions["gridsvc"].settings, "admin")
    request = urllib.request.Request(
        live_server.url(f"/ogc/collections/grid/items/{G2}"), method="PATCH",
        data=json.dumps({"properties": {"name": SCRIPT}}).encode(),
        headers={"Content-Type": "application/merge-patch+json", "If-Match": f'"{G2}-1"',
                 **admin})
    # the app's first request builds its index: allow for a busy machine
    with urllib.request.urlopen(request, timeout=120) as resp:
        assert resp.status == 200
    with svc.db.session() as session:
        ids = dict(session.execute(select(Unit.code, Unit.id)).all())
        assert session.scalar(select(Unit.name).where(Unit.code == G2)) == SCRIPT
        session.add_all(Member(name=name, phone=f"1391111000{n}", status="assigned",
                               lon=120.9007 + n * 0.0001, lat=32.0007, building_id=ids[B1])
                        for n, name in enumerate(PAYLOADS))
    live_server.admin = admin
    return live_server


def assert_ran_nothing(page, opened_at_least: int = 0) -> None:
    """Open every tooltip and popup, let the page settle; nothing ran, nothing was refused."""
    opened = page.evaluate(OPEN_ALL)
    assert opened >= opened_at_least
    page.wait_for_load_state("networkidle")
    assert page.evaluate("window.__xss") is None
    assert page.log.dialogs == []
    assert_no_console_errors(page)  # CSP violations are reported there too
    assert_all_requests_local(page)


@pytest.mark.parametrize("path", [
    f"/maps/coverage?unit={S}&inline=1", f"/maps/coverage?unit={S}&inline=0",
    f"/maps/distribution?unit={S}&detail=1", f"/maps/distribution?unit={S}&inline=1",
    f"/maps/validation?unit={S}"])
def test_map_pages_show_markup_as_text(server, page, path):
    page.context.set_extra_http_headers(server.admin)
    open_page(page, server.url(path))
    page.wait_for_function("window.gridsvcMaps && window.gridsvcMaps.idle()")
    box_ = page.locator(".leaflet-container").bounding_box()
    page.mouse.move(box_["x"] + box_["width"] / 2, box_["y"] + box_["height"] / 2)  # a hover
    page.mouse.click(box_["x"] + box_["width"] / 2, box_["y"] + box_["height"] / 2)
    assert_ran_nothing(page, opened_at_least=3)
    if "detail=1" in path:  # the members' names are there, as text
        assert page.evaluate("window.gridsvcMaps.layers['聚合 clusters'].features"
                             ".map(f => f.properties.name)").count(SCRIPT) == 1


def test_validation_of_an_upload_with_markup_in_its_file_name(server, page, tmp_path: Path):
    page.context.set_extra_http_headers(server.admin)
    records = sample_records()
    records[4].geometry = box(120.900, 32.0015, 120.903, 32.004)  # G2 overlaps G1: problems
    for record, payload in zip(records, PAYLOADS * 3, strict=False):
        record.name = payload
    upload = write_geojson(records, tmp_path / FILE_NAME)
    open_page(page, server.url(f"/maps/validation?unit={S}"))
    page.set_input_files(".gridsvc-upload input[type=file]", str(upload))
    with page.expect_navigation():
        page.click(".gridsvc-upload button")
    page.wait_for_selector(".leaflet-container")
    page.wait_for_function("window.gridsvcMaps && window.gridsvcMaps.idle()")
    # the name (its odd characters replaced when the upload is saved) is shown as text
    assert "onerror" in page.text_content(".gridsvc-legend")
    assert_ran_nothing(page, opened_at_least=len(records))


def test_editor_shows_markup_as_text(server, page):
    token = bearer(server.app.extensions["gridsvc"].settings, "planner", C1)
    secret = json.dumps(token["Authorization"].removeprefix("Bearer "))
    page.add_init_script(f"sessionStorage.setItem('gridsvc.token', {secret})")
    open_page(page, server.url(f"/maps/editor?unit={G1}"))
    page.wait_for_function("document.getElementById('ed-status').textContent"
                           ".startsWith('Loaded')")
    assert ATTR in page.text_content("#ed-unit")
    # hover the sibling G2 (named </script>...), as the attacker's victim would
    at = page.evaluate("""() => {
        const map = window.gridsvcEditor.map, r = map.getContainer().getBoundingClientRect();
        const p = map.latLngToContainerPoint([32.0035, 120.9015]);
        return [r.left + p.x, r.top + p.y]; }""")
    page.mouse.move(*at)
    page.wait_for_selector(".leaflet-tooltip")
    assert SCRIPT in page.text_content(".leaflet-tooltip")
    # a check that overlaps G2 and B1's neighbours: problem tooltips and the report
    page.evaluate("""() => { const ed = window.gridsvcEditor, layer = ed.layer();
        layer.setLatLngs([[[32.000, 120.900], [32.000, 120.903], [32.003, 120.903],
                           [32.003, 120.900]]]);
        ed.map.fire('draw:edited', {layers: L.layerGroup([layer])}); }""")
    page.click("#ed-check")
    page.wait_for_function("document.getElementById('ed-status').textContent"
                           ".startsWith('Check')")
    page.fill("#ed-search", "阳光")
    page.press("#ed-search", "Enter")
    page.fill("#ed-search", G2)
    page.press("#ed-search", "Enter")
    page.wait_for_selector(f"#ed-results button[data-code='{G2}']")
    assert_ran_nothing(page, opened_at_least=4)


@pytest.mark.parametrize("path", [
    "/ogc/collections/grid/items?f=html", f"/ogc/collections/grid/items/{G2}?f=html",
    f"/ogc/collections/building/items/{B1}?f=html", "/ogc/collections/household/items?f=html",
    "/ogc/collections?f=html"])
def test_ogc_pages_show_markup_as_text(server, page, path):
    page.context.set_extra_http_headers(server.admin)
    open_page(page, server.url(path), selector="h1")
    assert_ran_nothing(page)
    if "items" in path:
        assert any(p in page.text_content("body") for p in PAYLOADS)


def test_login_page_shows_a_token_name_as_text(server, page):
    from gridsvc.services.accounts import create_token

    name = IMG + "{{7*7}}"
    secret, _ = create_token(server.app.extensions["gridsvc"], name, "admin")
    page.goto(server.url("/session?next=/session"))
    page.fill("#token", secret)
    with page.expect_navigation():
        page.click("button[type=submit] >> text=Sign in")
    assert name in page.text_content("body")
    assert_ran_nothing(page)

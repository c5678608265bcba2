"""The planner's editor round trip in headless Chromium: drag a vertex of a grid into its
sibling with Leaflet.draw, see the check fail for the overlap, fix the polygon, save, and the
stored geometry changed; then a save over someone else's newer version offers a reload.
The planner's token is typed into the page (a unit asked for before it is there loads once it
is). No console errors (but Chromium's own lines for the expected 401 and 412), no request off
127.0.0.1."""

from __future__ import annotations

import json
import urllib.request

import pytest
import shapely
from api_support import C1, G1, G2, bearer, sample_records, write_geojson
from browser import (
    assert_all_requests_local,
    assert_no_console_errors,
    open_page,
    screenshot,
)
from shapely.geometry import box, mapping, shape

from gridsvc.access import cli_principal
from gridsvc.maps.assets import assets_dir, missing_files
from gridsvc.services.boundaries import import_records
from gridsvc.settings import Settings
from gridsvc.web.auth import TOKEN_COOKIE

pytestmark = [pytest.mark.browser, pytest.mark.storage]

G1_BOX = box(120.900, 32.000, 120.903, 32.002)  # as in api_support (wgs84)
NE_CORNER, INTO_G2 = (32.002, 120.903), (32.0026, 120.903)  # (lat, lon)
FIXED = box(120.900, 32.000, 120.903, 32.0018)  # clear of G2, still holding both buildings


@pytest.fixture
def planner(settings: Settings) -> str:
    """A planner token for community C1 (G1 and G2 lie in it)."""
    return bearer(settings, "planner", C1)["Authorization"].removeprefix("Bearer ")


@pytest.fixture(autouse=True)
def _tree(live_app) -> None:
    if missing_files(assets_dir()):
        pytest.fail("browser assets not installed: run `make install`", pytrace=False)
    assert import_records(live_app.extensions["gridsvc"], sample_records(),
        viewer=cli_principal()).stored


def api(server, token: str, method: str, path: str, body: dict | None = None,
        headers: dict | None = None) -> tuple[int, dict, dict]:
    request = urllib.request.Request(
        server.url(path), method=method, data=json.dumps(body).encode() if body else None,
        headers={"Content-Type": "application/json", "Authorization": f"Bearer {token}",
                 **(headers or {})})
    with urllib.request.urlopen(request, timeout=10) as resp:
        return resp.status, dict(resp.headers), json.loads(resp.read())


def stored_geometry(server, token: str, code: str) -> shapely.Geometry:
    return shape(api(server, token, "GET", f"/api/v1/units/{code}?f=geojson")[2]["geometry"])


def wait_status(page, text: str) -> str:
    page.wait_for_function("t => document.getElementById('ed-status').textContent.includes(t)",
                           arg=text)
    return page.text_content("#ed-status")


def pixel(page, latlng: tuple[float, float]) -> tuple[float, float]:
    """The page position of a wgs84 (lat, lon) on the editor's map."""
    return tuple(page.evaluate("""([lat, lon]) => {
        const map = window.gridsvcEditor.map;
        const p = map.latLngToContainerPoint([lat, lon]);
        const r = map.getContainer().getBoundingClientRect();
        return [r.left + p.x, r.top + p.y];
    }""", list(latlng)))


def set_polygon(page, ring: list[tuple[float, float]]) -> None:
    """Replace the edited polygon's ring, as an edit with Leaflet.draw would, and tell the page."""
    page.evaluate("""ring => {
        const ed = window.gridsvcEditor, layer = ed.layer();
        layer.setLatLngs([ring]);
        ed.map.fire('draw:edited', {layers: L.layerGroup([layer])});
    }""", [list(p) for p in ring])


def test_editor_round_trip(live_server, page, planner) -> None:
    open_page(page, live_server.url(f"/maps/editor?unit={G1}"))
    wait_status(page, "Enter a planner token")  # reading the unit needs it
    page.fill("#ed-token", planner)
    page.press("#ed-token", "Tab")
    wait_status(page, "Loaded")
    assert page.evaluate("sessionStorage.getItem('gridsvc.token')") == planner
    assert page.evaluate("window.gridsvcEditor.context.getLayers().length") == 3

    # Leaflet.draw's edit mode: drag the north-east vertex into the sibling G2, keep it.
    page.click(".leaflet-draw-edit-edit")
    start, end = pixel(page, NE_CORNER), pixel(page, INTO_G2)
    page.mouse.move(*start)
    page.mouse.down()
    page.mouse.move(*end, steps=8)
    page.mouse.up()
    page.click(".leaflet-draw-actions a[title='Save changes']")
    wait_status(page, "Changed")

    page.click("#ed-check")
    status = wait_status(page, "Check failed")
    overlap = page.locator("#ed-result li[data-rule='overlapping-siblings']")
    assert overlap.count() == 1 and G2 in overlap.text_content() and "m²" in status + \
        overlap.text_content()
    assert "阳光第二网格" in overlap.text_content()  # the sibling named, not only its code
    assert page.evaluate("window.gridsvcEditor.problems.getLayers()[0].getLayers().length") >= 1
    assert stored_geometry(live_server, planner, G1).equals(G1_BOX)
    screenshot(page, "editor-overlap")

    # Fix it, check again, save.
    minx, miny, maxx, maxy = FIXED.bounds
    set_polygon(page, [(miny, minx), (miny, maxx), (maxy, maxx), (maxy, minx)])
    page.click("#ed-check")
    wait_status(page, "Check passed")
    page.click("#ed-save")
    wait_status(page, "Saved: version 2")
    assert stored_geometry(live_server, planner, G1).hausdorff_distance(FIXED) < 1e-7

    assert [e for e in page.log.console_errors if "status of 401" not in e] == []

    # Another planner saves version 3; this page still holds version 2 and must not win.
    other = box(120.900, 32.000, 120.903, 32.0016)
    status, headers, _ = api(live_server, planner, "PUT", f"/api/v1/units/{G1}/geometry",
                             mapping(other), {"If-Match": f'"{G1}-2"'})
    assert status == 200 and headers["ETag"] == f'"{G1}-3"'
    set_polygon(page, [(32.000, 120.900), (32.000, 120.903), (32.0017, 120.903),
                       (32.0017, 120.900)])
    page.click("#ed-save")
    wait_status(page, "Not saved")
    assert stored_geometry(live_server, planner, G1).hausdorff_distance(other) < 1e-7
    page.click("#ed-reload")
    wait_status(page, "version 3")

    # Chromium logs the refused requests itself as "Failed to load resource ... 401/412" (the
    # first load without a token, the stale save); nothing else.
    assert [e for e in page.log.console_errors
            if "status of 412" not in e and "status of 401" not in e] == []
    assert len(page.log.console_errors) == 2
    assert_all_requests_local(page)
    assert screenshot(page, "editor-saved").stat().st_size > 0


def test_editor_saves_with_the_sign_in_cookie(live_server, page, planner) -> None:
    """Signed in at /session and no token typed: the cookie reads, and the page's CSRF token
    (sent by editor.js as X-CSRF-Token) lets it check and save."""
    page.context.add_cookies([{"name": TOKEN_COOKIE, "value": planner,
                               "url": live_server.url("/"), "httpOnly": True,
                               "sameSite": "Strict"}])
    open_page(page, live_server.url(f"/maps/editor?unit={G1}"))
    wait_status(page, "Loaded")
    assert page.input_value("#ed-token") == ""
    minx, miny, maxx, maxy = FIXED.bounds
    set_polygon(page, [(miny, minx), (miny, maxx), (maxy, maxx), (maxy, minx)])
    page.click("#ed-check")
    wait_status(page, "Check passed")
    page.click("#ed-save")
    wait_status(page, "Saved: version 2")
    assert stored_geometry(live_server, planner, G1).hausdorff_distance(FIXED) < 1e-7
    assert_no_console_errors(page)


def test_upload_then_search(live_server, page, settings, tmp_path) -> None:
    """The file is checked (dry run) before Import applies it; the search finds the unit."""
    records = sample_records()
    records[3].name = "阳光第一网格(新)"
    path = write_geojson(records, tmp_path / "和平街道.geojson")
    token = bearer(settings, "planner")["Authorization"].removeprefix("Bearer ")  # city-wide
    page.add_init_script(f"sessionStorage.setItem('gridsvc.token', {json.dumps(token)})")
    open_page(page, live_server.url("/maps/editor"))
    page.set_input_files("#ed-file", str(path))
    page.click("#ed-upload-check")
    wait_status(page, "File check passed")
    assert api(live_server, token, "GET", f"/api/v1/units/{G1}")[2]["name"] == "阳光第一网格"
    page.click("#ed-upload-apply")
    wait_status(page, "Imported")
    assert api(live_server, token, "GET", f"/api/v1/units/{G1}")[2]["name"] == "阳光第一网格(新)"
    assert page.is_disabled("#ed-upload-apply")
    page.fill("#ed-search", "第一网格")  # and the unit search finds the imported name
    page.press("#ed-search", "Enter")
    page.click(f"#ed-results button[data-code='{G1}']")
    assert "阳光第一网格(新)" in wait_status(page, "Loaded")
    assert_no_console_errors(page)
    assert_all_requests_local(page)
    screenshot(page, "editor-upload")

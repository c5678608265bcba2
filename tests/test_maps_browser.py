"""The map pages in headless Chromium: no console errors, no request leaving 127.0.0.1, the
expected layers with the expected feature counts (read from the page's layer registry), and a
screenshot of each page in tests/artifacts/. The browser signs in on the login page (the token
in the gridsvc_token cookie), as a person would."""

from __future__ import annotations

import pytest
from api_support import B1, B2, C1, S, bearer, sample_records, write_geojson
from browser import (
    assert_all_requests_local,
    assert_no_console_errors,
    open_page,
    screenshot,
)
from shapely.geometry import box
from sqlalchemy import select

from gridsvc.access import cli_principal
from gridsvc.services.boundaries import import_records
from gridsvc.settings import Settings
from gridsvc.storage.models import Member, Unit

pytestmark = pytest.mark.browser


@pytest.fixture
def server(live_server):
    """The live server over the sample tree: B2 has no group leader; three members."""
    svc = live_server.app.extensions["gridsvc"]
    records = sample_records()
    by_code = {r.code: r for r in records}
    by_code[B2].leader = by_code[B2].phone = None
    assert import_records(svc, records, viewer=cli_principal()).stored
    with svc.db.session() as session:
        ids = dict(session.execute(select(Unit.code, Unit.id)).all())
        session.add_all(Member(name=f"党员{n}", phone=f"1391111000{n}", status="assigned",
                               lon=120.9007, lat=32.0007, building_id=ids[code])
                        for n, code in enumerate((B1, B1, B2)))
    return live_server


def sign_in(page, server, settings: Settings, role: str, unit: str | None = None,
            then: str = "/session") -> None:
    """Sign in on the login page with a fresh token of ``role``, landing on ``then``."""
    token = bearer(settings, role, unit)["Authorization"].removeprefix("Bearer ")
    page.goto(server.url(f"/session?next={then}"))
    page.fill("#token", token)
    with page.expect_navigation():
        page.click("button[type=submit] >> text=Sign in")


def drawn_layers(page) -> dict[str, int]:
    """Wait until every shown layer is drawn; the features per layer title."""
    page.wait_for_function("window.gridsvcMaps && window.gridsvcMaps.idle()")
    return page.evaluate("""() => Object.fromEntries(Object.entries(window.gridsvcMaps.layers)
        .filter(([k, s]) => s.map.hasLayer(s.group)).map(([k, s]) => [k, s.count]))""")


def check_clean(page, name: str) -> None:
    assert_no_console_errors(page)
    assert_all_requests_local(page)
    assert screenshot(page, name).stat().st_size > 0


@pytest.mark.parametrize("inline", ["1", "0"])
def test_coverage_page(server, page, settings, inline):
    sign_in(page, server, settings, "admin")
    open_page(page, server.url(f"/maps/coverage?unit={S}&inline={inline}"))
    counts = drawn_layers(page)
    assert counts["楼栋党小组 building"] == 2
    assert counts["小区(片区、网格)党支部 grid"] == 3
    assert counts["社区大党委 community"] == 2
    assert counts["无组长楼栋 buildings without leader"] == 1  # B2
    assert counts["无书记网格 grids without secretary"] == 0
    assert counts["党员中心户 households"] == 1
    assert page.locator(".leaflet-control-layers").count() == 1
    assert page.get_by_text("members per 100 households").count() >= 1  # the legend
    fetched = [u for u in page.log.requests if "/api/v1/layers/" in u]
    assert bool(fetched) == (inline == "0")
    page.fill(".gridsvc-search input", "阳光小区2栋")
    page.press(".gridsvc-search input", "Enter")
    page.locator(".gridsvc-search-results a").first.wait_for()
    check_clean(page, f"maps-coverage-inline{inline}")


def test_counts_distribution_page(server, page, settings):
    sign_in(page, server, settings, "planner")  # may read units, not members
    open_page(page, server.url(f"/maps/distribution?unit={S}&inline=0"))
    counts = drawn_layers(page)
    assert counts["聚合 clusters"] == 2  # B1 and B2, counts only
    html = page.content()
    assert "党员0" not in html and "13911110000" not in html
    check_clean(page, "maps-distribution-public")


def test_staff_distribution_page(server, page, settings):
    page.context.set_extra_http_headers(bearer(settings, "staff"))  # a header works too
    open_page(page, server.url(f"/maps/distribution?unit={S}&detail=1"))
    assert drawn_layers(page)["聚合 clusters"] == 3  # one point per member
    check_clean(page, "maps-distribution-staff")


def test_validation_page_with_an_upload(server, page, settings, tmp_path):
    sign_in(page, server, settings, "planner", C1)  # the upload form posts with the cookie
    report = page.request.get(server.url(f"/api/v1/boundaries/validate?unit={C1}&geometry=1"))
    drawable = [p for p in report.json()["problems"] if "geometry_wkt" in p or "location" in p]
    open_page(page, server.url(report.json()["map"]))
    assert drawn_layers(page)["问题 problems"] == len(drawable)
    records = sample_records()
    records[4].geometry = box(120.900, 32.0015, 120.903, 32.004)  # G2 overlaps G1
    records = [r for r in records if r.code.startswith(C1)]  # the planner's subtree
    upload = write_geojson(records, tmp_path / "overlap.geojson")
    page.set_input_files(".gridsvc-upload input[type=file]", str(upload))
    with page.expect_navigation():
        page.click(".gridsvc-upload button")
    page.wait_for_selector(".leaflet-container")
    counts = drawn_layers(page)
    assert counts["问题 problems"] >= 1
    assert counts["上传的边界 uploaded boundaries"] == len(records)
    assert page.get_by_text("overlapping-siblings").count() >= 1
    check_clean(page, "maps-validation-upload")


def test_a_page_asks_to_sign_in_and_comes_back(server, page, settings):
    url = f"/maps/coverage?unit={C1}"
    response = page.goto(server.url(url))
    assert response.status == 401
    with page.expect_navigation():
        page.click("text=Sign in with a token")
    page.fill("#token", "gs_not-a-token")
    with page.expect_navigation():
        page.click("button[type=submit] >> text=Sign in")
    assert page.get_by_role("alert").text_content().startswith("The token is unknown")
    token = bearer(settings, "staff", C1)["Authorization"].removeprefix("Bearer ")
    page.fill("#token", token)
    with page.expect_navigation():
        page.click("button[type=submit] >> text=Sign in")
    assert page.url == server.url(url)
    page.wait_for_selector(".leaflet-container")
    counts = drawn_layers(page)
    assert counts["楼栋党小组 building"] == 2 and counts["小区(片区、网格)党支部 grid"] == 2
    cookie = next(c for c in page.context.cookies() if c["name"] == "gridsvc_token")
    assert cookie["httpOnly"] and cookie["sameSite"] == "Strict"
    assert page.evaluate("document.cookie") == ""  # scripts cannot read the token
    assert_all_requests_local(page)  # (the console holds the 401s of this test's first loads)
    screenshot(page, "maps-sign-in")
    page.goto(server.url("/session"))
    with page.expect_navigation():
        page.click("text=Sign out")
    assert not [c for c in page.context.cookies() if c["name"] == "gridsvc_token"]
    assert page.goto(server.url(url)).status == 401

"""The map pages in headless Chromium: no console errors, no request leaving 127.0.0.1, the
expected layers with the expected feature counts (read from the page's layer registry), and a
screenshot of each page in tests/artifacts/."""

from __future__ import annotations

import dataclasses

import pytest
from api_support import B1, B2, C1, S, sample_records, write_geojson
from browser import (
    assert_all_requests_local,
    assert_no_console_errors,
    open_page,
    screenshot,
)
from shapely.geometry import box
from sqlalchemy import select

from gridsvc.services.boundaries import import_records
from gridsvc.settings import Settings
from gridsvc.storage.models import Member, Unit

pytestmark = pytest.mark.browser
STAFF = "browser-staff-token"


@pytest.fixture
def browser_settings(settings: Settings) -> Settings:
    return dataclasses.replace(settings, basemap="none", staff_token=STAFF)


@pytest.fixture
def server(live_server):
    """The live server over the sample tree: B2 has no group leader; three members."""
    svc = live_server.app.extensions["gridsvc"]
    records = sample_records()
    by_code = {r.code: r for r in records}
    by_code[B2].leader = by_code[B2].phone = None
    assert import_records(svc, records).stored
    with svc.db.session() as session:
        ids = dict(session.execute(select(Unit.code, Unit.id)).all())
        session.add_all(Member(name=f"党员{n}", phone=f"1391111000{n}", status="assigned",
                               lon=120.9007, lat=32.0007, building_id=ids[code])
                        for n, code in enumerate((B1, B1, B2)))
    return live_server


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
def test_coverage_page(server, page, inline):
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


def test_public_distribution_page(server, page):
    open_page(page, server.url(f"/maps/distribution?unit={S}&inline=0"))
    counts = drawn_layers(page)
    assert counts["聚合 clusters"] == 2  # B1 and B2, counts only
    html = page.content()
    assert "党员0" not in html and "13911110000" not in html
    check_clean(page, "maps-distribution-public")


def test_staff_distribution_page(server, page):
    page.context.set_extra_http_headers({"Authorization": f"Bearer {STAFF}"})
    open_page(page, server.url(f"/maps/distribution?unit={S}&detail=1"))
    assert drawn_layers(page)["聚合 clusters"] == 3  # one point per member
    check_clean(page, "maps-distribution-staff")


def test_validation_page_with_an_upload(server, page, tmp_path):
    report = page.request.get(server.url(f"/api/v1/boundaries/validate?unit={C1}&geometry=1"))
    drawable = [p for p in report.json()["problems"] if "geometry_wkt" in p or "location" in p]
    open_page(page, server.url(report.json()["map"]))
    assert drawn_layers(page)["问题 problems"] == len(drawable)
    records = sample_records()
    records[4].geometry = box(120.900, 32.0015, 120.903, 32.004)  # G2 overlaps G1
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

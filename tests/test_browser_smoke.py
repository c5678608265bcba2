"""A minimal folium page, localized, loads in headless Chromium with everything from 127.0.0.1."""

from __future__ import annotations

import dataclasses
import struct
import zlib
from pathlib import Path

import folium
import pytest
from browser import (
    assert_all_requests_local,
    assert_no_console_errors,
    open_page,
    screenshot,
)
from folium import plugins

from gridsvc.maps.assets import assets_dir, missing_files, save_offline
from gridsvc.maps.basemap import new_map
from gridsvc.maps.safe_html import render_page
from gridsvc.settings import Settings
from gridsvc.web.security_headers import script_nonce

pytestmark = pytest.mark.browser

TILE_PATH = "/test-tiles/{z}/{x}/{y}.png"
CENTRE = (30.27, 120.15)  # wgs84 (lat, lon), Hangzhou


@pytest.fixture(autouse=True)
def _assets_installed() -> None:
    missing = missing_files(assets_dir(Settings.from_env()))
    if missing:
        pytest.fail(f"browser assets not installed ({missing[0]} ...): run `make install`",
                    pytrace=False)


@pytest.fixture
def browser_settings(settings: Settings) -> Settings:
    return dataclasses.replace(settings, basemap="xyz", basemap_url=TILE_PATH,
                               basemap_attribution="test tiles",
                               assets_dir=Settings.from_env().assets_dir)


def png_tile(rgb: tuple[int, int, int] = (225, 236, 244), size: int = 256) -> bytes:
    """A plain PNG tile, encoded here so the test needs no image library."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return (struct.pack(">I", len(data)) + kind + data
                + struct.pack(">I", zlib.crc32(kind + data)))
    row = b"\x00" + bytes(rgb) * size
    header = struct.pack(">IIBBBBB", size, size, 8, 2, 0, 0, 0)
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header)
            + chunk(b"IDAT", zlib.compress(row * size)) + chunk(b"IEND", b""))


def demo_map(settings: Settings) -> folium.Map:
    """Leaflet with the plugins the map pages use: Draw, MarkerCluster, HeatMap, a legend."""
    m = new_map(settings, location=CENTRE, zoom_start=14)
    points = [(CENTRE[0] + i * 0.002, CENTRE[1] + j * 0.002) for i in range(3) for j in range(3)]
    cluster = plugins.MarkerCluster(name="members").add_to(m)
    for point in points:
        folium.Marker(point, icon=folium.Icon(icon="home", prefix="fa")).add_to(cluster)
    plugins.HeatMap([[lat, lon, 1.0] for lat, lon in points], name="heat").add_to(m)
    plugins.Draw().add_to(m)
    plugins.Fullscreen().add_to(m)
    grid = {"type": "Feature", "properties": {"name": "网格一"}, "geometry": {
        "type": "Polygon", "coordinates": [[[120.149, 30.269], [120.156, 30.269],
                                            [120.156, 30.276], [120.149, 30.269]]]}}
    folium.GeoJson({"type": "FeatureCollection", "features": [grid]}, name="grids",
                   tooltip=folium.GeoJsonTooltip(["name"])).add_to(m)
    folium.LayerControl().add_to(m)
    return m


LOADED_PLUGINS = """() => [typeof L, typeof L.Control.Draw, typeof L.markerClusterGroup,
    typeof L.heatLayer, typeof L.Control.FullScreen, typeof L.AwesomeMarkers.icon]"""


def test_folium_page_loads_offline(live_app, live_server, page) -> None:
    settings = live_app.extensions["gridsvc"].settings
    live_app.add_url_rule("/test-map", "test_map",
                          lambda: render_page(demo_map(settings).get_root(), script_nonce()))
    live_app.add_url_rule("/test-tiles/<int:z>/<int:x>/<int:y>.png", "test_tile",
                          lambda z, x, y: (png_tile(), 200, {"Content-Type": "image/png"}))

    open_page(page, live_server.url("/test-map"))
    page.wait_for_selector(".leaflet-tile-loaded")
    page.wait_for_selector(".marker-cluster")

    assert page.evaluate(LOADED_PLUGINS) == ["object"] + ["function"] * 5
    assert page.locator(".leaflet-draw-toolbar").count() > 0
    requested = {url.removeprefix(live_server.base_url) for url in page.log.requests}
    assert "/vendor/node_modules/leaflet/dist/leaflet.js" in requested
    assert any(url.startswith("/test-tiles/14/") for url in requested)
    assert_no_console_errors(page)
    assert_all_requests_local(page)
    assert screenshot(page, "smoke-folium-offline").stat().st_size > 0


def test_request_outside_loopback_is_caught(live_app, live_server, page) -> None:
    """The guard itself: a page that links a CDN fails the locality check, and is aborted."""
    live_app.add_url_rule("/test-cdn", "test_cdn", lambda: (
        '<html><body><script src="https://cdn.example.invalid/x.js"></script>'
        '<div class="leaflet-container">x</div></body></html>'))
    open_page(page, live_server.url("/test-cdn"))
    with pytest.raises(AssertionError, match=r"cdn\.example\.invalid"):
        assert_all_requests_local(page)


def test_static_file_opens_from_disk(tmp_path: Path, page) -> None:
    out = save_offline(demo_map(Settings(basemap="none", database_url="sqlite://")),
                       tmp_path / "maps" / "demo.html", assets_dir(Settings.from_env()))
    open_page(page, out.as_uri())
    page.wait_for_selector(".marker-cluster")
    assert page.evaluate(LOADED_PLUGINS) == ["object"] + ["function"] * 5
    assert_no_console_errors(page)
    assert_all_requests_local(page)
    screenshot(page, "smoke-folium-static-file")

"""Offline assets (localize, save_offline, /vendor/) and base maps (tiles, gcj02 shift)."""

from __future__ import annotations

import re
from dataclasses import replace
from pathlib import Path

import branca.colormap as cm
import folium
import pytest
from folium import plugins

from gridsvc.maps.assets import (
    MissingAssetError,
    assets_dir,
    local_path,
    localize,
    missing_files,
    save_offline,
)
from gridsvc.maps.basemap import (
    BasemapError,
    add_basemap,
    basemap_from_settings,
    new_map,
    shift_geojson,
)
from gridsvc.settings import Settings
from gridsvc.web import create_app

LINK = re.compile(r'<(?:script|link)\b[^>]*?(?:src|href)="([^"]+)"')
SUPPORTED = [folium.Map, plugins.MarkerCluster, plugins.HeatMap, plugins.Draw, plugins.Search,
             plugins.Fullscreen, plugins.MiniMap, plugins.LocateControl,
             plugins.FeatureGroupSubGroup, plugins.Realtime]
POINTS = [(30.27, 120.15), (30.28, 120.16)]  # wgs84 (lat, lon)


def plain_settings(**values: object) -> Settings:
    return Settings(database_url="sqlite://", **values)  # type: ignore[arg-type]


@pytest.fixture(scope="module")
def installed() -> Path:
    folder = assets_dir(Settings.from_env())
    missing = missing_files(folder)
    if missing:
        pytest.fail(f"browser assets not installed ({missing[0]} ...): run `make install`",
                    pytrace=False)
    return folder


def plugin_map() -> folium.Map:
    m = folium.Map(location=POINTS[0], zoom_start=13, tiles=None)
    cluster = plugins.MarkerCluster().add_to(m)
    for point in POINTS:
        folium.Marker(point).add_to(cluster)
    plugins.HeatMap([[lat, lon, 1] for lat, lon in POINTS]).add_to(m)
    plugins.Draw().add_to(m)
    layer = folium.GeoJson({"type": "FeatureCollection", "features": [{
        "type": "Feature", "properties": {"name": "网格一"},
        "geometry": {"type": "Point", "coordinates": [120.15, 30.27]}}]}).add_to(m)
    plugins.Search(layer, search_label="name").add_to(m)
    plugins.Fullscreen().add_to(m)
    cm.LinearColormap(["white", "red"], vmin=0, vmax=10, caption="members").add_to(m)
    return m


def rendered_links(m: folium.Map) -> list[str]:
    return LINK.findall(m.get_root().render())


def test_localize_rewrites_every_link_to_an_installed_file(installed: Path) -> None:
    links = rendered_links(localize(plugin_map()))
    cdn_links = rendered_links(plugin_map())
    assert len(links) == len(cdn_links) >= 20
    assert all(url.startswith("https://") for url in cdn_links)
    for url in links:
        assert url.startswith("/vendor/"), url
        assert (installed / url.removeprefix("/vendor/")).is_file(), url
    assert "/vendor/node_modules/leaflet-draw/dist/leaflet.draw.js" in links
    assert "/vendor/derived/folium/leaflet_heat.min.js" in links
    assert "/vendor/node_modules/d3/d3.min.js" in links  # added by the colormap at render time


def test_every_supported_plugin_has_local_copies(installed: Path) -> None:
    for element in SUPPORTED:
        for _, url in [*element.default_js, *element.default_css]:
            assert (installed / local_path(url)).is_file(), f"{element.__name__}: {url}"
    assert missing_files(installed) == []


def test_base_url_is_configurable() -> None:
    links = rendered_links(localize(plugin_map(), base_url="http://127.0.0.1:5000/static/v/"))
    assert all(url.startswith("http://127.0.0.1:5000/static/v/node_modules/")
               or url.startswith("http://127.0.0.1:5000/static/v/derived/") for url in links)


def test_a_link_without_local_copy_raises_naming_it() -> None:
    m = folium.Map(tiles=None)
    plugins.Geocoder().add_to(m)
    with pytest.raises(MissingAssetError, match=r"leaflet-control-geocoder/dist/Control\.Geocoder"):
        localize(m)


def test_a_plugin_added_after_localize_raises_at_render() -> None:
    m = localize(folium.Map(tiles=None))
    plugins.MousePosition().add_to(m)
    with pytest.raises(MissingAssetError, match=r"L\.Control\.MousePosition"):
        m.get_root().render()


def test_a_raw_header_link_is_checked_too() -> None:
    m = localize(folium.Map(tiles=None))
    m.get_root().header.add_child(folium.JavascriptLink("https://cdn.example.invalid/x.js"))
    with pytest.raises(MissingAssetError, match=r"cdn\.example\.invalid/x\.js"):
        m.get_root().render()


def test_save_offline_copies_assets_with_their_fonts_and_images(installed: Path,
                                                                tmp_path: Path) -> None:
    out = save_offline(plugin_map(), tmp_path / "maps" / "coverage.html", installed)
    html = out.read_text(encoding="utf-8")
    links = LINK.findall(html)
    assert links and all(url.startswith("vendor/") for url in links)
    for url in links:
        assert (out.parent / url).is_file(), url
    vendor = out.parent / "vendor" / "node_modules"
    assert any((vendor / "@fortawesome" / "fontawesome-free" / "webfonts").glob("*.woff2"))
    assert (vendor / "leaflet" / "dist" / "images" / "layers.png").is_file()
    assert (vendor / "bootstrap3" / "dist" / "fonts" /
            "glyphicons-halflings-regular.woff2").is_file()


def test_vendor_route_serves_installed_files_only(installed: Path, settings: Settings) -> None:
    client = create_app(replace(settings, assets_dir=str(installed))).test_client()
    response = client.get("/vendor/node_modules/leaflet/dist/leaflet.js")
    assert response.status_code == 200
    assert response.data == (installed / "node_modules/leaflet/dist/leaflet.js").read_bytes()
    assert "javascript" in response.content_type
    assert client.get("/vendor/derived/folium/leaflet_heat.min.js").status_code == 200
    assert client.get("/vendor/package.json").status_code == 404
    assert client.get("/vendor/node_modules/../package.json").status_code == 404
    assert client.get("/vendor/node_modules/nothing-here.js").status_code == 404


# Base maps -----------------------------------------------------------------------------------

def tile_layers(m: folium.Map) -> list[folium.TileLayer]:
    return [child for child in m._children.values() if isinstance(child, folium.TileLayer)]


def test_default_base_map_is_openstreetmap() -> None:
    m = folium.Map(tiles=None)
    basemap = add_basemap(m, plain_settings())
    assert basemap.kind == "osm"
    [layer] = tile_layers(m)
    assert layer.tiles == "https://tile.openstreetmap.org/{z}/{x}/{y}.png"
    assert "OpenStreetMap" in layer.options["attribution"]


def test_tianditu_has_vector_and_label_layers_on_eight_subdomains() -> None:
    m = folium.Map(tiles=None)
    basemap = add_basemap(m, plain_settings(basemap="tianditu", tianditu_key="abc123"))
    assert basemap.coordsys == "cgcs2000" and basemap.overlay_coordsys == "wgs84"
    vec, cva = tile_layers(m)
    assert "/vec_w/wmts?" in vec.tiles and "LAYER=vec" in vec.tiles
    assert "/cva_w/wmts?" in cva.tiles and "LAYER=cva" in cva.tiles
    for layer in (vec, cva):
        assert layer.tiles.startswith("https://t{s}.tianditu.gov.cn/")
        assert layer.tiles.endswith("&tk=abc123")
        assert "TILEMATRIX={z}&TILEROW={y}&TILECOL={x}" in layer.tiles
        assert layer.options["subdomains"] == "01234567"
    html = m.get_root().render()
    assert '"subdomains": "01234567"' in html and "tk=abc123" in html


def test_tianditu_without_key_is_refused() -> None:
    with pytest.raises(BasemapError, match="GRIDSVC_TIANDITU_KEY"):
        basemap_from_settings(plain_settings(basemap="tianditu"))


def test_intranet_xyz_template() -> None:
    settings = plain_settings(basemap="xyz", basemap_url="http://10.1.2.3/tiles/{z}/{x}/{y}.png",
                              basemap_attribution="区测绘院")
    m = folium.Map(tiles=None)
    basemap = add_basemap(m, settings)
    assert basemap.tile_urls == ["http://10.1.2.3/tiles/{z}/{x}/{y}.png"]
    [layer] = tile_layers(m)
    assert layer.options["attribution"] == "区测绘院"


@pytest.mark.parametrize(("values", "message"), [
    ({"basemap": "xyz"}, "GRIDSVC_BASEMAP_URL"),
    ({"basemap": "xyz", "basemap_url": "http://tiles/{z}/{x}.png"}, "{y}"),
    ({"basemap": "xyz", "basemap_url": "http://{s}.t/{z}/{x}/{y}.png"}, "SUBDOMAINS"),
    ({"basemap": "xyz", "basemap_url": "http://t/{z}/{x}/{y}.png", "basemap_coordsys": "bd09"},
     "GRIDSVC_BASEMAP_COORDSYS"),
    ({"basemap": "google"}, "osm, tianditu, xyz, none"),
])
def test_bad_base_map_settings_name_the_setting(values: dict, message: str) -> None:
    with pytest.raises(BasemapError, match=re.escape(message)):
        basemap_from_settings(plain_settings(**values))


def test_no_base_map_adds_no_tiles_but_keeps_a_zoom_range() -> None:
    m = new_map(plain_settings(basemap="none"), location=POINTS[0], zoom_start=12)
    assert tile_layers(m) == []
    assert "tile" not in " ".join(rendered_links(m))
    assert '"maxZoom": 19' in m.get_root().render()


GCJ02 = {"basemap": "xyz", "basemap_url": "http://intranet/amap/{z}/{x}/{y}.png",
         "basemap_coordsys": "gcj02"}


def test_gcj02_base_map_is_refused_unless_overlays_are_shifted() -> None:
    settings = plain_settings(**GCJ02)
    with pytest.raises(BasemapError, match="gcj02"):
        add_basemap(folium.Map(tiles=None), settings)
    basemap = add_basemap(folium.Map(tiles=None), settings, can_shift=True)
    assert basemap.overlay_coordsys == "gcj02"


def test_shift_geojson_moves_overlays_to_gcj02() -> None:
    # Published reference pair (coordtransform): wgs84 (116.404, 39.915) -> gcj02 below.
    expected = (116.41024449916938, 39.91640428150164)
    ring = [[116.404, 39.915], [116.414, 39.915], [116.414, 39.925], [116.404, 39.915]]
    data = {"type": "FeatureCollection", "features": [
        {"type": "Feature", "properties": {"code": "A"},
         "geometry": {"type": "Polygon", "coordinates": [ring]}},
        {"type": "Feature", "properties": {"code": "B"},
         "geometry": {"type": "Point", "coordinates": [116.404, 39.915]}},
        {"type": "Feature", "properties": {"code": "C"}, "geometry": None},
    ]}
    shifted = shift_geojson(data, "gcj02")
    polygon, point, empty = shifted["features"]
    assert point["geometry"]["coordinates"] == pytest.approx(expected, abs=1e-9)
    assert polygon["geometry"]["coordinates"][0][0] == pytest.approx(expected, abs=1e-9)
    shell = polygon["geometry"]["coordinates"][0]
    assert list(shell[0]) == list(shell[-1])  # the ring stays closed
    assert polygon["properties"] == {"code": "A"} and empty["geometry"] is None
    assert data["features"][1]["geometry"]["coordinates"] == [116.404, 39.915]  # input untouched
    assert shift_geojson(data, "cgcs2000") == data


def test_shift_geojson_accepts_a_bare_geometry_and_refuses_other_json() -> None:
    moved = shift_geojson({"type": "Point", "coordinates": [116.404, 39.915]}, "gcj02")
    assert moved["coordinates"] == pytest.approx((116.41024449916938, 39.91640428150164))
    with pytest.raises(BasemapError, match="not GeoJSON"):
        shift_geojson({"type": "Topology"}, "gcj02")


def test_new_map_centres_on_the_shifted_location_for_gcj02() -> None:
    m = new_map(plain_settings(**GCJ02), location=(39.915, 116.404), can_shift=True)
    assert m.location == pytest.approx([39.91640428150164, 116.41024449916938])

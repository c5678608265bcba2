"""Base maps: the tile layer under the overlays, chosen by the ``basemap`` setting.

- ``osm`` (default): OpenStreetMap's public tiles. The one thing a page loads from the internet;
  on an intranet choose ``tianditu`` with a reachable mirror, ``xyz`` or ``none``.
- ``tianditu``: 天地图 vector tiles (``vec_w``) with their label layer (``cva_w``), subdomains
  t0-t7, key from ``tianditu_key``. Tianditu is CGCS2000, which is wgs84 to a few centimetres,
  so stored polygons align as they are.
- ``xyz``: any tile server with an XYZ URL template (``basemap_url``, ``{s}`` taking
  ``basemap_subdomains``), in the system ``basemap_coordsys`` (wgs84, cgcs2000 or gcj02).
- ``none``: no tiles (the browser tests use it: no request leaves 127.0.0.1).

A gcj02 tile source (Amap, Tencent and the like) is drawn ~100-700 m away from wgs84 data, so
overlays must be shifted to gcj02 first (``shift_geojson``, or the API's ``coordsys=gcj02``).
``add_basemap`` refuses such a source unless the caller says it shifts its overlays. Baidu's
bd09 tiles use their own tile grid, not XYZ, and are not supported.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import folium
import numpy as np
import shapely
from shapely.geometry import mapping, shape

from gridsvc.maps.assets import DEFAULT_BASE_URL, localize
from gridsvc.maps.safe_html import PAGE_TEMPLATE
from gridsvc.settings import BASEMAPS, TILE_COORDSYS, Settings
from gridsvc.spatial.coordsys import from_wgs84, from_wgs84_array

GEOMETRY_TYPES = ("Point", "MultiPoint", "LineString", "MultiLineString", "Polygon",
                  "MultiPolygon", "GeometryCollection")

OSM_URL = "https://tile.openstreetmap.org/{z}/{x}/{y}.png"
OSM_ATTRIBUTION = '&copy; <a href="https://www.openstreetmap.org/copyright">OpenStreetMap</a>'
TIANDITU_SUBDOMAINS = "01234567"
TIANDITU_ATTRIBUTION = "&copy; 天地图 Tianditu"
NO_TILES_MAX_ZOOM = 19


def tianditu_url(layer: str, key: str) -> str:
    """The WMTS-as-XYZ template of a Tianditu web-mercator layer (``vec``, ``cva``, ``img``...)."""
    return (f"https://t{{s}}.tianditu.gov.cn/{layer}_w/wmts?SERVICE=WMTS&REQUEST=GetTile"
            f"&VERSION=1.0.0&LAYER={layer}&STYLE=default&TILEMATRIXSET=w&FORMAT=tiles"
            f"&TILEMATRIX={{z}}&TILEROW={{y}}&TILECOL={{x}}&tk={key}")


class BasemapError(ValueError):
    """The base map settings are wrong, or the map cannot be drawn on the chosen tiles."""


@dataclass(frozen=True)
class TileSource:
    """One tile layer: URL template, attribution and ``{s}`` subdomains."""

    name: str
    url: str
    attribution: str
    subdomains: str = ""
    max_zoom: int = 18


@dataclass(frozen=True)
class Basemap:
    """The configured base map: its kind, the tiles' coordinate system and its tile layers."""

    kind: str
    coordsys: str
    layers: tuple[TileSource, ...]

    @property
    def overlay_coordsys(self) -> str:
        """The system overlays must be drawn in on these tiles: gcj02 or wgs84."""
        return "gcj02" if self.coordsys == "gcj02" else "wgs84"

    @property
    def tile_urls(self) -> list[str]:
        return [layer.url for layer in self.layers]


def basemap_from_settings(settings: Settings) -> Basemap:
    """The base map the settings describe; ``BasemapError`` names the setting that is wrong."""
    kind = settings.basemap.strip().lower()
    if kind == "osm":
        return Basemap("osm", "wgs84", (TileSource("OpenStreetMap", OSM_URL, OSM_ATTRIBUTION,
                                                   "", 19),))
    if kind == "tianditu":
        key = settings.tianditu_key.strip()
        if not key:
            raise BasemapError("GRIDSVC_BASEMAP=tianditu needs GRIDSVC_TIANDITU_KEY (the tk key)")
        return Basemap("tianditu", "cgcs2000", (
            TileSource("天地图 矢量", tianditu_url("vec", key), TIANDITU_ATTRIBUTION,
                       TIANDITU_SUBDOMAINS),
            TileSource("天地图 注记", tianditu_url("cva", key), TIANDITU_ATTRIBUTION,
                       TIANDITU_SUBDOMAINS),
        ))
    if kind == "xyz":
        return Basemap("xyz", _xyz_coordsys(settings), (_xyz_source(settings),))
    if kind == "none":
        return Basemap("none", "wgs84", ())
    raise BasemapError(f"GRIDSVC_BASEMAP={settings.basemap!r} is not one of {', '.join(BASEMAPS)}")


def _xyz_coordsys(settings: Settings) -> str:
    coordsys = settings.basemap_coordsys.strip().lower()
    if coordsys not in TILE_COORDSYS:
        raise BasemapError(f"GRIDSVC_BASEMAP_COORDSYS={settings.basemap_coordsys!r} is not one "
                           f"of {', '.join(TILE_COORDSYS)} (bd09 tiles are not XYZ tiles)")
    return coordsys


def _xyz_source(settings: Settings) -> TileSource:
    url = settings.basemap_url.strip()
    missing = [part for part in ("{z}", "{x}", "{y}") if part not in url]
    if not url or missing:
        raise BasemapError(f"GRIDSVC_BASEMAP_URL={url!r} must be a tile URL template with "
                           "{z}, {x} and {y} when GRIDSVC_BASEMAP=xyz")
    if "{s}" in url and not settings.basemap_subdomains:
        raise BasemapError("GRIDSVC_BASEMAP_URL has {s}: set GRIDSVC_BASEMAP_SUBDOMAINS")
    attribution = settings.basemap_attribution or urlsplit(url).netloc or "base map"
    return TileSource("Base map", url, attribution, settings.basemap_subdomains)


def add_basemap(m: folium.Map, settings: Settings, *, can_shift: bool = False) -> Basemap:
    """Add the configured tile layers to ``m`` (labels on top) and return the base map.

    A gcj02 base map is refused unless ``can_shift`` says the caller draws its overlays in
    ``basemap.overlay_coordsys`` (see ``shift_geojson``).
    """
    basemap = basemap_from_settings(settings)
    if basemap.coordsys == "gcj02" and not can_shift:
        raise BasemapError(
            "the base map is gcj02 (GRIDSVC_BASEMAP_COORDSYS): wgs84 overlays would be drawn "
            "hundreds of metres off and this map cannot shift them to gcj02; use a wgs84 or "
            "cgcs2000 tile source")
    # Leaflet takes the zoom range from the tile layers; with none, clusters need the map's own.
    m.options.setdefault("max_zoom", max((layer.max_zoom for layer in basemap.layers),
                                         default=NO_TILES_MAX_ZOOM))
    for i, layer in enumerate(basemap.layers):
        options: dict[str, Any] = {"subdomains": layer.subdomains} if layer.subdomains else {}
        folium.TileLayer(tiles=layer.url, attr=layer.attribution, name=layer.name,
                         max_zoom=layer.max_zoom, overlay=i > 0, control=False,
                         **options).add_to(m)
    return basemap


def new_map(settings: Settings, *, location: tuple[float, float] | None = None,
            can_shift: bool = False, base_url: str = DEFAULT_BASE_URL,
            **map_kwargs: Any) -> folium.Map:
    """A folium map with the configured base map, linking local assets under ``base_url``.

    ``location`` is (lat, lon) in wgs84; it is shifted when the base map is gcj02.
    """
    basemap = basemap_from_settings(settings)
    if location is not None and basemap.overlay_coordsys != "wgs84" and can_shift:
        lon, lat = from_wgs84(location[1], location[0], basemap.overlay_coordsys)
        location = (lat, lon)
    m = folium.Map(location=location, tiles=None, **map_kwargs)
    m.get_root()._template = PAGE_TEMPLATE  # escaped title, CSP nonce on the scripts
    add_basemap(m, settings, can_shift=can_shift)
    return localize(m, base_url)


def shift_geojson(data: dict[str, Any], coordsys: str) -> dict[str, Any]:
    """A copy of wgs84 GeoJSON (geometry, Feature or FeatureCollection) in ``coordsys``.

    wgs84 and cgcs2000 return an unchanged copy; gcj02 and bd09 convert every position in one
    vectorised call (``from_wgs84_array``), which raises for positions outside China.
    """
    out = copy.deepcopy(data)
    if coordsys in ("wgs84", "cgcs2000"):
        return out
    bare = out.get("type") in GEOMETRY_TYPES
    holders = [{"geometry": out}] if bare else _features(out)
    geoms = np.array([shape(holder["geometry"]) for holder in holders], dtype=object)

    def convert(xy: np.ndarray) -> np.ndarray:
        lon, lat = from_wgs84_array(xy[:, 0], xy[:, 1], coordsys)
        return np.column_stack([lon, lat])

    for holder, geom in zip(holders, shapely.transform(geoms, convert), strict=True):
        holder["geometry"] = mapping(geom)
    return holders[0]["geometry"] if bare else out


def _features(data: dict[str, Any]) -> list[dict[str, Any]]:
    """The features of a Feature or FeatureCollection that have a geometry."""
    kind = data.get("type")
    if kind == "FeatureCollection":
        return [f for f in data.get("features", []) if f.get("geometry")]
    if kind == "Feature":
        return [data] if data.get("geometry") else []
    raise BasemapError(f"not GeoJSON: type {kind!r}")

"""folium elements shared by the map pages: data layers (inlined or fetched per view), the name
search, a legend, and the page scaffold (base map, local assets, layer control).

The browser side is ``gridsvc/web/static/maps/gridsvc-maps.js``, inlined into each page (a few
kilobytes) so a static file written by the CLI works from disk too.

Stored text goes into these elements through ``safe_html`` (``script_json``, ``html_text``).
"""

from __future__ import annotations

from functools import cache
from pathlib import Path
from typing import Any

import folium
from branca.colormap import LinearColormap
from branca.element import MacroElement
from folium.elements import JSCSSMixin
from folium.plugins import HeatMap, MarkerCluster
from folium.template import Template

from gridsvc.maps.assets import figure_of
from gridsvc.maps.basemap import new_map
from gridsvc.maps.safe_html import InlineScript, html_text, script_json
from gridsvc.settings import Settings

SCRIPT = Path(__file__).resolve().parents[1] / "web" / "static" / "maps" / "gridsvc-maps.js"
POPUP_FIELDS = [["name", "name 名称"], ["code", "code 编码"], ["level_name", "level 层级"],
                ["leader", "leader 负责人"], ["households", "households 户数"],
                ["members", "members 党员"], ["members_per_100", "members per 100 households"],
                ["needs_confirmation", "pending registrations 待确认"], ["gaps", "gaps 缺口"]]


@cache
def _script_text() -> str:
    return SCRIPT.read_text(encoding="utf-8")


class DataLayer(JSCSSMixin, folium.FeatureGroup):
    """A layer-control entry filled by ``gridsvcMaps.attach``: from ``data`` (GeoJSON bytes or
    dict, inlined) or from ``url`` with ``params`` per view (bbox, zoom added by the page).

    ``config``: ``kind`` (choropleth, outline, highlight, points, counts, problems, cluster,
    heat), ``title`` (the layer control's name), ``minZoom``, ``fields`` (popup rows),
    ``tooltip``, ``scale``/``value`` (choropleth), ``rules`` (problem colours), ``color``.
    """

    _template = Template("""
        {% macro script(this, kwargs) %}
            var {{ this.get_name() }} = L.featureGroup({{ this.options|tojavascript }});
            gridsvcMaps.attach({{ this._parent.get_name() }}, {{ this.get_name() }},
                Object.assign({{ this.config_json }}, {data: {{ this.data_json }}}));
        {% endmacro %}
    """)

    def __init__(self, title: str, config: dict[str, Any], *, data: Any = None,
                 show: bool = True) -> None:
        super().__init__(name=title, show=show)
        self.config_json = script_json({**config, "title": title})
        self.data_json = script_json(data)
        kind = config.get("kind")
        self.default_js = list(HeatMap.default_js if kind == "heat" else
                               MarkerCluster.default_js if kind == "cluster" else [])
        self.default_css = list(MarkerCluster.default_css if kind == "cluster" else [])


class SearchControl(MacroElement):
    """A name search over the loaded layers, then ``url`` (the units API) when given."""

    _template = Template("""
        {% macro script(this, kwargs) %}
            gridsvcMaps.search({{ this._parent.get_name() }}, {{ this.config_json }});
        {% endmacro %}
    """)

    def __init__(self, url: str | None, placeholder: str = "名称/编码 name or code") -> None:
        super().__init__()
        self._name = "SearchControl"
        self.config_json = script_json({"url": url, "placeholder": placeholder})


class Legend(MacroElement):
    """A small fixed legend: a title and coloured entries."""

    _template = Template("""
        {% macro html(this, kwargs) %}
        <div class="gridsvc-legend" style="position:absolute;z-index:1000;right:10px;
             bottom:30px;background:rgba(255,255,255,.9);padding:6px 8px;font:12px sans-serif;
             border-radius:4px">
          <b>{{ this.title_html }}</b>
          {% for label, colour in this.entries %}
          <div><span style="display:inline-block;width:12px;height:12px;margin-right:4px;
               background:{{ colour }}"></span>{{ label }}</div>
          {% endfor %}
        </div>
        {% endmacro %}
    """)

    def __init__(self, title: str, entries: list[tuple[str, str]]) -> None:
        super().__init__()
        self._name = "Legend"
        self.title_html = html_text(title)
        self.entries = [(html_text(label), html_text(colour)) for label, colour in entries]


class UploadForm(MacroElement):
    """A form posting a boundary file (multipart ``file``) to ``action`` for validation, with
    the page's CSRF token (``gridsvc.web.csrf``) as the hidden ``csrf_token`` field."""

    _template = Template("""
        {% macro html(this, kwargs) %}
        <form class="gridsvc-upload" method="post" enctype="multipart/form-data"
              action="{{ this.action }}" style="position:absolute;z-index:1000;left:60px;
              bottom:30px;background:rgba(255,255,255,.9);padding:6px 8px;
              font:12px sans-serif;border-radius:4px">
          <label>校验边界文件 validate a boundary file (.geojson .gpkg .zip)
            <input type="file" name="file" accept=".geojson,.json,.gpkg,.zip" required></label>
          <input type="hidden" name="csrf_token" value="{{ this.csrf_token }}">
          <button type="submit">validate</button>
        </form>
        {% endmacro %}
    """)

    def __init__(self, action: str, csrf_token: str | None = None) -> None:
        super().__init__()
        self._name = "UploadForm"
        self.action = html_text(action)
        self.csrf_token = html_text(csrf_token or "")


def scale_json(colormap: LinearColormap, nodata: str = "#bdbdbd") -> dict[str, Any]:
    """A branca colormap as the stops the page interpolates between."""
    return {"index": list(colormap.index), "colors": [list(c) for c in colormap.colors],
            "nodata": nodata}


def page_map(settings: Settings, bounds: tuple[float, float, float, float] | None,
             title: str) -> folium.Map:
    """A map with the configured base map and local assets, fitted to wgs84 ``bounds``
    (minlon, minlat, maxlon, maxlat), holding the page script."""
    m = new_map(settings, prefer_canvas=True, control_scale=True)
    if bounds is not None:
        m.fit_bounds([[bounds[1], bounds[0]], [bounds[3], bounds[2]]])
    root = figure_of(m)
    root.title = title
    root.header.add_child(InlineScript(_script_text()), name="gridsvc-maps")
    return m


def finish(m: folium.Map) -> folium.Map:
    folium.LayerControl(collapsed=False).add_to(m)
    return m

"""The coverage map: a unit's subtree, one layer per level, coloured by members per 100
households (branca legend), with the gaps as their own layers (grids with no branch secretary,
buildings with no Party group leader) and the 党员中心户 as points.

Small subtrees (``INLINE_MAX`` features at most) are inlined into the page; larger ones are
fetched per view from ``/api/v1/layers/{level}`` (see ``maps/layers.py``), so a district of
77,000 micro-grids opens as fast as its streets. A static file (``api=None``) inlines all.
"""

from __future__ import annotations

from typing import Any

import folium
import numpy as np
from branca.colormap import LinearColormap

from gridsvc.hierarchy import Level
from gridsvc.maps import elements
from gridsvc.maps.layers import MAX_LIMIT, RAW_ZOOM, LayerStore, min_zoom

API = "/api/v1"
INLINE_MAX = 4_000  # features of a subtree (all levels) still inlined into the page
COLOURS = ["#f7fbff", "#9ecae1", "#4292c6", "#08306b"]
NO_SECRETARY = "无书记网格 grids without secretary"
NO_LEADER = "无组长楼栋 buildings without leader"
HOUSEHOLDS = "党员中心户 households"


def level_title(lv: Level) -> str:
    return f"{lv.name} {lv.key}"


def shown_levels(store: LayerStore, unit: str | None) -> list[Level]:
    """The levels drawn for ``unit``: its own and every level below it."""
    top = 1 if unit is None else int(store.index().levels[store.unit_row(unit)])
    return [lv for lv in store.svc.hierarchy.levels if lv.level >= top]


def should_inline(store: LayerStore, unit: str | None, levels: list[Level]) -> bool:
    return sum(store.count(lv.level, unit) for lv in levels) <= INLINE_MAX


def colormap(store: LayerStore, unit: str | None) -> LinearColormap:
    """0 to the 95th percentile of the subtree's micro-grid rates (at least 10)."""
    cov = store.figures()
    index = cov.index
    rows = np.flatnonzero(index.levels == store.svc.hierarchy.micro_grid.level)
    rows = rows[store.subtree_rows(unit, rows)]
    rates = cov.per_100()[rows]
    top = float(np.nanpercentile(rates, 95)) if np.isfinite(rates).any() else 0.0
    top = max(10.0, float(np.ceil(top)))
    cm = LinearColormap(COLOURS, vmin=0, vmax=top)
    cm.caption = "党员/百户 members per 100 households"
    return cm


class LayerSource:
    """Where a page's layers come from: inlined from ``store`` or fetched from ``api``."""

    def __init__(self, store: LayerStore, unit: str | None, inline: bool,
                 api: str | None) -> None:
        self.store, self.unit, self.inline, self.api = store, unit, inline, api

    def add(self, m: folium.Map, lv: Level, title: str, config: dict[str, Any],
            params: dict[str, str] | None = None, show: bool = True) -> None:
        params = {k: v for k, v in (params or {}).items() if v}
        if self.inline:
            page = self.store.layer(lv.level, zoom=RAW_ZOOM, unit=self.unit, limit=MAX_LIMIT,
                                    view=params.get("view", "coverage"),
                                    only=params.get("only"), as_points="points" in params)
            elements.DataLayer(title, config, data=page.geojson(), show=show).add_to(m)
            return
        if self.unit:
            params["unit"] = self.unit
        config = {**config, "url": f"{self.api}/layers/{lv.key}", "params": params,
                  "minZoom": 0 if params.get("view") == "counts"  # counts aggregate up
                  else min_zoom(self.store.svc.hierarchy, lv.level)}
        elements.DataLayer(title, config, show=show).add_to(m)


def coverage_map(store: LayerStore, unit: str | None = None, *, api: str | None = API,
                 inline: bool | None = None) -> folium.Map:
    """The coverage map of ``unit``'s subtree (the whole tree when None)."""
    hierarchy = store.svc.hierarchy
    levels = shown_levels(store, unit)
    if api is None:
        inline = True
    elif inline is None:
        inline = should_inline(store, unit, levels)
    source = LayerSource(store, unit, inline, api)
    name = store.index().names[store.unit_row(unit)] if unit else "全部 all units"
    m = elements.page_map(store.svc.settings, store.bounds(unit), f"覆盖 coverage: {name}")
    cm = colormap(store, unit)
    scale = elements.scale_json(cm)
    micro = hierarchy.micro_grid.level
    tooltip = ["name", "code"]
    for lv in levels:
        if lv.geometry == "point":
            source.add(m, lv, HOUSEHOLDS, {"kind": "points", "tooltip": tooltip,
                                          "fields": [["name", "name 名称"], ["code", "code 编码"],
                                                     ["leader", "户主 head"]]})
            continue
        kind = "choropleth" if lv.level >= micro - 1 else "outline"
        source.add(m, lv, level_title(lv), {
            "kind": kind, "scale": scale, "value": "members_per_100", "tooltip": tooltip,
            "fields": elements.POPUP_FIELDS, "weight": max(1, 4 - lv.level) if kind ==
            "outline" else 1, "color": "#252525"})
    gaps = {micro - 1: NO_SECRETARY, micro: NO_LEADER}
    for lv in levels:
        if lv.level in gaps:
            source.add(m, lv, gaps[lv.level], {
                "kind": "highlight", "tooltip": tooltip, "fields": elements.POPUP_FIELDS,
                "color": "#d7191c" if lv.level == micro else "#ff7f00"}, {"only": "no-leader"})
    cm.add_to(m)
    elements.SearchControl(f"{api}/units" if api else None).add_to(m)
    return elements.finish(m)

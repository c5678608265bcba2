"""The validation map: each problem's shape (``geometry_wkt``: invalid part, overlap, gap,
part outside the parent), coloured by rule with a popup holding the message, drawn over the
boundaries: the stored tree's layers, and for an uploaded file its own features.

A problem without a shape but with a location is drawn as a point; problems with neither
(a missing value, say) are only in the report.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import folium
import shapely
from shapely.geometry import mapping

from gridsvc.io.boundaries import BoundaryFileError, read_boundaries
from gridsvc.io.records import BoundaryRecord
from gridsvc.maps import elements
from gridsvc.maps.coverage import API, LayerSource, level_title, shown_levels
from gridsvc.maps.layers import DECIMALS, LayerStore
from gridsvc.services.errors import InvalidInput
from gridsvc.validation.report import Problem, Report

RULE_COLOURS = {
    "invalid-geometry": "#e41a1c",
    "degenerate-geometry": "#984ea3",
    "overlapping-siblings": "#ff7f00",
    "gaps": "#377eb8",
    "outside-parent": "#a65628",
    "outside-china": "#f781bf",
    "empty-geometry": "#999999",
    "wrong-geometry-kind": "#4daf4a",
}
OTHER_COLOUR = "#d7191c"
PROBLEMS = "问题 problems"
UPLOADED = "上传的边界 uploaded boundaries"
UPLOAD_INLINE_MAX = 20_000
PROBLEM_FIELDS = [["rule", "rule 规则"], ["severity", "severity"], ["message", "message"],
                  ["code", "code 编码"], ["other_code", "other 另一单位"], ["area_m2", "m²"],
                  ["layer", "layer"], ["row", "row"]]


def uploaded_records(path: Path, **options: Any) -> list[BoundaryRecord]:
    """The features of an uploaded boundary file that read cleanly (to draw under problems)."""
    try:
        return read_boundaries(path, **options).records
    except BoundaryFileError as exc:
        raise InvalidInput(str(exc), field="file") from exc


def _rounded(geom: Any) -> dict[str, Any]:
    return mapping(shapely.set_precision(geom, 10.0**-DECIMALS, mode="pointwise"))


def problem_features(problems: Sequence[Problem]) -> dict[str, Any]:
    """Problems with a shape or a location as GeoJSON features (wgs84)."""
    features = []
    for p in problems:
        if p.geometry_wkt:
            geom = _rounded(shapely.from_wkt(p.geometry_wkt))
        elif p.location:
            geom = {"type": "Point", "coordinates": list(p.location)}
        else:
            continue
        props = {k: v for k, v in p.as_dict().items() if k != "location"}
        features.append({"type": "Feature", "geometry": geom, "properties": props})
    return {"type": "FeatureCollection", "features": features}


def record_features(records: Sequence[BoundaryRecord]) -> dict[str, Any]:
    return {"type": "FeatureCollection", "features": [
        {"type": "Feature", "geometry": _rounded(r.geometry),
         "properties": {"code": r.code, "name": r.name, "level": r.level,
                        "parent_code": r.parent_code}}
        for r in records if r.geometry is not None and not r.geometry.is_empty]}


def _bounds(collection: dict[str, Any]) -> tuple[float, float, float, float] | None:
    geoms = [shapely.geometry.shape(f["geometry"]) for f in collection["features"]]
    return tuple(shapely.total_bounds(geoms)) if geoms else None


def validation_map(store: LayerStore, report: Report, *, unit: str | None = None,
                   uploaded: Sequence[BoundaryRecord] | None = None, title: str | None = None,
                   action: str | None = None, csrf_token: str | None = None,
                   api: str | None = API) -> folium.Map:
    """The report's problems over the boundaries (the uploaded file's, or the stored tree's).

    ``action``: where the page's upload form posts a boundary file (none: no form), with
    ``csrf_token`` in its hidden ``csrf_token`` field (a browser signed in by cookie needs it).
    """
    problems = problem_features(report.problems)
    uploads = record_features(uploaded) if uploaded is not None else None
    bounds = _bounds(uploads) if uploads else None
    bounds = bounds or store.bounds(unit) or _bounds(problems)
    heading = (f"校验 validation: {title or unit or 'stored tree'} — {len(report.errors)} errors, "
               f"{len(report.warnings)} warnings")
    m = elements.page_map(store.svc.settings, bounds, heading)
    if uploads is not None:
        if len(uploads["features"]) <= UPLOAD_INLINE_MAX:
            elements.DataLayer(UPLOADED, {"kind": "outline", "tooltip": ["name", "code"],
                                          "fields": [["name", "name"], ["code", "code"],
                                                     ["level", "level"]],
                                          "color": "#2b8cbe", "weight": 1},
                               data=uploads).add_to(m)
    else:
        inline = api is None or store.count(store.svc.hierarchy.micro_grid.level, unit) <= 4_000
        source = LayerSource(store, unit, inline, api)
        for lv in shown_levels(store, unit):
            if lv.geometry == "polygon":
                source.add(m, lv, level_title(lv), {
                    "kind": "outline", "tooltip": ["name", "code"], "color": "#2b8cbe",
                    "weight": max(1, 4 - lv.level)}, {"view": "names"})
    rules = {f["properties"]["rule"] for f in problems["features"]}
    colours = {rule: RULE_COLOURS.get(rule, OTHER_COLOUR) for rule in sorted(rules)}
    elements.DataLayer(PROBLEMS, {"kind": "problems", "rules": colours,
                                  "tooltip": ["rule", "code"], "fields": PROBLEM_FIELDS},
                       data=problems).add_to(m)
    counts = {rule: sum(p.rule == rule for p in report.problems) for rule in colours}
    elements.Legend(heading, [(f"{rule} ({counts[rule]})", c) for rule, c in colours.items()]
                    ).add_to(m)
    if action:
        elements.UploadForm(action, csrf_token).add_to(m)
    return elements.finish(m)


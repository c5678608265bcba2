"""Per-feature geometry rules, vectorised over all records, and the optional repair.

Rule ids: ``empty-geometry``, ``wrong-geometry-kind``, ``degenerate-geometry``,
``invalid-geometry``, ``repaired``.

- A polygon level needs a Polygon or MultiPolygon; the point level a Point. Polygons are
  normalised to MultiPolygon in the output.
- Degenerate: a coordinate that is NaN or infinite, a polygon that has no area even once made
  valid (fewer than 3 distinct vertices, all vertices on a line), or an area below
  ``MIN_AREA_M2`` (0.01 m²).
- Invalid (GEOS ``is_valid_reason``) polygons are errors, unless ``repair`` is on: then
  ``shapely.make_valid`` repairs them, only the polygonal parts are kept, and a ``repaired``
  problem says what changed (area, parts, type); a warning when the area changed by more than
  1 % or parts were dropped, else info. The "area before" is GEOS's area of the invalid rings
  as drawn, where the crossing lobes of a bow-tie cancel out.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import numpy as np
import shapely
from shapely.geometry.base import BaseGeometry

from gridsvc.hierarchy import Level
from gridsvc.io.records import BoundaryRecord
from gridsvc.spatial.metric import to_metric
from gridsvc.validation.problems import MIN_AREA_M2, lonlat_text, record_problem
from gridsvc.validation.report import Problem, Report, Severity

POINT, POLYGON, MULTIPOLYGON, COLLECTION = 0, 3, 6, 7  # shapely type ids
REPAIR_AREA_CHANGE = 0.01  # relative area change above which a repair is a warning
_REASON_AT = re.compile(r"^(?P<what>.*?)\s*\[(?P<x>\S+) (?P<y>\S+)\]\s*$")


@dataclass
class CheckedGeometries:
    """The outcome of the geometry rules, one entry per record."""

    wgs84: np.ndarray  # geometries to store: normalised or repaired; bad ones unchanged
    metric: np.ndarray  # usable geometries in the metric zone, None elsewhere
    usable: np.ndarray  # bool: the right kind, valid (or repaired) and not degenerate


def check_geometries(
    records: list[BoundaryRecord],
    levels: list[Level | None],
    epsg: int,
    report: Report,
    *,
    repair: bool = False,
) -> CheckedGeometries:
    """Apply the geometry rules to every record; ``epsg`` is the metric zone for areas."""
    n = len(records)
    geoms = np.empty(n, dtype=object)
    geoms[:] = [r.geometry for r in records]
    kinds = np.array([lv.geometry if lv else "" for lv in levels], dtype=object)
    type_id = shapely.get_type_id(geoms)
    empty = (type_id < 0) | shapely.is_empty(geoms)
    for i in np.flatnonzero(empty):
        report.add(record_problem(records[i], "error", "empty-geometry",
                                  "The feature has no geometry.", field="geometry"))

    polygonal = np.isin(type_id, (POLYGON, MULTIPOLYGON)) & ~empty
    wrong_kind = ~empty & (
        ((kinds == "polygon") & ~polygonal) | ((kinds == "point") & (type_id != POINT))
    )
    for i in np.flatnonzero(wrong_kind):
        needs = "a Polygon or MultiPolygon" if kinds[i] == "polygon" else "a Point"
        lv = levels[i]
        assert lv is not None  # a kind is known only for a known level
        report.add(record_problem(
            records[i], "error", "wrong-geometry-kind",
            f"Level {lv.level} {lv.key} needs {needs}, got "
            f"{geoms[i].geom_type}.", field="geometry"))

    coords, owner = shapely.get_coordinates(geoms, return_index=True)
    not_finite = np.zeros(n, dtype=bool)
    not_finite[owner[~np.isfinite(coords).all(axis=1)]] = True
    for i in np.flatnonzero(not_finite & ~empty):
        report.add(record_problem(
            records[i], "error", "degenerate-geometry",
            "The geometry has a coordinate that is not a number (NaN or infinite).",
            field="geometry"))

    usable = ~empty & ~wrong_kind & ~not_finite & (kinds != "")
    out = geoms.copy()
    check = np.flatnonzero(polygonal & ~wrong_kind & ~not_finite)
    reasons = shapely.is_valid_reason(geoms[check])
    for i, reason in zip(check, reasons, strict=True):
        if reason == "Valid Geometry":
            continue
        usable[i] = False
        rec = records[i]
        what, at = _describe(reason)
        fixed, dropped = _polygonal_part(shapely.make_valid(geoms[i]))
        if fixed is None:
            shape = ("has fewer than 3 distinct vertices" if _distinct_vertices(geoms[i]) < 3
                     else f"has no area ({what})")
            report.add(record_problem(rec, "error", "degenerate-geometry",
                                      f"The polygon {shape}.", field="geometry", location=at))
            continue
        if not repair:
            report.add(record_problem(
                rec, "error", "invalid-geometry",
                f"Invalid geometry: {what}; fix it in your GIS or import with --repair.",
                field="geometry", location=at, geometry_wkt=geoms[i].wkt))
            continue
        report.add(_repair_problem(rec, geoms[i], fixed, dropped, what, at, epsg))
        report.repaired += 1
        out[i] = fixed
        usable[i] = kinds[i] != ""

    to_multi = np.flatnonzero(usable & (shapely.get_type_id(out) == POLYGON))
    if len(to_multi):
        out[to_multi] = shapely.multipolygons(out[to_multi], indices=np.arange(len(to_multi)))

    metric = np.full(n, None, dtype=object)
    metric[usable] = to_metric(out[usable], epsg)
    tiny = usable & (kinds == "polygon") & (shapely.area(metric) < MIN_AREA_M2)
    for i in np.flatnonzero(tiny):
        report.add(record_problem(
            records[i], "error", "degenerate-geometry",
            f"The polygon's area is {shapely.area(metric[i]):.4f} m², below "
            f"{MIN_AREA_M2} m².", field="geometry", area_m2=float(shapely.area(metric[i]))))
    usable &= ~tiny
    metric[~usable] = None
    return CheckedGeometries(wgs84=out, metric=metric, usable=usable)


def _distinct_vertices(geom: BaseGeometry) -> int:
    return len(np.unique(shapely.get_coordinates(geom), axis=0))


def _describe(reason: str) -> tuple[str, tuple[float, float] | None]:
    """'Self-intersection[120.9 32.0]' -> ('Self-intersection at 120.900000, 32.000000', xy)."""
    m = _REASON_AT.match(reason)
    if not m:
        return reason, None
    try:
        x, y = float(m["x"]), float(m["y"])
    except ValueError:
        return reason, None
    return f"{m['what']} at {lonlat_text(x, y)}", (x, y)


def _polygonal_part(geom: BaseGeometry) -> tuple[BaseGeometry | None, list[str]]:
    """The Polygon/MultiPolygon part of a make_valid result and the types dropped from it."""
    polygons, dropped = [], []
    stack = [geom]
    while stack:
        g = stack.pop()
        if g.is_empty:
            continue
        if g.geom_type == "Polygon":
            polygons.append(g)
        elif g.geom_type in ("MultiPolygon", "GeometryCollection"):
            stack.extend(reversed(shapely.get_parts(g).tolist()))
        else:
            dropped.append(g.geom_type)
    if not polygons:
        return None, dropped
    return (polygons[0] if len(polygons) == 1 else shapely.MultiPolygon(polygons)), dropped


def _repair_problem(
    rec: BoundaryRecord,
    before: BaseGeometry,
    after: BaseGeometry,
    dropped: list[str],
    what: str,
    at: tuple[float, float] | None,
    epsg: int,
) -> Problem:
    """The 'repaired' problem: what make_valid changed, measured in the metric zone."""
    area_before, area_after = shapely.area(to_metric(np.array([before, after]), epsg))
    parts_before = shapely.get_num_geometries(before)
    parts_after = shapely.get_num_geometries(after)
    changes = [f"area {area_before:.1f} m² → {area_after:.1f} m²",
               f"{parts_before} → {parts_after} part(s)"]
    if before.geom_type != after.geom_type:
        changes.append(f"{before.geom_type} → {after.geom_type}")
    if dropped:
        changes.append(f"dropped {len(dropped)} non-polygonal part(s) "
                       f"({', '.join(sorted(set(dropped)))})")
    changed = abs(area_after - area_before) > REPAIR_AREA_CHANGE * max(area_before, area_after)
    severity: Severity = "warning" if changed or dropped else "info"
    return record_problem(
        rec, severity, "repaired", f"Repaired {what}: {'; '.join(changes)}.",
        field="geometry", location=at, area_m2=float(area_after),
        geometry_wkt=after.wkt)

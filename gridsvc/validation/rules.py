"""Validate boundary records before anything is stored: the entry point of the rules.

``validate_records`` runs, in order:

1. attribute rules (``tree.check_attributes``): missing code/name/level, unknown level,
   duplicate codes;
2. geometry rules (``geometry.check_geometries``): empty, wrong kind, degenerate, invalid,
   with ``repair`` on request;
3. parent rules (``tree.check_parents``) against the file and the stored units;
4. spatial rules (``topology.check_topology``): outside-parent, overlapping-siblings, gaps.

Stored units (``existing``) are the ones the file refers to: parents named by parent_code but
not in the file, and stored siblings and children of the file's features. A file record
overrides the stored unit with the same code (a re-import or an edit). All measures are taken
in one CGCS2000 3-degree Gauss-Krüger zone, the one nearest the median longitude of the data.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping
from dataclasses import dataclass
from typing import cast

import numpy as np
import shapely
from shapely.geometry.base import BaseGeometry

from gridsvc.hierarchy import Hierarchy, Level
from gridsvc.io.records import BoundaryRecord
from gridsvc.spatial.metric import FIRST_ZONE_EPSG, metric_epsg_for, to_metric
from gridsvc.validation.geometry import CheckedGeometries, check_geometries
from gridsvc.validation.problems import blank
from gridsvc.validation.report import Problem, Report
from gridsvc.validation.topology import Nodes, check_topology
from gridsvc.validation.tree import check_attributes, check_parents


@dataclass(frozen=True)
class ExistingUnit:
    """A unit already stored that the file refers to (geometry in EPSG:4326)."""

    code: str
    level: int
    parent_code: str | None
    geometry: BaseGeometry | None
    name: str = ""


@dataclass
class ValidationResult:
    report: Report
    records: list[BoundaryRecord]  # same order as the input; polygons as MultiPolygon


def validate_records(
    records: list[BoundaryRecord],
    hierarchy: Hierarchy,
    *,
    existing: Mapping[str, ExistingUnit] | None = None,
    contain_tolerance_m: float = 1.0,
    overlap_tolerance_m2: float = 1.0,
    gap_min_m2: float = 1.0,
    repair: bool = False,
) -> ValidationResult:
    """Check the records against each other, the stored units and the hierarchy.

    Returns the report and the records to store: every input record, in order, with its
    geometry normalised (polygons as MultiPolygon) or repaired; the caller stores them only
    when ``report.ok``.
    """
    report = Report(features=len(records))
    levels, first = check_attributes(records, hierarchy, report)
    stored = {c: u for c, u in (existing or {}).items() if c not in first}
    epsg = _metric_zone(records, stored.values(), report)
    if epsg is None:
        return ValidationResult(report, list(records))
    checked = check_geometries(records, levels, epsg, report, repair=repair)
    check_parents(records, levels, first, stored, hierarchy, report)
    nodes = _nodes(records, levels, first, checked, stored, epsg, hierarchy)
    check_topology(nodes, epsg, report, contain_tolerance_m=contain_tolerance_m,
                   overlap_tolerance_m2=overlap_tolerance_m2, gap_min_m2=gap_min_m2)
    out = [rec if rec.geometry is geom else _with_geometry(rec, geom)
           for rec, geom in zip(records, checked.wgs84, strict=True)]
    return ValidationResult(report, out)


def _with_geometry(record: BoundaryRecord, geometry: BaseGeometry) -> BoundaryRecord:
    """A shallow copy with another geometry (dataclasses.replace is slow for 80,000)."""
    new = copy.copy(record)
    new.geometry = geometry
    return new


def _metric_zone(records, stored, report: Report) -> int | None:
    """The zone nearest the median longitude of all geometries; None (and an error) if none."""
    geoms = np.array([r.geometry for r in records] + [u.geometry for u in stored],
                     dtype=object)
    bounds = shapely.bounds(geoms)
    centres = (bounds[:, 0] + bounds[:, 2]) / 2
    centres = centres[np.isfinite(centres)]
    if len(centres) == 0:
        return FIRST_ZONE_EPSG  # nothing to measure
    lon = float(np.median(centres))
    try:
        return metric_epsg_for(lon)
    except ValueError as exc:
        report.add(Problem(
            severity="error", rule="outside-china",
            message=f"The features lie around longitude {lon:.4f}: {exc} "
                    "Nothing else was checked.", field="geometry"))
        return None


def _nodes(
    records: list[BoundaryRecord],
    levels: list[Level | None],
    first: dict[str, int],
    checked: CheckedGeometries,
    stored: Mapping[str, ExistingUnit],
    epsg: int,
    hierarchy: Hierarchy,
) -> Nodes:
    """The table of units for the spatial rules: usable file features, then stored units."""
    in_file = [i for i in first.values() if checked.usable[i]]
    kept = [u for u in stored.values()
            if u.geometry is not None and not u.geometry.is_empty
            and 1 <= u.level <= hierarchy.depth]
    code = [records[i].code for i in in_file] + [u.code for u in kept]
    # usable features have a known level
    level = [cast(Level, levels[i]).level for i in in_file] + [u.level for u in kept]
    parent_code = [records[i].parent_code for i in in_file] + [u.parent_code for u in kept]
    geom = np.empty(len(code), dtype=object)
    geom[:len(in_file)] = checked.metric[in_file]
    stored_geoms = np.array([u.geometry for u in kept], dtype=object)
    stored_geoms = shapely.make_valid(stored_geoms)  # stored before validation existed?
    geom[len(in_file):] = to_metric(stored_geoms, epsg)

    index = {c: k for k, c in enumerate(code)}
    parent = np.full(len(code), -1, dtype=np.int64)
    for k, pc in enumerate(parent_code):
        p = None if pc is None or blank(pc) else index.get(pc)
        if p is not None and level[p] == level[k] - 1:
            parent[k] = p
    n_file = len(in_file)
    return Nodes(
        code=np.array(code, dtype=object),
        level=np.array(level, dtype=np.int64),
        parent=parent,
        geom=geom,
        is_point=np.array([hierarchy.get(lv).geometry == "point" for lv in level], dtype=bool),
        in_file=np.arange(len(code)) < n_file,
        row=np.array([records[i].row for i in in_file] + [None] * len(kept), dtype=object),
        layer=np.array([records[i].layer for i in in_file] + [None] * len(kept), dtype=object),
    )

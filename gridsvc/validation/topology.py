"""Spatial rules between units, vectorised with shapely 2 in one metric zone.

Rule ids: ``outside-parent`` (error), ``overlapping-siblings`` (error), ``gaps`` (warning).

The units are the usable file features plus the stored units the file refers to, in a
``Nodes`` table. A pair or parent made only of stored units is not reported: it is not the
file's doing. When a stored unit is involved, the problem names the file feature (code, row)
and the stored unit in ``other_code``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import shapely

from gridsvc.spatial.metric import WGS84_EPSG, to_wgs84, transformer
from gridsvc.validation.problems import MIN_AREA_M2, lonlat_text
from gridsvc.validation.report import Problem, Report, Severity


@dataclass
class Nodes:
    """Units taking part in the spatial rules, one entry per unit (arrays of equal length)."""

    code: np.ndarray  # str
    level: np.ndarray  # int
    parent: np.ndarray  # int: index of the parent node, -1 for none or a broken link
    geom: np.ndarray  # geometries in the metric zone
    is_point: np.ndarray  # bool: the household point level
    in_file: np.ndarray  # bool: from the file (else stored)
    row: np.ndarray  # int or None (stored)
    layer: np.ndarray  # str or None

    def __len__(self) -> int:
        return len(self.code)

    def label(self, k: int) -> str:
        return str(self.code[k]) if self.in_file[k] else f"{self.code[k]} (stored)"


class _Reporter:
    """Turns metric shapes into problems with wgs84 locations and WKT."""

    def __init__(self, nodes: Nodes, epsg: int, report: Report) -> None:
        self.nodes, self.epsg, self.report = nodes, epsg, report

    def emit(
        self,
        severity: Severity,
        rule: str,
        template: str | list[str],
        ks: np.ndarray,
        shapes: np.ndarray,
        *,
        spots: np.ndarray | None = None,
        areas: np.ndarray | None = None,
        others: np.ndarray | None = None,
    ) -> None:
        """One problem per node in ``ks``, about the metric shape at the same position.

        ``template`` (one, or one per problem) may use {area}, {at} (the wgs84 location of
        the spot, by default a point on the shape) and {other} (the other node's label).
        """
        if len(ks) == 0:
            return
        nodes = self.nodes
        spots = shapely.point_on_surface(shapes if spots is None else spots)
        lon, lat = transformer(self.epsg, WGS84_EPSG).transform(
            shapely.get_x(spots), shapely.get_y(spots))
        wkts = shapely.to_wkt(to_wgs84(shapes, self.epsg), rounding_precision=7)
        for n, k in enumerate(ks):
            other = None if others is None else others[n]
            area = None if areas is None else float(areas[n])
            text = template if isinstance(template, str) else template[n]
            self.report.add(Problem(
                severity=severity, rule=rule,
                message=text.format(area=area, at=lonlat_text(lon[n], lat[n]),
                                    other="" if other is None else nodes.label(other)),
                code=str(nodes.code[k]), row=nodes.row[k], layer=nodes.layer[k],
                field="geometry", location=(float(lon[n]), float(lat[n])), area_m2=area,
                other_code=None if other is None else str(nodes.code[other]),
                geometry_wkt=str(wkts[n])))


def check_topology(
    nodes: Nodes,
    epsg: int,
    report: Report,
    *,
    contain_tolerance_m: float,
    overlap_tolerance_m2: float,
    gap_min_m2: float,
) -> None:
    """Run the three spatial rules over the nodes."""
    out = _Reporter(nodes, epsg, report)
    check_outside_parent(nodes, out, contain_tolerance_m)
    check_overlapping_siblings(nodes, out, overlap_tolerance_m2)
    check_gaps(nodes, out, gap_min_m2, sliver_m=contain_tolerance_m)


def _touches_file(nodes: Nodes, a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return nodes.in_file[a] | nodes.in_file[b]


def _file_first(nodes: Nodes, a: np.ndarray, b: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Order pairs so the first is a file node wherever one of the two is."""
    swap = ~nodes.in_file[a] & nodes.in_file[b]
    return np.where(swap, b, a), np.where(swap, a, b)


def check_outside_parent(nodes: Nodes, out: _Reporter, tolerance_m: float) -> None:
    """Each child inside its parent within ``tolerance_m``; household points in their building.

    Polygons: the part of the child outside the parent buffered by the tolerance, reported
    when larger than ``MIN_AREA_M2``. Points: the distance to the building.
    """
    child = np.flatnonzero(nodes.parent >= 0)
    parent = nodes.parent[child]
    keep = _touches_file(nodes, child, parent) & ~nodes.is_point[parent]
    child, parent = child[keep], parent[keep]

    poly = ~nodes.is_point[child]
    pc, pp = child[poly], parent[poly]
    buffered = np.full(len(nodes), None, dtype=object)
    used = np.unique(pp)
    buffered[used] = shapely.buffer(nodes.geom[used], tolerance_m)
    shapely.prepare(buffered[used])
    inside = shapely.contains(buffered[pp], nodes.geom[pc])
    pc, pp = pc[~inside], pp[~inside]
    outside = shapely.difference(nodes.geom[pc], buffered[pp])
    area = shapely.area(outside)
    big = area > MIN_AREA_M2
    pc, pp, outside, area = pc[big], pp[big], outside[big], area[big]
    # a stored child outside a re-imported parent is reported on the parent, the file feature
    on_child = nodes.in_file[pc]
    beyond = f"by more than {tolerance_m:g} m, around {{at}}."
    out.emit("error", "outside-parent",
             "{area:.1f} m² of this unit lies outside its parent {other} " + beyond,
             pc[on_child], outside[on_child], areas=area[on_child], others=pp[on_child])
    out.emit("error", "outside-parent",
             "{area:.1f} m² of child {other} lies outside this unit " + beyond,
             pp[~on_child], outside[~on_child], areas=area[~on_child], others=pc[~on_child])

    hc, hp = child[~poly], parent[~poly]
    far = ~shapely.dwithin(nodes.geom[hp], nodes.geom[hc], tolerance_m)
    hc, hp = hc[far], hp[far]
    distance = shapely.distance(nodes.geom[hp], nodes.geom[hc])
    texts = [f"The point at {{at}} is {d:.1f} m outside its building {{other}} "
             f"(tolerance {tolerance_m:g} m)." for d in distance]
    on_child = nodes.in_file[hc]
    out.emit("error", "outside-parent", [t for t, f in zip(texts, on_child, strict=True) if f],
             hc[on_child], nodes.geom[hc[on_child]], others=hp[on_child])
    texts = [f"Stored household {{other}} at {{at}} is {d:.1f} m outside this building "
             f"(tolerance {tolerance_m:g} m)." for d in distance[~on_child]]
    out.emit("error", "outside-parent", texts,
             hp[~on_child], nodes.geom[hc[~on_child]], others=hc[~on_child])


def check_overlapping_siblings(nodes: Nodes, out: _Reporter, tolerance_m2: float) -> None:
    """Siblings (same parent, or both roots) whose interiors overlap by more than the tolerance.

    Candidate pairs come from an STRtree per level; pairs that only touch (shared edges)
    are dropped before any overlay is computed.
    """
    polygon = ~nodes.is_point
    for level in np.unique(nodes.level[polygon]):
        idx = np.flatnonzero(polygon & (nodes.level == level))
        if level > 1:
            idx = idx[nodes.parent[idx] >= 0]
        if len(idx) < 2:
            continue
        geoms = nodes.geom[idx]
        a, b = shapely.STRtree(geoms).query(geoms, predicate="intersects")
        a, b = idx[a], idx[b]
        keep = (a < b) & (nodes.parent[a] == nodes.parent[b]) & _touches_file(nodes, a, b)
        a, b = a[keep], b[keep]
        shapely.prepare(nodes.geom[idx])
        inner = ~shapely.touches(nodes.geom[a], nodes.geom[b])
        a, b = a[inner], b[inner]
        overlap = shapely.intersection(nodes.geom[a], nodes.geom[b])
        area = shapely.area(overlap)
        big = area > tolerance_m2
        a, b = _file_first(nodes, a[big], b[big])
        out.emit("error", "overlapping-siblings",
                 "This unit overlaps its sibling {other} by {area:.1f} m², around {at}.",
                 a, overlap[big], areas=area[big], others=b)


def check_gaps(nodes: Nodes, out: _Reporter, gap_min_m2: float, sliver_m: float) -> None:
    """Parents whose polygon children leave part of them uncovered: one warning per parent.

    The gap is the parent minus the union of its children, without slivers narrower than
    ``sliver_m`` (a morphological opening: edges that do not quite meet are a drawing misfit,
    not a gap, and would also join real gaps into one part). Reported when its area exceeds
    ``gap_min_m2``, with the number of its parts.
    """
    child = np.flatnonzero((nodes.parent >= 0) & ~nodes.is_point)
    if len(child) == 0:
        return
    parent = nodes.parent[child]
    order = np.argsort(parent, kind="stable")
    child, parent = child[order], parent[order]
    parents, starts, counts = np.unique(parent, return_index=True, return_counts=True)
    involved = np.logical_or.reduceat(nodes.in_file[child], starts) | nodes.in_file[parents]
    parents, starts, counts = parents[involved], starts[involved], counts[involved]
    if len(parents) == 0:
        return
    # children as a padded table, one row per parent: union_all ignores the None padding
    table = np.full((len(parents), counts.max()), None, dtype=object)
    rows = np.repeat(np.arange(len(parents)), counts)
    cols = np.arange(counts.sum()) - np.repeat(np.cumsum(counts) - counts, counts)
    members = np.concatenate([child[s:s + c] for s, c in zip(starts, counts, strict=True)])
    table[rows, cols] = nodes.geom[members]
    cover = shapely.union_all(table, axis=1)
    gap = shapely.difference(nodes.geom[parents], cover)
    maybe = np.flatnonzero(shapely.area(gap) > gap_min_m2)
    if sliver_m > 0 and len(maybe):
        shrunk = shapely.buffer(gap[maybe], -sliver_m / 2, join_style="mitre")
        gap[maybe] = shapely.buffer(shrunk, sliver_m / 2, join_style="mitre")

    parts, owner = shapely.get_parts(gap, return_index=True)
    part_area = shapely.area(parts)
    real = part_area > MIN_AREA_M2
    parts, owner, part_area = parts[real], owner[real], part_area[real]
    total = np.bincount(owner, weights=part_area, minlength=len(parents))
    number = np.bincount(owner, minlength=len(parents))
    flagged = np.flatnonzero(total > gap_min_m2)
    # get_parts lists parts in owner order: each parent's parts are one slice
    begin = np.searchsorted(owner, flagged, side="left")
    end = np.searchsorted(owner, flagged, side="right")
    gaps = np.empty(len(flagged), dtype=object)
    spots = np.empty(len(flagged), dtype=object)
    for n, (b, e) in enumerate(zip(begin, end, strict=True)):
        gaps[n] = shapely.MultiPolygon(parts[b:e].tolist())
        spots[n] = parts[b + np.argmax(part_area[b:e])]
    texts = [f"The children of this unit leave {number[p]} gap(s) uncovered, "
             f"{{area:.1f}} m² in all; the largest around {{at}}." for p in flagged]
    out.emit("warning", "gaps", texts, parents[flagged], gaps, spots=spots,
             areas=total[flagged])

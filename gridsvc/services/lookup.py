""""Which grid do I report to": a point or an address to the whole chain of units.

A point (with its coordsys) is converted to wgs84, checked to be in China, and located in the
micro-grid index. Its chain is the micro-grid and its ancestors, one entry per level, each with
the unit's public contact (leader and phone, posted in the building per DOMAIN.md); no member's
data ever appears. The responsible 党员中心户 follows the household rule (``households_many``).

A point in no micro-grid (a road, a park, between buildings) is *not covered*. A lookup then
fails with ``NotCovered`` naming the nearest micro-grid within ``nearest_radius_m`` and its
distance; it is never silently assigned. Bulk assignment (registration) may take that nearest
unit as a *fallback*, always flagged so staff confirm it.

An address is matched against the gazetteer; only a confident match to one building (status
"matched": at building level, or at door level when one building stands behind the door) is
located. Weaker or ambiguous matches come back with their candidates and are never guessed.
The problem carries the matcher's verdict as ``match_status`` (``status`` is the HTTP status in
a problem document).

A single point (``locate_point``) takes the scalar path: one compiled ``locate`` and the
household rule in plain floats (``household_one``, the same rule as ``households_many``). Its
answer is assembled as bytes from the JSON the ``CityIndex`` encodes once per unit and per
micro-grid chain (``PointAnswer.to_json``); ``as_dict`` gives the same content as a dict.

Batches (``lookup_batch``) take the point items together: grouped by coordsys, converted,
located and given their households with array operations, and answered from the same encoded
entries and chains. Addresses go one by one. With ``compact`` each chain is a list of codes and
the units are described once in ``units``. ``lookup_batch_columns`` answers the same content
as parallel arrays (serialised by orjson straight from NumPy), the failed items listed apart,
and each unit once, with its parent's code, in a table of rows encoded once per index: the
fast form for big point batches.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import numpy as np
import orjson
import shapely

from gridsvc.geocode.matcher import MatchResult
from gridsvc.services.context import Services
from gridsvc.services.errors import InvalidInput, NotFound, ServiceError
from gridsvc.services.locator import CityIndex, Groups, Household
from gridsvc.spatial.coordsys import (
    SERVICE_EXTENT,
    CoordSysError,
    invalid_mask,
    parse_coordsys,
    point_problem,
    to_wgs84_array,
)

EARTH_RADIUS_M = 6_371_008.8
#: The household rules in the order they are tried (see ``households_many``).
RULES = ("area", "unit", "building", "grid")
_CHUNK_CELLS = 1_000_000  # points x candidates per step of the nearest-household search
NO_SHIFT = ("wgs84", "cgcs2000")  # systems taken as wgs84 unchanged (see spatial/coordsys.py)


class NotCovered(ServiceError):
    slug = "not-covered"
    title = "Point not covered by any micro-grid"
    status = 404


class AddressNotResolved(ServiceError):
    """The address did not match one building: unmatched, weak or ambiguous."""

    slug = "address-not-resolved"
    title = "Address not resolved to a building"
    status = 404


def metres(lon1: Any, lat1: Any, lon2: Any, lat2: Any) -> Any:
    """Distance in metres, equirectangular (within 0.1% of geodesic at a city's scale);
    floats or NumPy arrays."""
    k = np.cos(np.radians((lat1 + lat2) / 2))
    return EARTH_RADIUS_M * np.radians(np.hypot((lon2 - lon1) * k, lat2 - lat1))


# --- placing points ----------------------------------------------------------------------------


@dataclass(frozen=True)
class Placement:
    """Where a wgs84 point falls: the micro-grid row, or the nearest as a flagged fallback."""

    row: int  # -1: nothing within the radius
    fallback: bool
    distance_m: float


def place(index: CityIndex, lon: float, lat: float, radius_m: float) -> Placement:
    rows, fallback, dist = place_many(index, np.array([lon]), np.array([lat]), radius_m)
    return Placement(int(rows[0]), bool(fallback[0]), float(dist[0]))


def place_many(index: CityIndex, lon: np.ndarray, lat: np.ndarray,
               radius_m: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Rows (the nearest within ``radius_m`` where none covers, else -1), fallback flags and
    distances (0 when covered, inf when nothing is in reach)."""
    rows = index.polygons.locate_many(lon, lat)
    fallback = rows < 0
    dist = np.zeros(len(rows))
    if fallback.any():
        near_rows, near_dist = index.polygons.nearest_many(lon[fallback], lat[fallback],
                                                           radius_m)
        rows[fallback] = near_rows
        dist[fallback] = np.where(near_rows >= 0, near_dist, np.inf)
    return rows, fallback, dist


# --- the household rule ------------------------------------------------------------------------


def households_many(index: CityIndex, buildings: np.ndarray, lon: np.ndarray, lat: np.ndarray,
                    radius_m: float, unit_nos: list[str | None] | None = None,
                    ) -> tuple[np.ndarray, np.ndarray]:
    """The 党员中心户 responsible for each home (its building row and wgs84 point), and the
    number of the rule in ``RULES`` that chose it; -1 and -1 where none is.

    1. ``area``: a household of the same grid whose service area covers the home (the first
       by id when several do);
    2. ``unit``: a household of the same building that lists the home's 单元 (``unit_nos``,
       from an address) in ``covers``;
    3. ``building``: else the nearest household in the same building;
    4. ``grid``: else the nearest household in the same grid within ``radius_m``;
    otherwise none, and the home counts as a coverage gap.
    Distances are in metres; ties go to the first household by id.
    """
    buildings = np.asarray(buildings, dtype=np.int64)
    n = len(buildings)
    hh = np.full(n, -1, dtype=np.int64)
    rule = np.full(n, -1, dtype=np.int8)
    if n == 0 or index.by_building is None or index.by_grid is None:
        return hh, rule
    grids = np.where(buildings >= 0, index.parents[np.maximum(buildings, 0)], -1)
    if index.areas is not None:
        point_at, area_at = index.areas.query(shapely.points(lon, lat), predicate="covered_by")
        rows = index.area_rows[area_at]
        same_grid = (index.parents[index.parents[rows]] == grids[point_at]) & (
            grids[point_at] >= 0)
        point_at, rows = point_at[same_grid], rows[same_grid]
        order = np.lexsort((rows, point_at))
        first = order[np.r_[True, point_at[order][1:] != point_at[order][:-1]]] if len(
            order) else order
        hh[point_at[first]], rule[point_at[first]] = rows[first], 0
    if unit_nos is not None:
        for i in np.flatnonzero(hh < 0).tolist():
            found = _covering_unit(index.households_by_building.get(int(buildings[i]), []),
                                   unit_nos[i])
            if found is not None:
                hh[i], rule[i] = found.row, 1
    todo = np.flatnonzero((hh < 0) & (buildings >= 0))
    rows, _dist = _nearest_in_group(index.by_building, buildings[todo], lon[todo], lat[todo])
    hh[todo], rule[todo] = rows, np.where(rows >= 0, 2, -1)
    todo = np.flatnonzero((hh < 0) & (grids >= 0))
    rows, dist = _nearest_in_group(index.by_grid, grids[todo], lon[todo], lat[todo])
    near = (rows >= 0) & (dist <= radius_m)
    hh[todo[near]], rule[todo[near]] = rows[near], 3
    return hh, rule


def household_for(index: CityIndex, building: int, lon: float, lat: float,
                  unit_no: str | None, radius_m: float) -> tuple[Household, str] | None:
    """``households_many`` for one home: the household and the name of its rule, or None."""
    hh, rule = households_many(index, np.array([building]), np.array([lon]), np.array([lat]),
                               radius_m, [unit_no])
    if hh[0] < 0:
        return None
    return index.households[int(hh[0])], RULES[int(rule[0])]


def _covering_unit(households: list[Household], unit_no: str | None) -> Household | None:
    if unit_no:
        for hh in households:
            if unit_no in hh.covers:
                return hh
    return None


def _nearest_in_group(groups: Groups, group: np.ndarray, lon: np.ndarray,
                      lat: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """For each point, the nearest household of its group: rows (-1 for an empty group) and
    metres (inf). Compares every household of the group, a chunk of points at a time."""
    rows = np.full(len(group), -1, dtype=np.int64)
    dist = np.full(len(group), np.inf)
    size = groups.size(group)
    width = int(size.max()) if len(size) else 0
    if width == 0:
        return rows, dist
    step = max(1, _CHUNK_CELLS // width)
    slots = np.arange(width)
    for start in range(0, len(group), step):
        part = slice(start, start + step)
        valid = slots < size[part, None]
        pos = np.where(valid, groups.start[np.maximum(group[part], 0), None] + slots, 0)
        d = np.where(valid, metres(lon[part, None], lat[part, None], groups.lon[pos],
                                   groups.lat[pos]), np.inf)
        best = np.argmin(d, axis=1)
        best_d = d[np.arange(len(best)), best]
        found = np.isfinite(best_d)
        rows[part] = np.where(found, groups.hh[pos[np.arange(len(best)), best]], -1)
        dist[part] = best_d
    return rows, dist


def household_one(index: CityIndex, building: int, lon: float, lat: float,
                  radius_m: float) -> tuple[int, int]:
    """``households_many`` for one point (no 单元) in plain Python floats: the same rules and
    ties, without the array overhead that dominates a single lookup."""
    if building < 0:
        return -1, -1
    grid = int(index.parents[building])
    if index.areas is not None and grid >= 0:
        found = index.areas.query(shapely.Point(lon, lat), predicate="covered_by")
        rows = [r for r in index.area_rows[found].tolist()
                if index.parents[index.parents[r]] == grid]
        if rows:
            return min(rows), 0
    best, _ = _nearest_of(index.households_by_building.get(building, ()), lon, lat)
    if best >= 0:
        return best, 2
    if grid >= 0:
        best, dist = _nearest_of(index.households_by_grid.get(grid, ()), lon, lat)
        if best >= 0 and dist <= radius_m:
            return best, 3
    return -1, -1


def _nearest_of(households: Iterable[Household], lon: float, lat: float) -> tuple[int, float]:
    """The nearest of ``households`` (in row order; the first wins a tie) and its metres."""
    best, best_d = -1, math.inf
    for hh in households:
        k = math.cos(math.radians((lat + hh.lat) / 2))
        d = EARTH_RADIUS_M * math.radians(math.hypot((hh.lon - lon) * k, hh.lat - lat))
        if d < best_d:
            best, best_d = hh.row, d
    return best, best_d


# --- reading points ----------------------------------------------------------------------------


def _number(value: Any, name: str) -> float:
    if value is None or (isinstance(value, str) and not value.strip()):
        raise InvalidInput(f"{name} is required (a number)", field=name)
    if isinstance(value, bool):
        raise InvalidInput(f"{name} must be a number, got {value!r}", field=name)
    try:
        return float(value)
    except (TypeError, ValueError):
        raise InvalidInput(f"{name} must be a number, got {value!r}", field=name) from None


def _coordsys(value: Any) -> str:
    if value is not None and not isinstance(value, str):
        raise InvalidInput(f"coordsys must be text, got {value!r}", field="coordsys")
    try:
        return parse_coordsys(value)
    except CoordSysError as exc:
        raise InvalidInput(str(exc), field="coordsys") from None


def _bad_point(lon: float, lat: float) -> InvalidInput:
    """Why the service refuses an input point, naming the field to fix (lat when lat is out of
    range or outside China's latitudes, else lon)."""
    min_lon, min_lat, max_lon, max_lat = SERVICE_EXTENT
    lat_bad = not (math.isfinite(lat) and min_lat <= lat <= max_lat)
    lon_bad = not (math.isfinite(lon) and min_lon <= lon <= max_lon)
    field = "lat" if lat_bad and (not lon_bad or not -90 <= lat <= 90) else "lon"
    return InvalidInput(point_problem(lon, lat) or "point refused", field=field)


def to_point(lon: object, lat: object, coordsys: object) -> tuple[float, float]:
    """A wgs84 point from user input, or InvalidInput naming the field that is wrong."""
    return _wgs84_point(lon, lat, coordsys)[:2]


def _wgs84_point(lon: object, lat: object, coordsys: object) -> tuple[float, float, str]:
    """``to_point`` and the canonical name of the input's coordsys."""
    x, y = _number(lon, "lon"), _number(lat, "lat")
    system = _coordsys(coordsys)
    if point_problem(x, y):
        raise _bad_point(x, y)
    if system in NO_SHIFT:
        return x, y, system
    wlon, wlat = to_wgs84_array(np.array([x]), np.array([y]), system)  # as batches convert
    return float(wlon[0]), float(wlat[0]), system


# --- answers -----------------------------------------------------------------------------------


def point_json(lon: float, lat: float) -> dict[str, Any]:
    """A wgs84 point to 7 decimals (about 1 cm), rounded as the batches round (NumPy)."""
    return {"lon": _round7(lon), "lat": _round7(lat), "coordsys": "wgs84"}


def _round7(value: float) -> float:
    """``np.round(value, 7)`` for one float, bit for bit (scale, round half to even, unscale),
    without NumPy's per-call cost."""
    return round(value * 1e7) / 1e7


def point_match(coordsys: str) -> dict[str, Any]:
    return {"method": "point", "coordsys": coordsys, "score": 1.0, "level": "point",
            "fallback": False, "distance_m": 0.0}


@functools.cache
def _point_match_json(coordsys: str) -> bytes:
    return orjson.dumps(point_match(coordsys))


def household_json(index: CityIndex, hh_row: int, rule: int,
                   compact: bool = False) -> dict[str, Any] | None:
    if hh_row < 0:
        return None
    if compact:
        return {"code": index.codes[hh_row], "rule": RULES[rule]}
    return index.entry(hh_row) | {"rule": RULES[rule]}


_RULE_TAILS = [b',"rule":"%s"}' % name.encode() for name in RULES]


def _household_bytes(index: CityIndex, hh_row: int, rule: int, compact: bool) -> bytes:
    """``household_json`` encoded, from the entries the index encoded once."""
    if hh_row < 0:
        return b"null"
    if compact:
        return b'{"code":' + index.code_json[hh_row] + _RULE_TAILS[rule]
    return index.entry_json(hh_row)[:-1] + _RULE_TAILS[rule]


def result_json(index: CityIndex, row: int, hh_row: int, rule: int, point: dict[str, Any],
                match: dict[str, Any], compact: bool = False) -> dict[str, Any]:
    """One answer: the chain (root first), the household, the wgs84 point and the match."""
    return {
        "chain": index.chain_codes(row) if compact else index.chain(row),
        "household": household_json(index, hh_row, rule, compact),
        "point": point,
        "match": match,
    }


#: ``result_json`` as bytes: chain, household, lon, lat (rounded, encoded) and match.
_RESULT = b'{"chain":%b,"household":%b,"point":{"lon":%b,"lat":%b,"coordsys":"wgs84"},"match":%b}'


def not_covered(index: CityIndex, lon: float, lat: float, near_row: int, near_dist: float,
                radius_m: float) -> NotCovered:
    """The problem for a point in no micro-grid, naming the nearest within ``radius_m``."""
    nearest = None
    if near_row >= 0:
        nearest = index.entry(near_row) | {"distance_m": round(near_dist, 1), "fallback": True}
    detail = f"no micro-grid covers ({lon:.6f}, {lat:.6f}) wgs84; " + (
        f"the nearest is {nearest['code']} {nearest['name']} at {nearest['distance_m']} m"
        if nearest else f"none within {radius_m:g} m")
    return NotCovered(detail, nearest=nearest, point=point_json(lon, lat))


def problem_json(error: ServiceError) -> dict[str, Any]:
    """A problem document (without ``instance``) for one failed batch item."""
    return {"type": f"/problems/{error.slug}", "title": error.title, "status": error.status,
            "detail": error.detail, **error.extra}


@dataclass(frozen=True)
class PointAnswer:
    """A located point: its micro-grid row, household row and rule number (-1, -1 for none),
    the wgs84 point used and the input's coordsys."""

    index: CityIndex
    row: int
    household: int
    rule: int
    lon: float
    lat: float
    coordsys: str

    def as_dict(self) -> dict[str, Any]:
        return result_json(self.index, self.row, self.household, self.rule,
                           point_json(self.lon, self.lat), point_match(self.coordsys))

    def to_json(self) -> bytes:
        """``as_dict()`` as JSON, assembled from the parts the index encoded once."""
        return _RESULT % (self.index.chain_json(self.row),
                          _household_bytes(self.index, self.household, self.rule, False),
                          orjson.dumps(_round7(self.lon)), orjson.dumps(_round7(self.lat)),
                          _point_match_json(self.coordsys))


def locate_point(svc: Services, lon: object, lat: object, coordsys: object) -> PointAnswer:
    """Locate a point given in any supported coordsys; ``NotCovered`` when no micro-grid
    covers it."""
    wlon, wlat, system = _wgs84_point(lon, lat, coordsys)
    index = svc.locator.current()
    row = index.polygons.locate(wlon, wlat)
    if row < 0:
        radius = svc.settings.nearest_radius_m
        near = index.polygons.nearest(wlon, wlat, radius)
        raise not_covered(index, wlon, wlat, *(near or (-1, math.inf)), radius)
    hh, rule = household_one(index, row, wlon, wlat, svc.settings.household_radius_m)
    return PointAnswer(index, row, hh, rule, wlon, wlat, system)


def lookup_point(svc: Services, lon: object, lat: object, coordsys: object) -> dict[str, Any]:
    """The chain for a point given in any supported coordsys."""
    return locate_point(svc, lon, lat, coordsys).as_dict()


# --- addresses ---------------------------------------------------------------------------------


def resolve_address(svc: Services, address: str,
                    district: str | None = None) -> tuple[MatchResult, int]:
    """Match an address; the building row it names, or -1 when not confidently matched."""
    if not isinstance(address, str) or not address.strip():
        raise InvalidInput("address is empty: give the home address as text", field="address")
    result = svc.geocoder.current().match(address, district=district)
    if result.status != "matched" or result.entry is None:
        return result, -1
    index = svc.locator.current()
    code = result.entry.unit_code
    row = index.row_of_code.get(code, -1) if code else -1
    if row < 0 or index.levels[row] != index.hierarchy.micro_grid.level:
        row = index.polygons.locate(result.entry.lon, result.entry.lat)
    return result, row


@dataclass(frozen=True)
class _AddressAnswer:
    row: int
    household: int
    rule: int
    lon: float  # the gazetteer entry's wgs84 point
    lat: float
    match: dict[str, Any]


def _locate_address(svc: Services, index: CityIndex, address: str,
                    district: str | None) -> _AddressAnswer:
    """Where an address is; ``AddressNotResolved`` when it names no building."""
    result, row = resolve_address(svc, address, district)
    if row < 0:
        matched = result.status == "matched" and result.entry is not None
        reason = "the address's point lies in no micro-grid" if matched else result.reason
        candidates = [c.as_dict() for c in result.candidates]
        if matched and not candidates:
            candidates = [{"score": round(result.score, 3), "level": result.level,
                           **result.entry.as_dict()}]  # type: ignore[union-attr]
        raise AddressNotResolved(
            f"the address is not resolved to one building ({result.status}): {reason}",
            match_status=result.status, candidates=candidates,
        )
    entry = result.entry
    assert entry is not None
    hh, rule = households_many(index, np.array([row]), np.array([entry.lon]),
                               np.array([entry.lat]), svc.settings.household_radius_m,
                               [result.parts.unit])
    match = {"method": "address", "coordsys": "wgs84", "score": round(result.score, 3),
             "level": result.level, "address": entry.address, "fallback": False,
             "distance_m": 0.0}
    return _AddressAnswer(row, int(hh[0]), int(rule[0]), entry.lon, entry.lat, match)


def lookup_address(svc: Services, address: str, district: str | None = None) -> dict[str, Any]:
    """The chain for a typed home address (``district`` fills in a missing district)."""
    index = svc.locator.current()
    a = _locate_address(svc, index, address, district)
    return result_json(index, a.row, a.household, a.rule, point_json(a.lon, a.lat), a.match)


# --- batches -----------------------------------------------------------------------------------


@dataclass
class BatchAnswer:
    """The answers of a batch, one JSON fragment per item in order (each {"index", "result"}
    or {"index", "problem"}), and in compact form the ``units`` the chains name (encoded)."""

    fragments: list[bytes]
    units: bytes | None = None

    def to_json(self) -> bytes:
        """The response body: {"results": [...]} (plus "units" when compact), UTF-8 JSON."""
        units = b"" if self.units is None else b',"units":' + self.units
        return b'{"results":[' + b",".join(self.fragments) + b"]" + units + b"}"

    def as_dict(self) -> dict[str, Any]:
        return orjson.loads(self.to_json())


@dataclass
class BatchColumns:
    """The answers of a batch as parallel arrays, one position per located item in item order
    (``columns``); the items that failed (``problems``: {"index", "problem"} fragments); every
    unit the located items name, as a table (``units``: {"fields", "rows"}, the fields code,
    parent, level, name, leader and phone); and the ``levels`` of the hierarchy."""

    count: int  # items in the batch
    columns: dict[str, Any]  # name -> list or NumPy array
    problems: list[bytes]
    units: bytes  # encoded
    levels: list[dict[str, Any]]

    def to_json(self) -> bytes:
        """The response body: {"format": "columns", "count", "columns", "levels", "units",
        "problems"}, the arrays serialised by orjson straight from NumPy."""
        head = orjson.dumps({"format": "columns", "count": self.count, "columns": self.columns,
                             "levels": self.levels}, option=orjson.OPT_SERIALIZE_NUMPY)
        return (head[:-1] + b',"units":' + self.units + b',"problems":['
                + b",".join(self.problems) + b"]}")

    def as_dict(self) -> dict[str, Any]:
        return orjson.loads(self.to_json())


@dataclass
class _Points:
    """The point items of a batch that passed the per-item checks, as given."""

    at: np.ndarray  # item index
    lon: np.ndarray
    lat: np.ndarray
    coordsys: np.ndarray  # canonical names


@dataclass
class _Located:
    """The items of a batch that were located, in parallel arrays in item order."""

    at: np.ndarray  # item index
    rows: np.ndarray  # micro-grid row
    hh: np.ndarray  # household row, -1 for none
    rule: np.ndarray  # household rule number, -1 for none
    lon: np.ndarray  # the wgs84 point used
    lat: np.ndarray
    coordsys: list[str]  # the input's coordsys
    matches: dict[int, dict[str, Any]]  # position -> match, for the address items only


def lookup_batch(svc: Services, items: Any, *, compact: bool = False) -> BatchAnswer:
    """Many lookups: each item is {"lon", "lat", "coordsys"} or {"address"} (with an optional
    "district"). One answer per item, in order, either {"index", "result"} (as
    ``lookup_point`` or ``lookup_address`` answer) or {"index", "problem"} (a problem
    document); one bad item never fails the batch. With ``compact``, chains are lists of
    codes, households {"code", "rule"}, and ``units`` maps every code named to its entry."""
    index, found, problems = _locate_batch(svc, items)
    fragments = [b""] * len(items)
    for n, fragment in problems.items():
        fragments[n] = fragment
    template = b'{"index":%d,"result":' + _RESULT + b"}"
    for k, (n, row, h, r, x, y, system) in enumerate(zip(
            found.at.tolist(), found.rows.tolist(), found.hh.tolist(), found.rule.tolist(),
            _numbers(np.round(found.lon, 7)), _numbers(np.round(found.lat, 7)),
            found.coordsys, strict=True)):
        address = found.matches.get(k)
        match = _point_match_json(system) if address is None else orjson.dumps(address)
        fragments[n] = template % (n, index.chain_json(row, compact),
                                   _household_bytes(index, h, r, compact), x, y, match)
    units = _units_json(index, found) if compact else None
    return BatchAnswer(fragments, units)


def lookup_batch_columns(svc: Services, items: Any) -> BatchColumns:
    """``lookup_batch`` answered as columns, one position per located item in item order:
    ``index`` (the item's), ``unit`` (its micro-grid's code), ``household`` (code or null),
    ``rule``, ``lon``/``lat`` (the wgs84 point used), ``coordsys`` (the input's), ``method``,
    ``score``, ``level``, ``address`` (null for points), ``fallback`` and ``distance_m`` (as in
    ``match``). The failed items are in ``problems``. ``units`` describes every unit named
    (micro-grids, households and their ancestors), each once, as rows of ``code``, ``parent``
    (follow it up for the chain), ``level`` (described in ``levels``), ``name``, ``leader`` and
    ``phone``; the entries of the full form are rebuilt from them."""
    index, found, problems = _locate_batch(svc, items)
    n = len(found.at)
    households = np.where(found.hh >= 0, index.codes[np.maximum(found.hh, 0)], None)
    rules = np.array([*RULES, None], dtype=object)  # rule -1 -> None
    method, level, address = ["point"] * n, ["point"] * n, [None] * n
    score, fallback, distance = np.ones(n), np.zeros(n, dtype=bool), np.zeros(n)
    for k, match in found.matches.items():
        method[k], level[k], address[k] = match["method"], match["level"], match["address"]
        score[k], fallback[k], distance[k] = match["score"], match["fallback"], match[
            "distance_m"]
    columns = {
        "index": found.at, "unit": index.codes[found.rows].tolist(),
        "household": households.tolist(), "rule": rules[found.rule].tolist(),
        "lon": np.round(found.lon, 7), "lat": np.round(found.lat, 7),
        "coordsys": found.coordsys, "method": method, "score": score, "level": level,
        "address": address, "fallback": fallback, "distance_m": distance,
    }
    return BatchColumns(len(items), columns, [problems[k] for k in sorted(problems)],
                        index.units_table_json(_unit_rows(index, found)),
                        index.hierarchy.as_list())


def _locate_batch(svc: Services, items: Any
                  ) -> tuple[CityIndex, _Located, dict[int, bytes]]:
    """Check and locate a batch's items: the index used, the located items, and a problem
    fragment ({"index", "problem"}) per item that failed."""
    if not isinstance(items, list):
        raise InvalidInput("the body must be a JSON list of points or addresses", field="body")
    limit = svc.settings.batch_limit
    if len(items) > limit:
        raise InvalidInput(f"at most {limit} items per batch (GRIDSVC_BATCH_LIMIT), got "
                           f"{len(items)}; split the batch", field="body")
    index = svc.locator.current()
    problems: dict[int, bytes] = {}
    points = _only_points(items)
    addresses: list[tuple[int, _AddressAnswer]] = []
    if points is None:
        points, addresses = _sort_items(svc, index, items, problems)
    found = _locate_points(svc, index, points, problems)
    if addresses:
        found = _with_addresses(found, addresses)
    return index, found, problems


_NUMBER = {float, int}


def _only_points(items: list[Any]) -> _Points | None:
    """The fast path: every item a well-formed point with a known coordsys; else None."""
    try:
        lon = [item["lon"] for item in items]
        lat = [item["lat"] for item in items]
        raw = [item["coordsys"] for item in items]
    except (KeyError, TypeError):
        return None
    names = set(raw)
    if not (set(map(type, lon)) <= _NUMBER and set(map(type, lat)) <= _NUMBER
            and set(map(type, raw)) <= {str}) or any("address" in item for item in items):
        return None
    try:
        systems = {name: parse_coordsys(name) for name in names}
    except CoordSysError:
        return None
    system = (np.full(len(items), systems[raw[0]]) if len(names) == 1
              else np.array([systems[r] for r in raw]))
    return _Points(np.arange(len(items)), np.array(lon, dtype=np.float64),
                   np.array(lat, dtype=np.float64), system)


def _sort_items(svc: Services, index: CityIndex, items: list[Any], problems: dict[int, bytes]
                ) -> tuple[_Points, list[tuple[int, _AddressAnswer]]]:
    """Check items one by one: locate addresses, record bad items in ``problems``, and
    return the good points."""
    at: list[int] = []
    lon: list[float] = []
    lat: list[float] = []
    names: list[str] = []
    addresses: list[tuple[int, _AddressAnswer]] = []
    for n, item in enumerate(items):
        try:
            if not isinstance(item, dict):
                raise InvalidInput("each item must be an object: {lon, lat, coordsys} or "
                                   "{address}", field="item")
            if "address" in item:
                if "lon" in item or "lat" in item:
                    raise InvalidInput("give either lon, lat and coordsys or an address, "
                                       "not both", field="address")
                addresses.append((n, _locate_address(svc, index, item["address"],
                                                     item.get("district"))))
                continue
            x, y = _number(item.get("lon"), "lon"), _number(item.get("lat"), "lat")
            names.append(_coordsys(item.get("coordsys")))
            at.append(n)
            lon.append(x)
            lat.append(y)
        except ServiceError as exc:
            problems[n] = _problem_fragment(n, exc)
    points = _Points(np.array(at, dtype=np.int64), np.array(lon, dtype=np.float64),
                     np.array(lat, dtype=np.float64), np.array(names, dtype=str))
    return points, addresses


def _problem_fragment(n: int, error: ServiceError) -> bytes:
    return orjson.dumps({"index": n, "problem": problem_json(error)})


def _numbers(values: np.ndarray) -> list[bytes]:
    """Each float as JSON, in one call (a float's JSON holds no comma)."""
    if len(values) == 0:
        return []
    return orjson.dumps(values, option=orjson.OPT_SERIALIZE_NUMPY)[1:-1].split(b",")


def _locate_points(svc: Services, index: CityIndex, points: _Points,
                   problems: dict[int, bytes]) -> _Located:
    """Convert, check, locate and find the households of the point items, all at once;
    refused and not-covered points go to ``problems``."""
    bad = invalid_mask(points.lon, points.lat)
    for k in np.flatnonzero(bad).tolist():
        n = int(points.at[k])
        problems[n] = _problem_fragment(n, _bad_point(float(points.lon[k]),
                                                      float(points.lat[k])))
    good = ~bad
    at, lon, lat, system = points.at[good], points.lon[good], points.lat[good], \
        points.coordsys[good]
    for name in dict.fromkeys(system.tolist()):
        same = system == name
        lon[same], lat[same] = to_wgs84_array(lon[same], lat[same], name)
    rows = index.polygons.locate_many(lon, lat)
    covered = rows >= 0
    if not covered.all():
        radius = svc.settings.nearest_radius_m
        near_rows, near_dist = index.polygons.nearest_many(lon[~covered], lat[~covered],
                                                           radius)
        for n, x, y, r, d in zip(at[~covered].tolist(), lon[~covered].tolist(),
                                 lat[~covered].tolist(), near_rows.tolist(),
                                 near_dist.tolist(), strict=True):
            problems[n] = _problem_fragment(n, not_covered(index, x, y, r, d, radius))
        at, rows, lon, lat, system = (at[covered], rows[covered], lon[covered], lat[covered],
                                      system[covered])
    hh, rule = households_many(index, rows, lon, lat, svc.settings.household_radius_m)
    return _Located(at, rows, hh, rule.astype(np.int64), lon, lat, system.tolist(), {})


def _with_addresses(found: _Located, addresses: list[tuple[int, _AddressAnswer]]) -> _Located:
    """``found`` and the located addresses merged, in item order."""
    at = np.concatenate([found.at, [n for n, _ in addresses]]).astype(np.int64)
    order = np.argsort(at, kind="stable")

    def merged(values: np.ndarray, extra: list[Any], dtype: Any) -> np.ndarray:
        return np.concatenate([values, np.array(extra, dtype=dtype)])[order]

    answers = [a for _, a in addresses]
    coordsys = np.array(found.coordsys + [a.match["coordsys"] for a in answers], dtype=object)
    position = np.empty(len(order), dtype=np.int64)
    position[order] = np.arange(len(order))
    first = len(found.at)
    return _Located(
        at[order], merged(found.rows, [a.row for a in answers], np.int64),
        merged(found.hh, [a.household for a in answers], np.int64),
        merged(found.rule, [a.rule for a in answers], np.int64),
        merged(found.lon, [a.lon for a in answers], np.float64),
        merged(found.lat, [a.lat for a in answers], np.float64),
        coordsys[order].tolist(),
        {int(position[first + k]): a.match for k, a in enumerate(answers)},
    )


def _unit_rows(index: CityIndex, found: _Located) -> np.ndarray:
    """The rows of every unit in the chains of the located micro-grids and households."""
    chains = index.chains.chain_matrix(np.concatenate([found.rows, found.hh[found.hh >= 0]]))
    named = np.zeros(len(index.codes), dtype=bool)
    named[chains[chains >= 0]] = True
    return np.flatnonzero(named)


def _units_json(index: CityIndex, found: _Located) -> bytes:
    """{code: entry} for every unit in the chains of the located micro-grids and households,
    encoded."""
    code_json = index.code_json
    rows = _unit_rows(index, found).tolist()
    return b"{" + b",".join([code_json[r] + b":" + index.entry_json(r) for r in rows]) + b"}"


def unit_by_code(index: CityIndex, code: str) -> int:
    row = index.row_of_code.get(code, -1)
    if row < 0:
        raise NotFound(f"no unit with code {code!r}", code=code)
    return row

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

Batches (``lookup_batch``) take the point items together: grouped by coordsys, converted,
located and given their households with array operations, and answered from the chain entries
the ``CityIndex`` caches per micro-grid. Addresses go one by one. With ``compact`` each chain
is a list of codes and the units are described once in ``units``.
"""

from __future__ import annotations

import math
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
    x, y = _number(lon, "lon"), _number(lat, "lat")
    system = _coordsys(coordsys)
    if point_problem(x, y):
        raise _bad_point(x, y)
    wlon, wlat = to_wgs84_array(np.array([x]), np.array([y]), system)
    return float(wlon[0]), float(wlat[0])


# --- answers -----------------------------------------------------------------------------------


def point_json(lon: float, lat: float) -> dict[str, Any]:
    """A wgs84 point to 7 decimals (about 1 cm), rounded as the batches round (NumPy)."""
    return {"lon": float(np.round(lon, 7)), "lat": float(np.round(lat, 7)), "coordsys": "wgs84"}


def point_match(coordsys: str) -> dict[str, Any]:
    return {"method": "point", "coordsys": coordsys, "score": 1.0, "level": "point",
            "fallback": False, "distance_m": 0.0}


def household_json(index: CityIndex, hh_row: int, rule: int,
                   compact: bool = False) -> dict[str, Any] | None:
    if hh_row < 0:
        return None
    if compact:
        return {"code": index.codes[hh_row], "rule": RULES[rule]}
    return index.entry(hh_row) | {"rule": RULES[rule]}


def result_json(index: CityIndex, row: int, hh_row: int, rule: int, point: dict[str, Any],
                match: dict[str, Any], compact: bool = False) -> dict[str, Any]:
    """One answer: the chain (root first), the household, the wgs84 point and the match."""
    return {
        "chain": index.chain_codes(row) if compact else index.chain(row),
        "household": household_json(index, hh_row, rule, compact),
        "point": point,
        "match": match,
    }


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


def lookup_point(svc: Services, lon: object, lat: object, coordsys: object) -> dict[str, Any]:
    """The chain for a point given in any supported coordsys."""
    wlon, wlat = to_point(lon, lat, coordsys)
    index = svc.locator.current()
    x, y = np.array([wlon]), np.array([wlat])
    row = int(index.polygons.locate_many(x, y)[0])
    if row < 0:
        radius = svc.settings.nearest_radius_m
        near = index.polygons.nearest(wlon, wlat, radius)
        raise not_covered(index, wlon, wlat, *(near or (-1, math.inf)), radius)
    hh, rule = households_many(index, np.array([row]), x, y, svc.settings.household_radius_m)
    return result_json(index, row, int(hh[0]), int(rule[0]), point_json(wlon, wlat),
                       point_match(_coordsys(coordsys)))


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


def _address_answer(svc: Services, address: str, district: str | None,
                    compact: bool) -> tuple[dict[str, Any], list[int]]:
    """The answer for an address and the rows it names (the micro-grid, the household);
    ``AddressNotResolved`` when it names no building."""
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
    index = svc.locator.current()
    hh, rule = households_many(index, np.array([row]), np.array([entry.lon]),
                               np.array([entry.lat]), svc.settings.household_radius_m,
                               [result.parts.unit])
    match = {"method": "address", "coordsys": "wgs84", "score": round(result.score, 3),
             "level": result.level, "address": entry.address, "fallback": False,
             "distance_m": 0.0}
    answer = result_json(index, row, int(hh[0]), int(rule[0]),
                         point_json(entry.lon, entry.lat), match, compact)
    return answer, [row, int(hh[0])]


def lookup_address(svc: Services, address: str, district: str | None = None) -> dict[str, Any]:
    """The chain for a typed home address (``district`` fills in a missing district)."""
    return _address_answer(svc, address, district, compact=False)[0]


# --- batches -----------------------------------------------------------------------------------


@dataclass
class BatchAnswer:
    """The answers of a batch, one JSON fragment per item in order (each {"index", "result"}
    or {"index", "problem"}), and in compact form the ``units`` the chains name."""

    fragments: list[bytes]
    units: dict[str, dict[str, Any]] | None = None

    def to_json(self) -> bytes:
        """The response body: {"results": [...]} (plus "units" when compact), UTF-8 JSON."""
        units = b"" if self.units is None else b',"units":' + orjson.dumps(self.units)
        return b'{"results":[' + b",".join(self.fragments) + b"]" + units + b"}"

    def as_dict(self) -> dict[str, Any]:
        return orjson.loads(self.to_json())


@dataclass
class _Points:
    """The point items of a batch that passed the per-item checks, as given."""

    at: np.ndarray  # item index
    lon: np.ndarray
    lat: np.ndarray
    coordsys: np.ndarray  # canonical names


def lookup_batch(svc: Services, items: Any, *, compact: bool = False) -> BatchAnswer:
    """Many lookups: each item is {"lon", "lat", "coordsys"} or {"address"} (with an optional
    "district"). One answer per item, in order, either {"index", "result"} (as
    ``lookup_point`` or ``lookup_address`` answer) or {"index", "problem"} (a problem
    document); one bad item never fails the batch. With ``compact``, chains are lists of
    codes, households {"code", "rule"}, and ``units`` maps every code named to its entry."""
    if not isinstance(items, list):
        raise InvalidInput("the body must be a JSON list of points or addresses", field="body")
    limit = svc.settings.batch_limit
    if len(items) > limit:
        raise InvalidInput(f"at most {limit} items per batch (GRIDSVC_BATCH_LIMIT), got "
                           f"{len(items)}; split the batch", field="body")
    index = svc.locator.current()
    fragments: list[bytes] = [b""] * len(items)
    points = _only_points(items)
    rows: set[int] = set()
    if points is None:
        points, rows = _sort_items(svc, items, fragments, compact)
    rows |= _answer_points(svc, index, points, fragments, compact)
    return BatchAnswer(fragments, _units(index, rows) if compact else None)


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
    return _Points(np.arange(len(items)), np.array(lon, dtype=np.float64),
                   np.array(lat, dtype=np.float64), np.array([systems[r] for r in raw]))


def _sort_items(svc: Services, items: list[Any], fragments: list[bytes],
                compact: bool) -> tuple[_Points, set[int]]:
    """Check items one by one: answer addresses and bad items into ``fragments``, return the
    good points and the micro-grid rows the addresses used."""
    at: list[int] = []
    lon: list[float] = []
    lat: list[float] = []
    names: list[str] = []
    rows: set[int] = set()
    for n, item in enumerate(items):
        try:
            if not isinstance(item, dict):
                raise InvalidInput("each item must be an object: {lon, lat, coordsys} or "
                                   "{address}", field="item")
            if "address" in item:
                if "lon" in item or "lat" in item:
                    raise InvalidInput("give either lon, lat and coordsys or an address, "
                                       "not both", field="address")
                answer, named = _address_answer(svc, item["address"], item.get("district"),
                                                compact)
                fragments[n] = orjson.dumps({"index": n, "result": answer})
                rows.update(named)
                continue
            x, y = _number(item.get("lon"), "lon"), _number(item.get("lat"), "lat")
            names.append(_coordsys(item.get("coordsys")))
            at.append(n)
            lon.append(x)
            lat.append(y)
        except ServiceError as exc:
            fragments[n] = _problem_fragment(n, exc)
    points = _Points(np.array(at, dtype=np.int64), np.array(lon, dtype=np.float64),
                     np.array(lat, dtype=np.float64), np.array(names, dtype=str))
    return points, rows


def _problem_fragment(n: int, error: ServiceError) -> bytes:
    return orjson.dumps({"index": n, "problem": problem_json(error)})


def _numbers(values: np.ndarray) -> list[bytes]:
    """Each float as JSON, in one call (a float's JSON holds no comma)."""
    if len(values) == 0:
        return []
    return orjson.dumps(values, option=orjson.OPT_SERIALIZE_NUMPY)[1:-1].split(b",")


def _answer_points(svc: Services, index: CityIndex, points: _Points, fragments: list[bytes],
                   compact: bool) -> set[int]:
    """Answer the point items into ``fragments``, all at once; the micro-grid rows used."""
    if len(points.at) == 0:
        return set()
    bad = invalid_mask(points.lon, points.lat)
    for k in np.flatnonzero(bad).tolist():
        n = int(points.at[k])
        fragments[n] = _problem_fragment(n, _bad_point(float(points.lon[k]),
                                                       float(points.lat[k])))
    good = ~bad
    at, lon, lat, system = points.at[good], points.lon[good], points.lat[good], \
        points.coordsys[good]
    names = np.unique(system).tolist()
    for name in names:
        same = system == name
        lon[same], lat[same] = to_wgs84_array(lon[same], lat[same], name)
    rows = index.polygons.locate_many(lon, lat)
    covered = rows >= 0
    radius = svc.settings.nearest_radius_m
    near_rows, near_dist = index.polygons.nearest_many(lon[~covered], lat[~covered], radius)
    for n, x, y, r, d in zip(at[~covered].tolist(), lon[~covered].tolist(),
                             lat[~covered].tolist(), near_rows.tolist(), near_dist.tolist(),
                             strict=True):
        fragments[n] = _problem_fragment(n, not_covered(index, x, y, r, d, radius))

    at, rows, lon, lat, system = at[covered], rows[covered], lon[covered], lat[covered], \
        system[covered]
    hh, rule = households_many(index, rows, lon, lat, svc.settings.household_radius_m)
    chain = index.chain_codes if compact else index.chain
    chains: dict[int, bytes] = {}
    households: dict[tuple[int, int], bytes] = {}
    matches = {name: orjson.dumps(point_match(name)) for name in names}
    template = (b'{"index":%d,"result":{"chain":%b,"household":%b,'
                b'"point":{"lon":%b,"lat":%b,"coordsys":"wgs84"},"match":%b}}')
    for n, row, h, r, x, y, name in zip(
            at.tolist(), rows.tolist(), hh.tolist(), rule.tolist(),
            _numbers(np.round(lon, 7)), _numbers(np.round(lat, 7)), system.tolist(),
            strict=True):
        chain_json = chains.get(row)
        if chain_json is None:
            chain_json = chains[row] = orjson.dumps(chain(row))
        household = households.get((h, r))
        if household is None:
            household = households[(h, r)] = orjson.dumps(household_json(index, h, r, compact))
        fragments[n] = template % (n, chain_json, household, x, y, matches[name])
    return set(chains) | {h for h, _rule in households if h >= 0}


def _units(index: CityIndex, rows: set[int]) -> dict[str, dict[str, Any]]:
    """Every unit a compact batch names: the chains of its micro-grids and households."""
    units: dict[str, dict[str, Any]] = {}
    for row in sorted(rows):
        for entry in index.chain(row):
            units[entry["code"]] = entry
    return units


def unit_by_code(index: CityIndex, code: str) -> int:
    row = index.row_of_code.get(code, -1)
    if row < 0:
        raise NotFound(f"no unit with code {code!r}", code=code)
    return row

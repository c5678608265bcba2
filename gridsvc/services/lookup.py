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

Batches are in ``services/lookup_batch.py``.
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
from gridsvc.services.contacts import PUBLIC_SINGLE, Contacts, flag
from gridsvc.services.context import Services
from gridsvc.services.errors import InvalidInput, NotFound, ServiceError
from gridsvc.services.locator import CityIndex, Groups, Household
from gridsvc.spatial.coordsys import (
    SERVICE_EXTENT,
    CoordSysError,
    parse_coordsys,
    point_problem,
    to_wgs84_array,
)
from gridsvc.storage.models import GazetteerAddress
from gridsvc.validation.text_rules import limits_of, text_problem

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


def number_of(value: Any, name: str) -> float:
    if value is None or (isinstance(value, str) and not value.strip()):
        raise InvalidInput(f"{name} is required (a number)", field=name)
    if isinstance(value, bool):
        raise InvalidInput(f"{name} must be a number, got {value!r}", field=name)
    try:
        return float(value)
    except (TypeError, ValueError, OverflowError):  # OverflowError: an int beyond any float
        raise InvalidInput(f"{name} must be a number, got {value!r}", field=name) from None


def coordsys_of(value: Any) -> str:
    if value is not None and not isinstance(value, str):
        raise InvalidInput(f"coordsys must be text, got {value!r}", field="coordsys")
    try:
        return parse_coordsys(value)
    except CoordSysError as exc:
        raise InvalidInput(str(exc), field="coordsys") from None


def bad_point(lon: float, lat: float) -> InvalidInput:
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
    x, y = number_of(lon, "lon"), number_of(lat, "lat")
    system = coordsys_of(coordsys)
    if point_problem(x, y):
        raise bad_point(x, y)
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
def point_match_json(coordsys: str) -> bytes:
    return orjson.dumps(point_match(coordsys))


def entry_json(index: CityIndex, row: int, shown: bool | np.ndarray) -> dict[str, Any]:
    """The unit's public entry, its contact null unless ``shown`` (``services/contacts.py``)."""
    entry = index.entry(row)
    return entry if flag(shown, row) else entry | {"contact": None}


def household_json(index: CityIndex, hh_row: int, rule: int, compact: bool = False,
                   shown: bool | np.ndarray = False) -> dict[str, Any] | None:
    if hh_row < 0:
        return None
    if compact:
        return {"code": index.codes[hh_row], "rule": RULES[rule]}
    return entry_json(index, hh_row, shown) | {"rule": RULES[rule]}


RULE_TAILS = [b',"rule":"%s"}' % name.encode() for name in RULES]


def household_bytes(index: CityIndex, hh_row: int, rule: int, compact: bool,
                    shown: bool | np.ndarray = False) -> bytes:
    """``household_json`` encoded, from the entries the index encoded once."""
    if hh_row < 0:
        return b"null"
    if compact:
        return b'{"code":' + index.code_json[hh_row] + RULE_TAILS[rule]
    encoded = index.entry_json(hh_row) if flag(shown, hh_row) else index.bare_entry_json(hh_row)
    return encoded[:-1] + RULE_TAILS[rule]


def chain_bytes(index: CityIndex, row: int, compact: bool,
                shown: bool | np.ndarray = True) -> bytes:
    """The chain of a micro-grid as JSON (codes when ``compact``), each contact null unless
    ``shown``."""
    if compact:
        return index.chain_json(row, compact)
    return index.encoded.chain(index.chains.chain_rows(row), shown)


def result_json(index: CityIndex, row: int, hh_row: int, rule: int, point: dict[str, Any],
                match: dict[str, Any], compact: bool = False,
                contacts: Contacts = PUBLIC_SINGLE) -> dict[str, Any]:
    """One answer: the chain (root first), the household, the wgs84 point and the match;
    contacts as ``contacts`` allows."""
    units = contacts.units_shown(index)
    return {
        "chain": index.chain_codes(row) if compact else [
            entry_json(index, r, units) for r in reversed(index.chains.chain_rows(row))],
        "household": household_json(index, hh_row, rule, compact,
                                    contacts.households_shown(index)),
        "point": point,
        "match": match,
    }


#: ``result_json`` as bytes: chain, household, lon, lat (rounded, encoded) and match.
RESULT_JSON = (b'{"chain":%b,"household":%b,"point":{"lon":%b,"lat":%b,"coordsys":"wgs84"},'
               b'"match":%b}')


def not_covered(index: CityIndex, lon: float, lat: float, near_row: int, near_dist: float,
                radius_m: float, shown: bool | np.ndarray = True) -> NotCovered:
    """The problem for a point in no micro-grid, naming the nearest within ``radius_m``
    (its contact null unless ``shown``)."""
    nearest = None
    if near_row >= 0:
        nearest = entry_json(index, near_row, shown) | {"distance_m": round(near_dist, 1),
                                                         "fallback": True}
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
    contacts: Contacts = PUBLIC_SINGLE

    def as_dict(self) -> dict[str, Any]:
        return result_json(self.index, self.row, self.household, self.rule,
                           point_json(self.lon, self.lat), point_match(self.coordsys),
                           contacts=self.contacts)

    def to_json(self) -> bytes:
        """``as_dict()`` as JSON, assembled from the parts the index encoded once."""
        index, contacts = self.index, self.contacts
        return RESULT_JSON % (chain_bytes(index, self.row, False, contacts.units_shown(index)),
                          household_bytes(index, self.household, self.rule, False,
                                          contacts.households_shown(index)),
                          orjson.dumps(_round7(self.lon)), orjson.dumps(_round7(self.lat)),
                          point_match_json(self.coordsys))


def locate_point(svc: Services, lon: object, lat: object, coordsys: object,
                 contacts: Contacts = PUBLIC_SINGLE) -> PointAnswer:
    """Locate a point given in any supported coordsys; ``NotCovered`` when no micro-grid
    covers it. The answer shows the contacts ``contacts`` allows."""
    wlon, wlat, system = _wgs84_point(lon, lat, coordsys)
    index = svc.locator.current()
    row = index.polygons.locate(wlon, wlat)
    if row < 0:
        radius = svc.settings.nearest_radius_m
        near = index.polygons.nearest(wlon, wlat, radius)
        raise not_covered(index, wlon, wlat, *(near or (-1, math.inf)), radius,
                          contacts.units_shown(index))
    hh, rule = household_one(index, row, wlon, wlat, svc.settings.household_radius_m)
    return PointAnswer(index, row, hh, rule, wlon, wlat, system, contacts)


def lookup_point(svc: Services, lon: object, lat: object, coordsys: object,
                 contacts: Contacts = PUBLIC_SINGLE) -> dict[str, Any]:
    """The chain for a point given in any supported coordsys."""
    return locate_point(svc, lon, lat, coordsys, contacts).as_dict()


# --- addresses ---------------------------------------------------------------------------------


def resolve_address(svc: Services, address: str,
                    district: str | None = None) -> tuple[MatchResult, int]:
    """Match an address; the building row it names, or -1 when not confidently matched."""
    if not isinstance(address, str) or not address.strip():
        raise InvalidInput("address is empty: give the home address as text", field="address")
    if district is not None and not isinstance(district, str):  # a batch item's JSON
        raise InvalidInput(f"district must be text, got {district!r}", field="district")
    for field, text in (("address", address), ("district", district)):
        # a batch item's text is not checked on the way in (its body is read with orjson)
        reason = None if text is None else text_problem(
            text, limits_of(GazetteerAddress)[field])
        if reason is not None:
            raise InvalidInput(f"{field} {reason}", field=field)
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
class AddressAnswer:
    row: int
    household: int
    rule: int
    lon: float  # the gazetteer entry's wgs84 point
    lat: float
    match: dict[str, Any]


def locate_address(svc: Services, index: CityIndex, address: str,
                    district: str | None) -> AddressAnswer:
    """Where an address is; ``AddressNotResolved`` when it names no building."""
    result, row = resolve_address(svc, address, district)
    if row < 0:
        matched = result.status == "matched" and result.entry is not None
        reason = "the address's point lies in no micro-grid" if matched else result.reason
        candidates = [c.as_dict() for c in result.candidates]
        if matched and not candidates:
            candidates = [{"score": round(result.score, 3), "level": result.level,
                           # (the ignore below: a found result has an entry)
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
    return AddressAnswer(row, int(hh[0]), int(rule[0]), entry.lon, entry.lat, match)


def lookup_address(svc: Services, address: str, district: str | None = None,
                   contacts: Contacts = PUBLIC_SINGLE) -> dict[str, Any]:
    """The chain for a typed home address (``district`` fills in a missing district)."""
    index = svc.locator.current()
    a = locate_address(svc, index, address, district)
    return result_json(index, a.row, a.household, a.rule, point_json(a.lon, a.lat), a.match,
                       contacts=contacts)


# --- batches -----------------------------------------------------------------------------------


def unit_by_code(index: CityIndex, code: str) -> int:
    row = index.row_of_code.get(code, -1)
    if row < 0:
        raise NotFound(f"no unit with code {code!r}", code=code)
    return row

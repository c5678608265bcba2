""""Which grid do I report to": a point or an address to the whole chain of units.

A point (with its coordsys) is converted to wgs84, checked to be in China, and located in the
micro-grid index. Its chain is the micro-grid and its ancestors, one entry per level, each with
the unit's public contact (leader and phone, posted in the building per DOMAIN.md). The
responsible 党员中心户 follows the household rule (``household_for``).

A point in no micro-grid (a road, a park, between buildings) is *not covered*. A lookup then
fails with ``NotCovered`` naming the nearest micro-grid within ``nearest_radius_m`` and its
distance; it is never silently assigned. Bulk assignment (registration) may take that nearest
unit as a *fallback*, always flagged so staff confirm it.

An address is matched against the gazetteer; only a confident match to one building (status
"matched": at building level, or at door level when one building stands behind the door) is
located. Weaker or ambiguous matches come back with
their candidates and are never guessed.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np

from gridsvc.geocode.matcher import MatchResult
from gridsvc.services.context import Services
from gridsvc.services.errors import InvalidInput, NotFound, ServiceError
from gridsvc.services.locator import CityIndex, Household, covering_area
from gridsvc.spatial.coordsys import CoordSysError, point_problem, to_wgs84

EARTH_RADIUS_M = 6_371_008.8


class NotCovered(ServiceError):
    slug = "not-covered"
    title = "Point not covered by any micro-grid"
    status = 404


class AddressNotResolved(ServiceError):
    """The address did not match one building: unmatched, weak or ambiguous."""

    slug = "address-not-resolved"
    title = "Address not resolved to a building"
    status = 404


def metres(lon1: float, lat1: float, lon2: float, lat2: float) -> float:
    """Distance in metres, equirectangular: within 0.1% of geodesic at a city's scale."""
    k = math.cos(math.radians((lat1 + lat2) / 2))
    return EARTH_RADIUS_M * math.radians(math.hypot((lon2 - lon1) * k, lat2 - lat1))


@dataclass(frozen=True)
class Placement:
    """Where a wgs84 point falls: the micro-grid row, or the nearest as a flagged fallback."""

    row: int  # -1: nothing within the radius
    fallback: bool
    distance_m: float


def place(index: CityIndex, lon: float, lat: float, radius_m: float) -> Placement:
    row = index.polygons.locate(lon, lat)
    if row >= 0:
        return Placement(row, False, 0.0)
    near = index.polygons.nearest(lon, lat, radius_m)
    if near is None:
        return Placement(-1, True, math.inf)
    return Placement(int(near[0]), True, float(near[1]))


def place_many(index: CityIndex, lon: np.ndarray, lat: np.ndarray,
               radius_m: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Vectorised ``place``: rows, fallback flags and distances (0 when covered)."""
    rows = index.polygons.locate_many(lon, lat)
    fallback = rows < 0
    dist = np.zeros(len(rows))
    if fallback.any():
        near_rows, near_dist = index.polygons.nearest_many(lon[fallback], lat[fallback],
                                                           radius_m)
        rows[fallback] = near_rows
        dist[fallback] = np.where(near_rows >= 0, near_dist, np.inf)
    return rows, fallback, dist


def household_for(index: CityIndex, building: int, lon: float, lat: float,
                  unit_no: str | None, radius_m: float) -> tuple[Household, str] | None:
    """The 党员中心户 responsible for a home, and the rule that chose it:

    1. ``area``: a household of the same grid whose service area covers the home;
    2. ``unit``: a household of the same building that lists the home's 单元 in ``covers``;
    3. ``building``: else the nearest household in the same building;
    4. ``grid``: else the nearest household in the same grid within ``radius_m``;
    otherwise None, and the home counts as a coverage gap.
    """
    grid = int(index.parents[building]) if building >= 0 else -1
    in_grid = index.households_by_grid.get(grid, [])
    in_building = index.households_by_building.get(building, [])
    hh = covering_area(in_grid, lon, lat)
    if hh is not None:
        return hh, "area"
    if unit_no:
        for hh in in_building:
            if unit_no in hh.covers:
                return hh, "unit"
    if in_building:
        return min(in_building, key=lambda h: metres(lon, lat, h.lon, h.lat)), "building"
    if in_grid:
        best = min(in_grid, key=lambda h: metres(lon, lat, h.lon, h.lat))
        if metres(lon, lat, best.lon, best.lat) <= radius_m:
            return best, "grid"
    return None


def unit_entry(index: CityIndex, row: int) -> dict[str, Any]:
    lv = index.hierarchy.get(int(index.levels[row]))
    return {
        "level": lv.level,
        "level_key": lv.key,
        "level_name": lv.name,
        "code": index.codes[row],
        "name": index.names[row],
        "contact": {"name": index.leaders[row], "phone": index.phones[row]},
    }


def chain(index: CityIndex, row: int) -> list[dict[str, Any]]:
    """Root first: street, community, grid, building."""
    return [unit_entry(index, r) for r in reversed(index.chains.chain_rows(row))]


def to_point(lon: object, lat: object, coordsys: object) -> tuple[float, float]:
    """A wgs84 point from user input, or InvalidInput saying which field is wrong."""
    try:
        wlon, wlat = to_wgs84(float(lon), float(lat), coordsys)  # type: ignore[arg-type]
    except (TypeError, ValueError) as exc:
        field = "coordsys" if isinstance(exc, CoordSysError) and "coordsys" in str(exc) else "lon"
        detail = str(exc) if isinstance(exc, CoordSysError) else "lon and lat must be numbers"
        raise InvalidInput(detail, field=field) from exc
    reason = point_problem(wlon, wlat)
    if reason:
        raise InvalidInput(reason, field="lon")
    return wlon, wlat


def answer(index: CityIndex, placement: Placement, lon: float, lat: float,
           match: dict[str, Any], unit_no: str | None, svc: Services) -> dict[str, Any]:
    found = household_for(index, placement.row, lon, lat, unit_no,
                          svc.settings.household_radius_m)
    household = None
    if found is not None:
        household = unit_entry(index, found[0].row) | {"rule": found[1]}
    return {
        "chain": chain(index, placement.row),
        "household": household,
        "point": {"lon": round(lon, 7), "lat": round(lat, 7), "coordsys": "wgs84"},
        "match": match | {"fallback": placement.fallback,
                          "distance_m": round(placement.distance_m, 1)},
    }


def _not_covered(index: CityIndex, lon: float, lat: float, svc: Services) -> NotCovered:
    placement = place(index, lon, lat, svc.settings.nearest_radius_m)
    nearest = None
    if placement.row >= 0:
        nearest = unit_entry(index, placement.row) | {
            "distance_m": round(placement.distance_m, 1), "fallback": True}
    radius = svc.settings.nearest_radius_m
    detail = (f"no micro-grid covers ({lon:.6f}, {lat:.6f}) wgs84; " + (
        f"nearest is {nearest['code']} at {nearest['distance_m']} m" if nearest
        else f"none within {radius:g} m"))
    return NotCovered(detail, nearest=nearest,
                      point={"lon": round(lon, 7), "lat": round(lat, 7), "coordsys": "wgs84"})


def lookup_point(svc: Services, lon: object, lat: object, coordsys: object) -> dict[str, Any]:
    """The chain for a point given in any supported coordsys."""
    wlon, wlat = to_point(lon, lat, coordsys)
    index = svc.locator.current()
    row = index.polygons.locate(wlon, wlat)
    if row < 0:
        raise _not_covered(index, wlon, wlat, svc)
    match = {"method": "point", "coordsys": str(coordsys).lower(), "score": 1.0,
             "level": "point"}
    return answer(index, Placement(row, False, 0.0), wlon, wlat, match, None, svc)


def resolve_address(svc: Services, address: str) -> tuple[MatchResult, int]:
    """Match an address; the building row it names, or -1 when not confidently matched."""
    if not address or not address.strip():
        raise InvalidInput("address is empty", field="address")
    result = svc.geocoder.current().match(address)
    if result.status != "matched" or result.entry is None:
        return result, -1
    index = svc.locator.current()
    code = result.entry.unit_code
    row = index.row_of_code.get(code, -1) if code else -1
    if row < 0 or index.levels[row] != index.hierarchy.micro_grid.level:
        row = index.polygons.locate(result.entry.lon, result.entry.lat)
    return result, row


def lookup_address(svc: Services, address: str) -> dict[str, Any]:
    """The chain for a typed home address."""
    result, row = resolve_address(svc, address)
    if row < 0:
        reason = result.reason if result.status != "matched" else (
            "the address's point lies in no micro-grid")
        raise AddressNotResolved(
            f"address not resolved to one building ({result.status}): {reason}",
            status=result.status, candidates=[c.as_dict() for c in result.candidates],
        )
    entry = result.entry
    match = {"method": "address", "coordsys": "wgs84", "score": round(result.score, 3),
             "level": result.level, "address": entry.address}
    return answer(svc.locator.current(), Placement(row, False, 0.0), entry.lon, entry.lat,
                  match, result.parts.unit, svc)


def lookup_batch(svc: Services, items: list[Any]) -> list[dict[str, Any]]:
    """Many lookups: each item is {"lon", "lat", "coordsys"} or {"address"}. Each result is
    either {"index", "result"} or {"index", "problem"}; one bad item never fails the batch."""
    if not isinstance(items, list):
        raise InvalidInput("the body must be a JSON list of points or addresses", field="body")
    if len(items) > svc.settings.batch_limit:
        raise InvalidInput(f"at most {svc.settings.batch_limit} items per batch, "
                           f"got {len(items)}", field="body")
    out: list[dict[str, Any]] = []
    for n, item in enumerate(items):
        try:
            if not isinstance(item, dict):
                raise InvalidInput("each item must be an object", field="item")
            if "address" in item:
                out.append({"index": n, "result": lookup_address(svc, item["address"])})
            else:
                result = lookup_point(svc, item.get("lon"), item.get("lat"),
                                      item.get("coordsys"))
                out.append({"index": n, "result": result})
        except ServiceError as exc:
            out.append({"index": n, "problem": {"type": f"/problems/{exc.slug}",
                                                "status": exc.status, "detail": exc.detail,
                                                **exc.extra}})
    return out


def unit_by_code(index: CityIndex, code: str) -> int:
    row = index.row_of_code.get(code, -1)
    if row < 0:
        raise NotFound(f"no unit with code {code!r}", code=code)
    return row

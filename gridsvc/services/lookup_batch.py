"""Batch lookups: many points or addresses in one request (``POST /api/v1/lookup/batch``).

The point items are taken together: grouped by coordsys, converted, located and given their
households with array operations, and answered from the JSON the ``CityIndex`` encodes once
per unit and per micro-grid chain. Addresses go one by one. With ``compact`` each chain is a
list of codes and the units are described once in ``units``. ``lookup_batch_columns`` answers
the same content as parallel arrays (serialised by orjson straight from NumPy), the failed
items listed apart, and each unit once, with its parent's code, in a table of rows encoded once
per index: the fast form for big point batches. One bad item never fails the batch.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np
import orjson

from gridsvc.services.contacts import NONE, Contacts
from gridsvc.services.context import Services
from gridsvc.services.errors import InvalidInput, ServiceError
from gridsvc.services.locator import CityIndex, blank_parts
from gridsvc.services.lookup import (
    RULE_TAILS,
    RULES,
    AddressAnswer,
    bad_point,
    coordsys_of,
    households_many,
    locate_address,
    not_covered,
    number_of,
    point_match_json,
    problem_json,
)
from gridsvc.spatial.coordsys import CoordSysError, invalid_mask, parse_coordsys, to_wgs84_array

#: Items encoded per step of a batch answer (``BatchAnswer.chunks``): the memory an answer
#: holds beyond its arrays is about this many items' JSON (~1 KB each), whatever the batch.
CHUNK_ITEMS = 2048


@dataclass
class BatchAnswer:
    """The answers of a batch, one JSON fragment per item in order (each {"index", "result"}
    or {"index", "problem"}), and in compact form the ``units`` the chains name.

    The located items are kept as arrays and encoded only when the body is written, a chunk
    of ``CHUNK_ITEMS`` items at a time (``chunks``): each chunk's parts (the units' JSON the
    index encoded once, the numbers encoded together by orjson) are gathered with NumPy
    indexing and joined once, so an answer costs no Python loop per item, and a web response
    can stream the chunks (``web/lookup.py``) instead of holding the whole body: ~1 KB of JSON
    per point in the full form, 90 MB for 100,000 points."""

    index: CityIndex
    found: _Located
    problems: dict[int, bytes]
    count: int  # items in the batch
    compact: bool
    contacts: Contacts

    def chunks(self, size: int | None = None) -> Iterator[bytes]:
        """The response body in pieces: {"results": [...]} (plus "units" when compact), the
        results ``size`` items (``CHUNK_ITEMS``) a piece."""
        size = size or CHUNK_ITEMS
        yield b'{"results":['
        for start in range(0, self.count, size):
            yield _results_chunk(self, start, min(start + size, self.count))
        yield b"]"
        if self.compact:
            yield b',"units":' + _units_json(self.index, self.found, self.contacts.shown(
                self.index))
        yield b"}"

    def to_json(self) -> bytes:
        """The response body, UTF-8 JSON, in one piece."""
        return b"".join(self.chunks())

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


def lookup_batch(svc: Services, items: Any, *, compact: bool = False,
                 contacts: Contacts = NONE) -> BatchAnswer:
    """Many lookups: each item is {"lon", "lat", "coordsys"} or {"address"} (with an optional
    "district"). One answer per item, in order, either {"index", "result"} (as
    ``lookup_point`` or ``lookup_address`` answer) or {"index", "problem"} (a problem
    document); one bad item never fails the batch. With ``compact``, chains are lists of
    codes, households {"code", "rule"}, and ``units`` maps every code named to its entry.
    Contacts as ``contacts`` allows (none by default: the public's batch)."""
    index, found, problems = _locate_batch(svc, items, contacts)
    return BatchAnswer(index, found, problems, len(items), compact, contacts)


def lookup_batch_columns(svc: Services, items: Any, contacts: Contacts = NONE
                         ) -> BatchColumns:
    """``lookup_batch`` answered as columns, one position per located item in item order:
    ``index`` (the item's), ``unit`` (its micro-grid's code), ``household`` (code or null),
    ``rule``, ``lon``/``lat`` (the wgs84 point used), ``coordsys`` (the input's), ``method``,
    ``score``, ``level``, ``address`` (null for points), ``fallback`` and ``distance_m`` (as in
    ``match``). The failed items are in ``problems``. ``units`` describes every unit named
    (micro-grids, households and their ancestors), each once, as rows of ``code``, ``parent``
    (follow it up for the chain), ``level`` (described in ``levels``), ``name``, ``leader`` and
    ``phone`` (null where ``contacts`` does not allow them); the entries of the full form
    are rebuilt from them."""
    index, found, problems = _locate_batch(svc, items, contacts)
    n = len(found.at)
    code = index.encoded.code
    households = code[found.hh]  # row -1: b""
    households[found.hh < 0] = b"null"
    rules = np.array([orjson.dumps(r) for r in RULES] + [b"null"], dtype=object)  # -1: null
    method, level, address = ["point"] * n, ["point"] * n, [None] * n
    score, fallback, distance = np.ones(n), np.zeros(n, dtype=bool), np.zeros(n)
    for k, match in found.matches.items():
        method[k], level[k], address[k] = match["method"], match["level"], match["address"]
        score[k], fallback[k], distance[k] = match["score"], match["fallback"], match[
            "distance_m"]
    columns = {
        "index": found.at, "unit": _list_of(code[found.rows]),
        "household": _list_of(households), "rule": _list_of(rules[found.rule]),
        "lon": np.round(found.lon, 7), "lat": np.round(found.lat, 7),
        "coordsys": found.coordsys, "method": method, "score": score, "level": level,
        "address": address, "fallback": fallback, "distance_m": distance,
    }
    return BatchColumns(len(items), columns, [problems[k] for k in sorted(problems)],
                        index.units_table_json(_unit_rows(index, found),
                                               contacts.shown(index)),
                        index.hierarchy.as_list())


def _list_of(encoded: np.ndarray) -> orjson.Fragment:
    """A JSON list of values encoded already (an object array of bytes), for orjson."""
    return orjson.Fragment(b"[" + b",".join(encoded.tolist()) + b"]")


def _locate_batch(svc: Services, items: Any, contacts: Contacts
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
    addresses: list[tuple[int, AddressAnswer]] = []
    if points is None:
        points, addresses = _sort_items(svc, index, items, problems)
    found = _locate_points(svc, index, points, problems, contacts)
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
    if not (set(map(type, lon)) <= _NUMBER and set(map(type, lat)) <= _NUMBER
            and set(map(type, raw)) <= {str}) or any("address" in item for item in items):
        return None
    names = set(raw)  # after the type check: a coordsys {} or [] is unhashable
    try:
        systems = {name: parse_coordsys(name) for name in names}
    except CoordSysError:
        return None
    system = (np.full(len(items), systems[raw[0]]) if len(names) == 1
              else np.array([systems[r] for r in raw]))
    return _Points(np.arange(len(items)), np.array(lon, dtype=np.float64),
                   np.array(lat, dtype=np.float64), system)


def _sort_items(svc: Services, index: CityIndex, items: list[Any], problems: dict[int, bytes]
                ) -> tuple[_Points, list[tuple[int, AddressAnswer]]]:
    """Check items one by one: locate addresses, record bad items in ``problems``, and
    return the good points."""
    at: list[int] = []
    lon: list[float] = []
    lat: list[float] = []
    names: list[str] = []
    addresses: list[tuple[int, AddressAnswer]] = []
    for n, item in enumerate(items):
        try:
            if not isinstance(item, dict):
                raise InvalidInput("each item must be an object: {lon, lat, coordsys} or "
                                   "{address}", field="item")
            if "address" in item:
                if "lon" in item or "lat" in item:
                    raise InvalidInput("give either lon, lat and coordsys or an address, "
                                       "not both", field="address")
                addresses.append((n, locate_address(svc, index, item["address"],
                                                     item.get("district"))))
                continue
            x, y = number_of(item.get("lon"), "lon"), number_of(item.get("lat"), "lat")
            names.append(coordsys_of(item.get("coordsys")))
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
                   problems: dict[int, bytes], contacts: Contacts) -> _Located:
    """Convert, check, locate and find the households of the point items, all at once;
    refused and not-covered points go to ``problems``."""
    bad = invalid_mask(points.lon, points.lat)
    for k in np.flatnonzero(bad).tolist():
        n = int(points.at[k])
        problems[n] = _problem_fragment(n, bad_point(float(points.lon[k]),
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
            problems[n] = _problem_fragment(n, not_covered(index, x, y, r, d, radius,
                                                           contacts.units_shown(index)))
        at, rows, lon, lat, system = (at[covered], rows[covered], lon[covered], lat[covered],
                                      system[covered])
    hh, rule = households_many(index, rows, lon, lat, svc.settings.household_radius_m)
    return _Located(at, rows, hh, rule.astype(np.int64), lon, lat, system.tolist(), {})


def _with_addresses(found: _Located, addresses: list[tuple[int, AddressAnswer]]) -> _Located:
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


def _units_json(index: CityIndex, found: _Located, shown: bool | np.ndarray) -> bytes:
    """{code: entry} for every unit in the chains of the located micro-grids and households,
    encoded, each contact null unless ``shown``."""
    rows = _unit_rows(index, found)
    if len(rows) == 0:
        return b"{}"
    encoded = index.encoded
    sep = np.full(len(rows), b",", dtype=object)
    sep[0] = b"{"
    parts = [sep, encoded.code[rows], np.full(len(rows), b":", dtype=object),
             *encoded.entry_parts(rows, shown)]
    return b"".join(np.stack(parts, axis=1).ravel().tolist()) + b"}"


_RULE_PARTS = np.array([*RULE_TAILS, b""], dtype=object)  # rule -1 (no household): nothing


def _results_chunk(answer: BatchAnswer, start: int, stop: int) -> bytes:
    """The fragments of items ``start`` to ``stop`` (a comma before each but the batch's
    first), gathered as columns of parts and joined once."""
    found, index, encoded = answer.found, answer.index, answer.index.encoded
    lo, hi = np.searchsorted(found.at, [start, stop])
    at, rows, hh, rule = found.at[lo:hi], found.rows[lo:hi], found.hh[lo:hi], found.rule[lo:hi]
    n = len(at)

    def same(part: bytes) -> np.ndarray:
        return np.full(n, part, dtype=object)

    def encoded_numbers(values: np.ndarray) -> np.ndarray:
        out = np.empty(n, dtype=object)
        out[:] = _numbers(values)
        return out

    match = np.empty(n, dtype=object)
    systems = np.array(found.coordsys[lo:hi], dtype=object)
    for name in dict.fromkeys(found.coordsys[lo:hi]):
        match[systems == name] = point_match_json(name)
    for k, address in found.matches.items():
        if lo <= k < hi:
            match[k - lo] = orjson.dumps(address)
    no_household = hh < 0
    if answer.compact:
        household = [blank_parts(~no_household, b'{"code":'), encoded.code[hh]]
    else:
        household = encoded.entry_parts(hh, answer.contacts.households_shown(index),
                                        close=False)
    columns = [
        same(b',{"index":'), encoded_numbers(at), same(b',"result":{"chain":'),
        *encoded.chain_parts(rows, answer.contacts.units_shown(index), answer.compact),
        same(b',"household":'), blank_parts(no_household, b"null"), *household,
        _RULE_PARTS[rule], same(b',"point":{"lon":'), encoded_numbers(np.round(
            found.lon[lo:hi], 7)), same(b',"lat":'), encoded_numbers(np.round(
                found.lat[lo:hi], 7)), same(b',"coordsys":"wgs84"},"match":'), match,
        same(b"}}"),
    ]
    matrix = np.full((stop - start, len(columns)), b"", dtype=object)
    matrix[at - start] = np.stack(columns, axis=1)
    for n_item, fragment in answer.problems.items():
        if start <= n_item < stop:
            matrix[n_item - start, :2] = (b",", fragment)
    if start == 0 and stop > 0:  # the batch's first item: no comma before it
        matrix[0, 0] = matrix[0, 0][1:]
    return b"".join(matrix.ravel().tolist())

"""The in-memory picture of the tree that lookups and bulk assignment run on.

``CityIndex`` is built from the stored boundaries: the micro-grid polygons go into a
``PolygonIndex`` (gridsvc/spatial/index.py); every unit's attributes and parent sit in arrays,
so a unit's chain of ancestors is a few array reads (``ParentArrays``). Household (党员中心户)
points are kept in arrays sorted by building and by grid, and their service areas in an
STRtree, so the household rule runs on a whole batch at once (``services/lookup.py``).
A unit's public entry (level, code, name, leader and phone) is built once per index on first
use and shared by every answer; its JSON is kept in parts (``EncodedUnits``: level head,
code, name, contact), from which single answers (``entry_json``, ``chain_json``) and whole
batches (gathered with NumPy indexing, joined once) are assembled as bytes;
``CityIndex.warm`` encodes them all at once (a web server's master does, before forking).
Small encodings are copied out of orjson's buffers (``_dumps``).
``Services.locator`` keeps the current index per process and rebuilds it when the stored
boundaries change (``services/live.py``).
"""

from __future__ import annotations

import contextlib
import functools
import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import orjson
import shapely
from sqlalchemy import LargeBinary, Text, func, select, type_coerce
from sqlalchemy.orm import Session

from gridsvc.hierarchy import Hierarchy
from gridsvc.spatial.index import ParentArrays, PolygonIndex
from gridsvc.storage import units as q
from gridsvc.storage.engine import Database
from gridsvc.storage.models import Unit


@dataclass(slots=True)  # ~150,000 of them in a city: no __dict__ each
class Household:
    row: int
    lon: float
    lat: float
    area: Any  # shapely polygon or None
    covers: frozenset[str]  # 单元 numbers the household covers inside its building


class NoPolygons:
    """Stands in for ``PolygonIndex`` while no micro-grid is stored: nothing is covered."""

    def locate(self, lon: float, lat: float) -> int:
        return -1

    def locate_many(self, lon: np.ndarray, lat: np.ndarray) -> np.ndarray:
        return np.full(len(lon), -1, dtype=np.int64)

    def nearest(self, lon: float, lat: float, max_distance_m: float) -> None:
        return None

    def nearest_many(self, lon: np.ndarray, lat: np.ndarray,
                     max_distance_m: float) -> tuple[np.ndarray, np.ndarray]:
        return np.full(len(lon), -1, dtype=np.int64), np.full(len(lon), np.nan)

    def __len__(self) -> int:
        return 0

    def memory_bytes(self) -> int:
        return 0


@dataclass(frozen=True)
class Groups:
    """Household points sorted by a group row (their building, or their grid).

    The households of group ``g`` are ``hh[start[g]:end[g]]``, in row (= id) order.
    """

    hh: np.ndarray  # household rows
    lon: np.ndarray
    lat: np.ndarray
    start: np.ndarray  # group row -> first position (length: number of unit rows)
    end: np.ndarray

    @classmethod
    def of(cls, hh: np.ndarray, lon: np.ndarray, lat: np.ndarray, group: np.ndarray,
           n_rows: int) -> Groups:
        order = np.lexsort((hh, group))
        sorted_group = group[order]
        rows = np.arange(n_rows)
        start = np.searchsorted(sorted_group, rows, side="left")
        end = np.searchsorted(sorted_group, rows, side="right")
        return cls(hh[order], lon[order], lat[order], start, end)

    def size(self, groups: np.ndarray) -> np.ndarray:
        """Households in each of ``groups`` (0 for -1)."""
        safe = np.maximum(groups, 0)
        return np.where(groups >= 0, self.end[safe] - self.start[safe], 0)


@dataclass
class CityIndex:
    revision: int
    hierarchy: Hierarchy
    codes: np.ndarray  # row -> unit code (object array)
    ids: np.ndarray  # row -> database id
    levels: np.ndarray
    parents: np.ndarray  # row -> parent row, -1 for a root
    chains: ParentArrays
    names: list[str]
    leaders: list[str | None]
    phones: list[str | None]
    polygons: PolygonIndex | NoPolygons  # micro-grid polygons; its ids are rows
    row_of_code: dict[str, int]
    households_by_building: dict[int, list[Household]] = field(default_factory=dict)
    households_by_grid: dict[int, list[Household]] = field(default_factory=dict)
    households: dict[int, Household] = field(default_factory=dict)  # by row
    by_building: Groups | None = None  # household points grouped by building row
    by_grid: Groups | None = None  # ... and by grid row
    areas: shapely.STRtree | None = None  # service areas (wgs84)
    area_rows: np.ndarray = field(default_factory=lambda: np.empty(0, dtype=np.int64))
    _entries: dict[int, dict[str, Any]] = field(default_factory=dict, repr=False)
    _chains: dict[int, list[dict[str, Any]]] = field(default_factory=dict, repr=False)
    _chain_codes: dict[int, list[str]] = field(default_factory=dict, repr=False)
    _subtrees: dict[str, np.ndarray] = field(default_factory=dict, repr=False)

    def memory_bytes(self) -> int:
        arrays = (self.codes, self.ids, self.levels, self.parents)
        return self.polygons.memory_bytes() + sum(a.nbytes for a in arrays)

    def entry(self, row: int) -> dict[str, Any]:
        """The unit's public entry: level, code, name and the contact posted in the building
        (leader and phone). Shared: callers must not change it."""
        found = self._entries.get(row)
        if found is None:
            found = self._entries[row] = self._make_entry(row)
        return found

    def _make_entry(self, row: int) -> dict[str, Any]:
        lv = self.hierarchy.get(int(self.levels[row]))
        return {
            "level": lv.level,
            "level_key": lv.key,
            "level_name": lv.name,
            "code": self.codes[row],
            "name": self.names[row],
            "contact": {"name": self.leaders[row], "phone": self.phones[row]},
        }

    def chain(self, row: int) -> list[dict[str, Any]]:
        """The entries of the unit and its ancestors, root first. Shared: do not change it."""
        found = self._chains.get(row)
        if found is None:
            found = [self.entry(r) for r in reversed(self.chains.chain_rows(row))]
            self._chains[row] = found
        return found

    def chain_codes(self, row: int) -> list[str]:
        """The codes of ``chain(row)``, root first. Shared: do not change it."""
        found = self._chain_codes.get(row)
        if found is None:
            found = [e["code"] for e in self.chain(row)]
            self._chain_codes[row] = found
        return found

    # --- encoded once per index: the static parts of every answer, as JSON -------------------

    @functools.cached_property
    def encoded(self) -> EncodedUnits:
        """Every unit's JSON in parts, encoded once per index (``EncodedUnits``)."""
        return EncodedUnits.of(self)

    def entry_json(self, row: int) -> bytes:
        """``entry(row)`` as JSON."""
        return self.encoded.entry(row, True)

    def bare_entry_json(self, row: int) -> bytes:
        """``entry(row)`` as JSON with ``"contact": null``: for answers whose caller may not
        have this unit's contact (``services/lookup.py``, ``Contacts``)."""
        return self.encoded.entry(row, False)

    def bare_chain_json(self, row: int) -> bytes:
        """``chain(row)`` as JSON with every ``contact`` null."""
        return self.encoded.chain(self.chains.chain_rows(row), False)

    def in_subtree(self, path: str) -> np.ndarray:
        """A boolean per row: is the unit at or below the unit whose path is ``path``
        (``/S01/C01/``; ``/`` is everything)? Cached per path."""
        found = self._subtrees.get(path)
        if found is None:
            codes = [c for c in path.split("/") if c]
            if not codes:
                found = np.ones(len(self.codes), dtype=bool)
            else:
                root = self.row_of_code.get(codes[-1], -1)
                chains = self.chains.chain_matrix(np.arange(len(self.codes)))
                found = ((chains == root).any(axis=1) if root >= 0
                         else np.zeros(len(self.codes), dtype=bool))
            if len(self._subtrees) > 64:
                self._subtrees.clear()
            self._subtrees[path] = found
        return found

    @property
    def code_json(self) -> np.ndarray:
        """Every row's code as JSON (a string), an object array (row -1: empty)."""
        return self.encoded.code

    def chain_json(self, row: int, compact: bool = False) -> bytes:
        """``chain(row)`` as JSON, or ``chain_codes(row)`` when ``compact``."""
        rows = self.chains.chain_rows(row)
        if compact:
            code = self.encoded.code
            return b"[" + b",".join([code[r] for r in reversed(rows)]) + b"]"
        return self.encoded.chain(rows, True)

    #: The fields of a unit in ``units_table_json``, in order.
    UNIT_FIELDS = ("code", "parent", "level", "name", "leader", "phone")

    def units_table_json(self, rows: np.ndarray, shown: bool | np.ndarray = True) -> bytes:
        """The units at ``rows`` as JSON: {"fields": UNIT_FIELDS, "rows": [[...], ...]}, with
        leader and phone only where ``shown`` (one flag, or one per row of the index)."""
        return (b'{"fields":' + orjson.dumps(self.UNIT_FIELDS) + b',"rows":['
                + self.encoded.table_rows(np.asarray(rows, dtype=np.int64), shown) + b"]}")

    def warm(self) -> None:
        """Do now what the first lookups would do: load the compiled lookup kernels and encode
        every unit's parts (``encoded``; about a second for a city). A web server's master
        process does this before it forks its workers, which then share it."""
        self.polygons.locate(0.0, 0.0)
        self.polygons.locate_many(np.zeros(1), np.zeros(1))
        _ = self.encoded


def _object_array(values: list[Any]) -> np.ndarray:
    """``values`` and one empty ``b""`` after them (so that row -1 reads as nothing), as a
    NumPy object array: answers gather their parts from it with array indexing."""
    out = np.empty(len(values) + 1, dtype=object)
    out[:-1] = values
    out[-1] = b""
    return out


def blank_parts(present: np.ndarray, part: bytes) -> np.ndarray:
    """``part`` where ``present``, else ``b""``, as an object array."""
    out = np.full(present.shape, b"", dtype=object)
    out[present] = part
    return out


_CLOSE, _NULL = b"}", b"null"


@dataclass
class EncodedUnits:
    """Every unit's answer entry as JSON, in parts kept once per index and shared by every
    answer (a web server's master encodes them before forking; ``CityIndex.warm``).

    An entry ``{"level", "level_key", "level_name", "code", "name", "contact"}`` is three
    parts: ``open`` (everything up to ``"contact":``), ``contact`` (``null`` where the caller
    may not see it) and ``}``. A micro-grid's chain is its parent's chain (``prefix``: the
    entries from the root down to the parent, encoded once per parent and contact rule, a few
    thousand for a city) and its own entry. Answers gather the parts of many items at once
    with NumPy indexing into object arrays (``entry_parts``, ``chain_parts``) and join them
    with one ``bytes.join``: no per-item Python loop. The arrays hold one extra ``b""`` at the
    end, so row -1 (no household) contributes nothing. Parts instead of whole entries and
    chains per micro-grid: a city's answers need ~50 MB less, in the master and each worker.
    """

    open: np.ndarray  # row -> the entry up to and with "contact":
    contact: np.ndarray  # row -> b'{"name":..,"phone":..}'
    code: np.ndarray  # row -> b'"CODE"'
    table_open: np.ndarray  # row -> b'["CODE","PARENT",LEVEL,"NAME",' (the units table)
    leader_phone: np.ndarray  # row -> b'"leader","phone"]'
    chains: ParentArrays
    parents: np.ndarray  # row -> parent row, -1 for a root
    _prefix: dict[tuple[bool | None, int], bytes] = field(default_factory=dict, repr=False)

    @classmethod
    def of(cls, index: CityIndex) -> EncodedUnits:
        heads = {lv.level: orjson.dumps({"level": lv.level, "level_key": lv.key,
                                         "level_name": lv.name})[:-1]
                 for lv in index.hierarchy.levels}
        levels = index.levels.tolist()
        codes = index.codes.tolist()
        code = [_dumps(c) for c in codes]
        dumps = orjson.dumps
        parents = index.parents.tolist()
        return cls(
            open=_object_array([
                heads[lv] + b',"code":' + code[r] + b',"name":' + dumps(name) + b',"contact":'
                for r, (lv, name) in enumerate(zip(levels, index.names, strict=True))]),
            code=_object_array(code),
            contact=_object_array([_dumps({"name": a, "phone": b}) for a, b in zip(
                index.leaders, index.phones, strict=True)]),
            table_open=_object_array([
                _dumps([codes[r], codes[p] if p >= 0 else None, lv, name])[:-1] + b","
                for r, (p, lv, name) in enumerate(zip(parents, levels, index.names,
                                                      strict=True))]),
            leader_phone=_object_array([dumps([a, b])[1:] for a, b in zip(
                index.leaders, index.phones, strict=True)]),
            chains=index.chains, parents=index.parents,
        )

    def entry(self, row: int, shown: bool) -> bytes:
        """One entry, its contact null unless ``shown``."""
        return self.open[row] + (self.contact[row] if shown else _NULL) + _CLOSE

    def chain(self, rows: list[int], shown: bool | np.ndarray) -> bytes:
        """The entries of ``rows`` (leaf first, as ``ParentArrays.chain_rows``) root first,
        as a JSON list."""
        return b"[" + b",".join([self.entry(r, shown if isinstance(shown, bool)
                                            else bool(shown[r])) for r in reversed(rows)]) + b"]"

    def contacts(self, rows: np.ndarray, shown: bool | np.ndarray) -> np.ndarray:
        """The contact part of each of ``rows``: ``null`` where not ``shown`` (one flag or
        one per index row); nothing for row -1."""
        found = self.contact[rows]
        if shown is True:
            return found
        hidden = np.ones(len(rows), dtype=bool) if shown is False else ~np.asarray(shown)[rows]
        found[hidden & (rows >= 0)] = _NULL
        return found

    def entry_parts(self, rows: np.ndarray, shown: bool | np.ndarray, *,
                    close: bool = True) -> list[np.ndarray]:
        """The entries of ``rows`` as columns of parts (each an object array over ``rows``);
        rows of -1 give only empty parts. Without ``close`` the entry is left open after its
        contact (a household's ``rule`` follows)."""
        parts = [self.open[rows], self.contacts(rows, shown)]
        if close:
            parts.append(blank_parts(rows >= 0, _CLOSE))
        return parts

    def prefix(self, row: int, shown: bool | np.ndarray | None) -> bytes:
        """``[`` and the chain of ``row`` (root first) followed by a comma, ready for a child's
        entry; codes only when ``shown`` is None (a compact chain). Cached per row for one
        flag or codes; with a flag per row (a scoped caller) built each time."""
        if not (shown is None or isinstance(shown, bool)):
            return self._make_prefix(row, shown)
        key = (shown, row)
        found = self._prefix.get(key)
        if found is None:
            found = self._prefix[key] = self._make_prefix(row, shown)
        return found

    def _make_prefix(self, row: int, shown: bool | np.ndarray | None) -> bytes:
        if row < 0:
            return b"["
        rows = self.chains.chain_rows(row)
        if shown is None:
            return b"[" + b",".join([self.code[r] for r in reversed(rows)]) + b","
        return self.chain(rows, shown)[:-1] + b","

    def chain_parts(self, rows: np.ndarray, shown: bool | np.ndarray, compact: bool
                    ) -> list[np.ndarray]:
        """The chains of the micro-grids ``rows`` (all >= 0) as columns of parts, root first,
        brackets included: the parent's ``prefix`` (one per distinct parent), then the row's
        entry (or code when ``compact``)."""
        parents = self.parents[rows]
        distinct, at = np.unique(parents, return_inverse=True)
        flags = None if compact else shown
        prefixes = np.empty(len(distinct), dtype=object)
        prefixes[:] = [self.prefix(p, flags) for p in distinct.tolist()]
        if compact:
            return [prefixes[at], self.code[rows], np.full(len(rows), b"]", dtype=object)]
        return [prefixes[at], *self.entry_parts(rows, shown, close=False),
                np.full(len(rows), b"}]", dtype=object)]

    def table_rows(self, rows: np.ndarray, shown: bool | np.ndarray) -> bytes:
        """The units table's rows (``CityIndex.units_table_json``) for ``rows``, joined by
        commas, without the list's brackets."""
        if len(rows) == 0:
            return b""
        lp = self.leader_phone[rows]
        if shown is not True:
            hidden = (np.ones(len(rows), dtype=bool) if shown is False
                      else ~np.asarray(shown)[rows])
            lp[hidden] = b"null,null]"
        parts = [b","] * (3 * len(rows))  # comma, the row's head, leader and phone
        parts[0] = b""
        parts[1::3] = self.table_open[rows].tolist()
        parts[2::3] = lp.tolist()
        return b"".join(parts)


def _dumps(value: Any) -> bytes:
    """``orjson.dumps`` copied into an object of its own size, for caches: orjson's result
    holds about 4 KB of memory however short it is (1 GB for a city's unit codes)."""
    return bytes(memoryview(orjson.dumps(value)))


def build_city_index(db: Database, hierarchy: Hierarchy) -> CityIndex:
    """Read the stored tree and build the index (about a second for a city)."""
    with db.session() as session:
        return city_index_in(session, hierarchy)


def _wkb(column: Any) -> Any:
    """A geometry column as plain WKB bytes, skipping ORM and GeoAlchemy2 result processing."""
    return func.ST_AsBinary(column, type_=LargeBinary)


def city_index_in(session: Session, hierarchy: Hierarchy) -> CityIndex:
    """The index of the tree as this session sees it (e.g. with an import not yet committed).

    Reads plain columns, not ORM objects: a city has ~80,000 polygons and ~150,000 households.
    """
    micro = hierarchy.micro_grid.level
    household_level = hierarchy.household.level if hierarchy.household else -1
    rev = q.revision(session, q.BOUNDARIES)
    conn = session.connection()  # Core rows: no ORM entity loading
    rows = conn.execute(
        select(Unit.id, Unit.code, Unit.level, Unit.parent_id, Unit.name,
               Unit.leader_name, Unit.leader_phone).order_by(Unit.id)
    ).all()
    micro_ids, micro_wkb = _columns(conn.execute(
        select(Unit.id, _wkb(Unit.geom)).where(Unit.level == micro).order_by(Unit.id)
    ).all(), 2)
    hh_rows = conn.execute(
        select(Unit.id, func.ST_X(Unit.geom), func.ST_Y(Unit.geom), _wkb(Unit.service_area),
               type_coerce(Unit.properties, Text))
        .where(Unit.level == household_level).order_by(Unit.id)
    ).all()
    ids = np.array([r.id for r in rows], dtype=np.int64)
    row_of_id = {int(i): n for n, i in enumerate(ids)}
    parents = np.array(
        [row_of_id.get(r.parent_id, -1) if r.parent_id else -1 for r in rows], dtype=np.int64
    )
    codes = np.array([r.code for r in rows], dtype=object)
    areas = shapely.from_wkb([r[3] for r in hh_rows]) if hh_rows else []
    households = [
        Household(row_of_id[r[0]], r[1], r[2], area, _covers(r[4]))
        for r, area in zip(hh_rows, areas, strict=True)
    ]
    by_building: dict[int, list[Household]] = {}
    by_grid: dict[int, list[Household]] = {}
    for hh in households:
        building = int(parents[hh.row])
        by_building.setdefault(building, []).append(hh)
        if building >= 0 and parents[building] >= 0:
            by_grid.setdefault(int(parents[building]), []).append(hh)
    polygons: PolygonIndex | NoPolygons = NoPolygons()
    if micro_ids:
        polygons = PolygonIndex.build(
            shapely.from_wkb(micro_wkb),
            np.array([row_of_id[i] for i in micro_ids], dtype=np.int64),
        )
    index = CityIndex(
        revision=rev, hierarchy=hierarchy, codes=codes, ids=ids,
        levels=np.array([r.level for r in rows], dtype=np.int64), parents=parents,
        chains=ParentArrays(parents),
        names=[r.name for r in rows], leaders=[r.leader_name for r in rows],
        phones=[r.leader_phone for r in rows], polygons=polygons,
        row_of_code={c: n for n, c in enumerate(codes)},
        households_by_building=by_building, households_by_grid=by_grid,
    )
    index.households = {h.row: h for h in households}
    _add_household_arrays(index, households)
    return index


def _columns(rows: Sequence[Any], n: int) -> tuple[list[Any], ...]:
    return tuple([r[k] for r in rows] for k in range(n))


def _covers(properties: str | dict[str, Any] | None) -> frozenset[str]:
    """The 单元 numbers in a household's ``covers`` property (properties as stored JSON text):
    a list, JSON text of one, or text "1,2" / "1，2"."""
    if isinstance(properties, str):
        return _covers_in_text(properties) if "covers" in properties else frozenset()
    covers = (properties or {}).get("covers") or []
    if isinstance(covers, str) and covers.strip().startswith("["):
        with contextlib.suppress(ValueError):
            covers = json.loads(covers)
    if isinstance(covers, str):
        covers = covers.replace("，", ",").split(",")
    elif not isinstance(covers, list):
        covers = [covers]
    return frozenset(str(c).strip() for c in covers if str(c).strip())


@functools.lru_cache(maxsize=4096)
def _covers_in_text(properties: str) -> frozenset[str]:
    """Households share few distinct property texts: parse each once."""
    return _covers(json.loads(properties))


def _add_household_arrays(index: CityIndex, households: list[Household]) -> None:
    n_rows = len(index.codes)
    hh = np.array([h.row for h in households], dtype=np.int64)
    lon = np.array([h.lon for h in households], dtype=np.float64)
    lat = np.array([h.lat for h in households], dtype=np.float64)
    building = index.parents[hh] if len(hh) else np.empty(0, dtype=np.int64)
    grid = np.where(building >= 0, index.parents[np.maximum(building, 0)], -1)
    index.by_building = Groups.of(hh, lon, lat, building, n_rows)
    index.by_grid = Groups.of(hh, lon, lat, grid, n_rows)
    with_area = [h for h in households if h.area is not None and not h.area.is_empty]
    if with_area:
        index.areas = shapely.STRtree([h.area for h in with_area])
        index.area_rows = np.array([h.row for h in with_area], dtype=np.int64)

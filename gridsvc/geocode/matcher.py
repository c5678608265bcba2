"""Match a typed address against an in-memory gazetteer of standard addresses with points.

Exact keys first ((road, door number), (compound, building)), then fuzzy names for road and
compound names the gazetteer does not know. The building number is never fuzzy. A result is
``matched`` only at building or door level and only when no other place scores close to it;
otherwise it is ``ambiguous``, ``weak`` or ``unmatched`` with candidates and no entry.
The rules and thresholds are documented in RULES.md.
"""

from __future__ import annotations

import math
from collections import Counter, defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field, replace
from typing import Any, Literal

from rapidfuzz.distance import Indel

from gridsvc.geocode.normalize import normalize
from gridsvc.geocode.parse import AddressParts, KnownPlaces, name_stem, parse, place_stem

Status = Literal["matched", "ambiguous", "weak", "unmatched"]
Level = Literal["building", "door", "compound", "road"]

MATCH_MIN_SCORE = 0.65  # a building- or door-level candidate at or above this is "matched"
WEAK_MIN_SCORE = 0.5  # below this the best candidate is not even weak: "unmatched"
FUZZY_MIN_SIMILARITY = 0.6  # a road or compound name this similar counts as the same name
STEM_SIMILARITY = 0.8  # names whose stems are equal (阳光 / 阳光小区 / 阳光花园)
AMBIGUITY_MARGIN = 0.1  # another place scoring within this of the best makes it ambiguous
DOOR_MISMATCH_FACTOR = 0.5  # road evidence when both give a door number and they differ
PLACE_MISMATCH_FACTOR = 0.6  # per district / city / street given on both sides that differs
CANDIDATE_LIMIT = 5
FUZZY_SHORTLIST = 30  # names sharing the most characters that get a similarity computed
COMMON_CHAR_SHARE = 0.05  # a character in more names than this share is not used to find names
# Names that differ only in these characters are different places (人民东路/人民西路, 一期/二期).
DISTINCT_CHARS = frozenset("东西南北中一二三四五六七八九十0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ")

_LEVEL_RANK = {"building": 0, "door": 1, "compound": 2, "road": 3}


def _parse_entry(address: str, district: str | None, places: KnownPlaces | None) -> AddressParts:
    parts = parse(address, places)
    return replace(parts, district=normalize(district)) if district else parts


@dataclass
class GazetteerEntry:
    """A standard address with its point (wgs84) and, if known, its building micro-grid."""

    address: str
    lon: float  # wgs84
    lat: float  # wgs84
    unit_code: str | None = None
    district: str | None = None  # overrides the district written in the address
    parts: AddressParts = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        if not isinstance(self.address, str) or not self.address.strip():
            raise ValueError(f"gazetteer entry {self.address!r}: the address is empty")
        for name, value, limit in (("lon", self.lon, 180.0), ("lat", self.lat, 90.0)):
            if not isinstance(value, int | float) or not math.isfinite(value) or abs(value) > limit:
                raise ValueError(
                    f"gazetteer entry {self.address!r}: {name} {value!r} is not a wgs84 {name}"
                )
        self.parts = _parse_entry(self.address, self.district, None)

    def as_dict(self) -> dict[str, Any]:
        return {"address": self.address, "lon": self.lon, "lat": self.lat, "coordsys": "wgs84",
                "unit_code": self.unit_code, "district": self.parts.district}


@dataclass(frozen=True)
class Candidate:
    entry: GazetteerEntry
    score: float
    level: Level

    def as_dict(self) -> dict[str, Any]:
        return {"score": round(self.score, 3), "level": self.level, **self.entry.as_dict()}


@dataclass(frozen=True)
class MatchResult:
    """``entry`` is set only when ``status`` is "matched"; ``level`` is None when unmatched."""

    status: Status
    level: Level | None
    score: float
    entry: GazetteerEntry | None
    candidates: list[Candidate]
    parts: AddressParts
    reason: str

    def as_dict(self) -> dict[str, Any]:
        return {
            "status": self.status, "level": self.level, "score": round(self.score, 3),
            "entry": self.entry.as_dict() if self.entry else None,
            "candidates": [c.as_dict() for c in self.candidates],
            "parts": self.parts.as_dict(), "reason": self.reason,
        }


def name_similarity(a: str, b: str) -> float:
    """0..1 similarity of two road or compound names (Indel ratio, see RULES.md)."""
    if a == b:
        return 1.0
    similarity = Indel.normalized_similarity(a, b)
    stem_a = name_stem(a)
    if stem_a == name_stem(b) and len(stem_a) >= 2:
        similarity = max(similarity, STEM_SIMILARITY)
    if similarity >= FUZZY_MIN_SIMILARITY:
        changed = "".join(a[op.src_start:op.src_end] + b[op.dest_start:op.dest_end]
                          for op in Indel.opcodes(a, b) if op.tag != "equal")
        if set(changed) <= DISTINCT_CHARS:
            return 0.0
    return similarity


class _NameIndex:
    """Character index over road or compound names, to find similar names without a scan."""

    def __init__(self, names: Iterable[str]) -> None:
        self._names = sorted(set(names))
        self._postings: dict[str, list[int]] = defaultdict(list)
        for i, name in enumerate(self._names):
            for ch in set(name):
                self._postings[ch].append(i)
        self._common = max(50, int(COMMON_CHAR_SHARE * len(self._names)))
        self._cache: dict[str, list[tuple[str, float]]] = {}

    def similar(self, name: str) -> list[tuple[str, float]]:
        """Known names at least FUZZY_MIN_SIMILARITY similar to ``name``, best first."""
        if name in self._cache:
            return self._cache[name]
        shared: Counter[int] = Counter()
        postings = sorted((self._postings.get(ch, []) for ch in set(name)), key=len)
        for rank, ids in enumerate(postings):  # the two rarest characters count in any case
            if rank < 2 or len(ids) <= self._common:
                shared.update(ids)
        scored = []
        for i, _ in shared.most_common(FUZZY_SHORTLIST):
            similarity = name_similarity(name, self._names[i])
            if similarity >= FUZZY_MIN_SIMILARITY:
                scored.append((self._names[i], similarity))
        scored.sort(key=lambda pair: (-pair[1], pair[0]))
        if len(self._cache) > 100_000:
            self._cache.clear()
        self._cache[name] = scored
        return scored


def _differ(a: str | None, b: str | None, stem: bool = False) -> bool:
    if not a or not b:
        return False
    return (place_stem(a) != place_stem(b)) if stem else a != b


def _same_place(a: AddressParts, b: AddressParts, ignore_building: bool) -> bool:
    """Two entries name the same place (the same building unless ``ignore_building``)."""
    if _differ(a.district, b.district, stem=True):
        return False
    if not ignore_building and a.building != b.building:
        return False
    if any(_differ(x, y) for x, y in ((a.road, b.road), (a.door_number, b.door_number),
                                      (a.compound, b.compound))):
        return False
    same_door = bool(a.road and a.door_number and a.road == b.road
                     and a.door_number == b.door_number)
    return same_door or bool(a.compound and a.compound == b.compound)


def _same_target(a: Candidate, b: Candidate, ignore_building: bool) -> bool:
    if a.entry.unit_code and a.entry.unit_code == b.entry.unit_code:
        return True
    return _same_place(a.entry.parts, b.entry.parts, ignore_building)


class Gazetteer:
    """Standard addresses indexed for matching; build once, then call ``match`` many times."""

    def __init__(self, entries: Iterable[GazetteerEntry]) -> None:
        self.entries = list(entries)
        cities = {e.parts.city for e in self.entries if e.parts.city}
        districts = {e.parts.district for e in self.entries if e.parts.district}
        self.places = KnownPlaces.from_names(cities, districts)
        stems = self.places.cities | self.places.districts
        for e in self.entries:  # addresses written with 南通/崇川 without 市/区
            first = e.parts.street or e.parts.community or e.parts.road or e.parts.compound or ""
            if any(first[:n] in stems for n in range(2, min(len(first), 8) + 1)):
                e.parts = _parse_entry(e.address, e.district, self.places)
        self._by_door: dict[tuple[str, str], list[int]] = defaultdict(list)
        self._by_road: dict[str, list[int]] = defaultdict(list)
        self._by_compound: dict[str, list[int]] = defaultdict(list)
        self._by_compound_building: dict[tuple[str, str], list[int]] = defaultdict(list)
        for i, e in enumerate(self.entries):
            p = e.parts
            if p.road:
                self._by_road[p.road].append(i)
                if p.door_number:
                    self._by_door[(p.road, p.door_number)].append(i)
            if p.compound:
                self._by_compound[p.compound].append(i)
                if p.building:
                    self._by_compound_building[(p.compound, p.building)].append(i)
        self._roads = _NameIndex(self._by_road)
        self._compounds = _NameIndex(self._by_compound)
        self._similarity_cache: dict[tuple[str, str], float] = {}

    def __len__(self) -> int:
        return len(self.entries)

    def match(self, text: str, district: str | None = None) -> MatchResult:
        """Match one typed address; ``district`` adds a district the text may lack."""
        q = parse(text, self.places)
        if district:
            q = replace(q, district=normalize(district))
        if not (q.road or q.compound):
            return MatchResult("unmatched", None, 0.0, None, [], q,
                               "no road or compound recognised in the address")
        candidates, other_buildings = self._evaluate(q, self._collect(q, fuzzy=False))
        names_unknown = (q.road and q.road not in self._by_road) or (
            q.compound and q.compound not in self._by_compound)
        if names_unknown and not any(c.level in ("building", "door")
                                     and c.score >= MATCH_MIN_SCORE for c in candidates):
            candidates, other_buildings = self._evaluate(q, self._collect(q, fuzzy=True))
        return self._decide(q, candidates, other_buildings)

    # -- candidates ---------------------------------------------------------------------------

    def _names(self, name: str | None, known: dict[str, Any], index: _NameIndex,
               fuzzy: bool) -> list[str]:
        """The name itself if the gazetteer knows it, else (when fuzzy) similar known names."""
        if not name:
            return []
        if name in known:
            return [name]
        return [similar for similar, _ in index.similar(name)] if fuzzy else []

    def _collect(self, q: AddressParts, fuzzy: bool) -> set[int]:
        ids: set[int] = set()
        roads = self._names(q.road, self._by_road, self._roads, fuzzy)
        if q.door_number:
            for road in roads:
                ids.update(self._by_door.get((road, q.door_number), ()))
        for compound in self._names(q.compound, self._by_compound, self._compounds, fuzzy):
            exact = self._by_compound_building.get((compound, q.building or ""), ())
            ids.update(exact or self._by_compound[compound])
        if not ids:  # only the road is left: a road-level (weak) match at best
            for road in roads:
                ids.update(self._by_road[road])
        return ids

    def _similarity(self, a: str, b: str) -> float:
        key = (a, b)
        if key not in self._similarity_cache:
            if len(self._similarity_cache) > 200_000:
                self._similarity_cache.clear()
            self._similarity_cache[key] = name_similarity(a, b)
        return self._similarity_cache[key]

    def _score(self, q: AddressParts, p: AddressParts,
               building: str | None) -> tuple[float, Level] | None:
        """Score and level of one entry's parts ``p`` for the query ``q`` with ``building``
        (None when scoring the place only); None when nothing matches."""
        components: list[float] = []
        road_sim = compound_sim = 0.0
        door_ok = False
        if q.road and p.road:
            road_sim = self._similarity(q.road, p.road)
            if q.door_number and p.door_number and q.door_number != p.door_number:
                components.append(road_sim * DOOR_MISMATCH_FACTOR)
            else:
                components.append(road_sim)
                door_ok = bool(q.door_number and p.door_number)
        if q.compound and p.compound:
            compound_sim = self._similarity(q.compound, p.compound)
            components.append(compound_sim)
        if not components:
            return None
        door_ok = door_ok and road_sim >= FUZZY_MIN_SIMILARITY
        compound_ok = compound_sim >= FUZZY_MIN_SIMILARITY
        level: Level
        if building and p.building == building and (door_ok or compound_ok):
            level = "building"
        elif door_ok:
            level = "door"
        elif compound_ok:
            level = "compound"
        elif road_sim >= FUZZY_MIN_SIMILARITY:
            level = "road"
        else:
            return None
        factor = 1.0
        for mine, theirs in ((q.district, p.district), (q.street, p.street)):
            if _differ(mine, theirs, stem=True):
                factor *= PLACE_MISMATCH_FACTOR
        if q.city and p.city and place_stem(q.city) not in {
                place_stem(p.city), place_stem(p.district or "")}:
            factor *= PLACE_MISMATCH_FACTOR
        return sum(components) / len(components) * factor, level

    def _evaluate(self, q: AddressParts, ids: set[int]) -> tuple[list[Candidate], list[Candidate]]:
        """Scored candidates, best first, and those dropped only for another building number."""
        candidates: list[Candidate] = []
        other_buildings: list[Candidate] = []
        for i in ids:
            e = self.entries[i]
            wrong_building = bool(q.building and e.parts.building
                                  and e.parts.building != q.building)
            scored = self._score(q, e.parts, None if wrong_building else q.building)
            if scored:
                (other_buildings if wrong_building else candidates).append(Candidate(e, *scored))
        for found in (candidates, other_buildings):
            found.sort(key=lambda c: (-c.score, _LEVEL_RANK[c.level], c.entry.unit_code is None,
                                      c.entry.address))
        return candidates, other_buildings

    # -- decision -----------------------------------------------------------------------------

    def _decide(self, q: AddressParts, candidates: list[Candidate],
                other_buildings: list[Candidate]) -> MatchResult:
        if not candidates or (candidates[0].level != "building" and other_buildings):
            return self._no_building(q, candidates, other_buildings)
        best = candidates[0]
        shown = self._distinct(candidates)
        if best.score < WEAK_MIN_SCORE:
            return MatchResult("unmatched", None, best.score, None, shown, q,
                               f"best candidate scores {best.score:.2f}, below {WEAK_MIN_SCORE}")
        rivals = [c for c in candidates[1:] if c.score >= best.score - AMBIGUITY_MARGIN
                  and not _same_target(best, c, ignore_building=q.building is None)]
        if rivals and best.level != "road":  # a road alone is weak however many places it has
            places = sorted({c.entry.parts.district or "?" for c in [best, *rivals]})
            return MatchResult("ambiguous", best.level, best.score, None, shown, q,
                               f"{len({c.entry.address for c in rivals}) + 1} places score alike"
                               f" (districts: {', '.join(places)}); give the district or road")
        one_building = best.level == "building" or (best.level == "door" and not any(
            c.entry.parts.building != best.entry.parts.building
            and _same_target(best, c, ignore_building=True) for c in candidates[1:]))
        if one_building and best.score >= MATCH_MIN_SCORE:
            return MatchResult("matched", best.level, best.score, best.entry, shown, q, "")
        if one_building:
            reason = f"best candidate scores {best.score:.2f}, below {MATCH_MIN_SCORE}"
        elif best.level == "door":
            reason = "the door number has several buildings; give the building"
        elif best.level == "compound":
            reason = "only the compound matched; a building is needed"
        elif q.door_number:
            reason = f"door number {q.door_number} not found on the road"
        else:
            reason = "only the road matched"
        return MatchResult("weak", best.level, best.score, None, shown, q, reason)

    @staticmethod
    def _distinct(candidates: list[Candidate]) -> list[Candidate]:
        """The best CANDIDATE_LIMIT candidates, duplicate entries of one building merged."""
        distinct: list[Candidate] = []
        for c in candidates:
            if len(distinct) == CANDIDATE_LIMIT:
                break
            if not any(_same_target(k, c, ignore_building=False) for k in distinct):
                distinct.append(c)
        return distinct

    def _no_building(self, q: AddressParts, candidates: list[Candidate],
                     other_buildings: list[Candidate]) -> MatchResult:
        """No candidate names a building: the building number is unknown at a known place."""
        if not other_buildings:
            return MatchResult("unmatched", None, 0.0, None, [], q,
                               "no gazetteer entry matches the road or compound")
        place = other_buildings[0]
        known = sorted({c.entry.parts.building or "" for c in other_buildings
                        if _same_target(place, c, ignore_building=True)} - {""},
                       key=lambda b: (len(b), b))
        return MatchResult("weak", place.level, place.score, None, self._distinct(candidates), q,
                           f"building {q.building} not found at this place "
                           f"(known buildings: {', '.join(known)})")

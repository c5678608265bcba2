"""Chinese address geocoding against a local gazetteer: normalise, parse, match (RULES.md)."""

from gridsvc.geocode.matcher import (
    Candidate,
    Gazetteer,
    GazetteerEntry,
    MatchResult,
    name_similarity,
)
from gridsvc.geocode.normalize import chinese_to_arabic, normalize
from gridsvc.geocode.parse import AddressParts, KnownPlaces, parse, place_stem

__all__ = [
    "AddressParts",
    "Candidate",
    "Gazetteer",
    "GazetteerEntry",
    "KnownPlaces",
    "MatchResult",
    "chinese_to_arabic",
    "name_similarity",
    "normalize",
    "parse",
    "place_stem",
]

"""Split an address into its parts by the grammar documented in RULES.md.

    [中国] [province] [city] [district] [street] [community]
    [road [door]] [compound] [building] [unit] [floor] [room] [rest]

Every part is optional. Prefixes are recognised by their suffix (省/市/区/县/街道/镇/社区...),
or, without the suffix, when the name is a province or in the ``KnownPlaces`` a gazetteer
passes in. Names are kept as written (normalised); compare places with ``place_stem``.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import asdict, dataclass
from functools import lru_cache
from typing import Any

from gridsvc.geocode.normalize import normalize

PROVINCES = (
    "北京市", "天津市", "上海市", "重庆市", "河北省", "山西省", "辽宁省", "吉林省", "黑龙江省",
    "江苏省", "浙江省", "安徽省", "福建省", "江西省", "山东省", "河南省", "湖北省", "湖南省",
    "广东省", "海南省", "四川省", "贵州省", "云南省", "陕西省", "甘肃省", "青海省", "台湾省",
    "内蒙古自治区", "广西壮族自治区", "西藏自治区", "宁夏回族自治区", "新疆维吾尔自治区",
    "香港特别行政区", "澳门特别行政区",
)
PLACE_SUFFIXES = (
    "壮族自治区", "回族自治区", "维吾尔自治区", "特别行政区", "自治区", "自治州", "自治县",
    "地区", "省", "市", "区", "县", "旗", "盟",
)
ROAD_SUFFIXES = ("大道", "大街", "胡同", "路", "街", "巷", "弄", "道")
COMPOUND_SUFFIXES = (
    "小区", "花园", "家园", "公寓", "新村", "山庄", "别墅", "大厦", "广场", "公馆", "华庭", "名邸",
    "苑", "院", "城", "庭", "府", "园", "里", "居", "庄", "村", "湾", "轩", "阁", "邸",
)
# A "district" match ending like this is a compound or a community, not a district.
NOT_DISTRICT_ENDINGS = ("小区", "社区", "园区", "街区", "校区", "厂区", "景区")

_CJK = "\u4e00-\u9fff"
_NAME = rf"(?:(?![省市区县路街巷道号栋])[{_CJK}])"
_CITY = re.compile(rf"{_NAME}{{2,7}}?(?:自治州|地区|市|盟)")
_DISTRICT = re.compile(rf"{_NAME}{{2,7}}?(?:区|市|旗)|{_NAME}{{1,7}}?县")
_STREET = re.compile(rf"({_NAME}{{2,8}}?(?:街道|镇|乡))(?:办事处)?")
_COMMUNITY = re.compile(rf"({_NAME}{{2,8}}?(?:社区|居委会|村委会))(?:居委会)?")
_ROAD_CHAR = rf"(?:(?![号栋省市区县])[{_CJK}0-9])"
_ROAD_SUFFIX = "|".join(ROAD_SUFFIXES)
_DOOR_NUMBER = r"(\d+[A-Z]?(?:-\d+)?)号"
_ROAD = re.compile(rf"{_ROAD_CHAR}{{1,12}}?(?:{_ROAD_SUFFIX})")
_ROAD_DOOR = re.compile(rf"({_ROAD_CHAR}{{1,12}}?(?:{_ROAD_SUFFIX})){_DOOR_NUMBER}")
_NAME_DOOR = re.compile(rf"((?:(?![号栋省市区县])[{_CJK}]){{2,12}}?){_DOOR_NUMBER}")
_DOOR = re.compile(_DOOR_NUMBER)
# Searched patterns start a digit run at its beginning ((?<!\d)): the same matches, in linear
# rather than quadratic time on long runs of digits.
_BUILDING = re.compile(r"([A-Z]?(?<!\d)\d+[A-Z]?|[A-Z])栋")
_UNIT = re.compile(r"(?<!\d)(\d+)单元")
_FLOOR = re.compile(r"\d+(?:层|楼)")
_ROOM = re.compile(r"(?<!\d)(\d+[A-Z]?)(?:室|房|户)")
_BARE_ROOM = re.compile(r"(\d+[A-Z]?)(?:室|房|户)?")
_LEADING_ZEROS = re.compile(r"^0+(?=\d)")
_HAS_NAME = re.compile(rf"[{_CJK}A-Z]")


@lru_cache(maxsize=65536)
def place_stem(name: str) -> str:
    """An administrative name without its level suffix (南通市 -> 南通); kept whole if too short."""
    for suffix in PLACE_SUFFIXES:
        if name.endswith(suffix) and len(name) - len(suffix) >= 2:
            return name[: -len(suffix)]
    return name


@lru_cache(maxsize=65536)
def name_stem(name: str) -> str:
    """A road or compound name without its generic suffix (阳光小区 -> 阳光, 幸福路 -> 幸福)."""
    for suffix in COMPOUND_SUFFIXES + ROAD_SUFFIXES:
        if name.endswith(suffix) and len(name) > len(suffix):
            return name[: -len(suffix)]
    return name


# province stem (北京, 内蒙古) -> official name
_PROVINCE_BY_STEM = {(full[:3] if full.startswith("内蒙古") else full[:2]): full
                     for full in PROVINCES}


@dataclass(frozen=True)
class KnownPlaces:
    """City and district names (stems) a parser accepts without their 市/区/县 suffix."""

    cities: frozenset[str] = frozenset()
    districts: frozenset[str] = frozenset()

    @classmethod
    def from_names(cls, cities: set[str], districts: set[str]) -> KnownPlaces:
        def stems(names: set[str]) -> frozenset[str]:
            return frozenset(s for s in map(place_stem, names) if len(s) >= 2)

        return cls(stems(cities), stems(districts))


@dataclass(frozen=True)
class AddressParts:
    """A parsed address; every field is normalised text or None. ``building`` is canonical
    ("3", "A", "12B"); ``door_number``, ``unit`` and ``room`` are digits ("88", "2", "301")."""

    province: str | None = None
    city: str | None = None
    district: str | None = None
    street: str | None = None
    community: str | None = None
    road: str | None = None
    door_number: str | None = None
    compound: str | None = None
    building: str | None = None
    unit: str | None = None
    room: str | None = None
    rest: str | None = None

    def as_dict(self) -> dict[str, Any]:
        return {k: v for k, v in asdict(self).items() if v is not None}


def _may_follow_bare_name(rest: str) -> bool:
    """After a place name without suffix, the text must go on with another name, not with a
    road or compound suffix (南通路 is a road, not the city 南通 plus 路)."""
    return bool(rest) and "\u4e00" <= rest[0] <= "\u9fff" and not rest.startswith(
        ROAD_SUFFIXES + COMPOUND_SUFFIXES + ("大",)
    )


def _take_province(s: str) -> tuple[str | None, str]:
    for stem in (s[:2], s[:3]):
        full = _PROVINCE_BY_STEM.get(stem)
        if full is None:
            continue
        if s.startswith(full):
            return full, s[len(full):]
        rest = s[len(stem):]
        if not rest.startswith("市") and _may_follow_bare_name(rest):
            return stem, rest
    return None, s


def _take_place(
    s: str, pattern: re.Pattern[str], stems: frozenset[str], not_endings: tuple[str, ...] = ()
) -> tuple[str | None, str]:
    m = pattern.match(s)
    if m and not m.group(0).endswith(not_endings):
        return m.group(0), s[m.end():]
    for n in range(min(len(s) - 1, 8), 1, -1):
        if s[:n] in stems and _may_follow_bare_name(s[n:]):
            return s[:n], s[n:]
    return None, s


def _take_named(s: str, pattern: re.Pattern[str]) -> tuple[str | None, str]:
    """A street or community; refused when the text goes on with a compound suffix (古镇花园)
    or directly with a number (幸福社区3栋 names a compound)."""
    m = pattern.match(s)
    if not m:
        return None, s
    rest = s[m.end():]
    if not rest or (rest[0].isalnum() and not "\u4e00" <= rest[0] <= "\u9fff"):
        return None, s
    if rest.startswith(COMPOUND_SUFFIXES):
        return None, s
    return m.group(1), rest


def _canonical_building(text: str) -> str:
    return _LEADING_ZEROS.sub("", text)


def _canonical_number(digits: str) -> str:
    """ASCII digits without leading zeros, as ``str(int(digits))`` but without its limit of
    4,300 digits (a longer number in a typed address raised ValueError)."""
    return _LEADING_ZEROS.sub("", "".join(str(unicodedata.decimal(ch)) for ch in digits))


def _parse_tail(s: str) -> dict[str, str | None]:
    """compound, building, unit, room and rest from what follows the road and door number."""
    marks = [m for m in (_BUILDING.search(s), _UNIT.search(s), _ROOM.search(s)) if m]
    if not marks:
        named = bool(_HAS_NAME.search(s))
        return {"compound": s if named else None, "rest": None if named or not s else s}
    start = min(m.start() for m in marks)
    compound = s[:start].strip("-") or None
    tail = s[start:]
    parts: dict[str, str | None] = {"compound": compound}
    if m := _BUILDING.match(tail):
        parts["building"] = _canonical_building(m.group(1))
        tail = tail[m.end():]
    if m := _UNIT.match(tail):
        parts["unit"] = _canonical_number(m.group(1))
        tail = tail[m.end():]
    rest = ""
    if m := _FLOOR.match(tail):
        rest, tail = m.group(0), tail[m.end():]
    if m := _ROOM.match(tail) or _BARE_ROOM.match(tail):
        parts["room"] = m.group(1)
        tail = tail[m.end():]
    parts["rest"] = (rest + tail) or None
    return parts


def parse(text: str, places: KnownPlaces | None = None) -> AddressParts:
    """Parse a typed address; ``places`` lets city and district names go without 市/区/县."""
    places = places or KnownPlaces()
    s = normalize(text)
    s = s.removeprefix("中国")
    found: dict[str, str | None] = {}
    found["province"], s = _take_province(s)
    found["city"], s = _take_place(s, _CITY, places.cities)
    found["district"], s = _take_place(s, _DISTRICT, places.districts, NOT_DISTRICT_ENDINGS)
    found["street"], s = _take_named(s, _STREET)
    found["community"], s = _take_named(s, _COMMUNITY)
    if m := _ROAD_DOOR.match(s):
        found["road"], found["door_number"], s = m.group(1), m.group(2), s[m.end():]
    elif (m := _ROAD.match(s)) and not s[m.end():].startswith(COMPOUND_SUFFIXES):
        found["road"], s = m.group(0), s[m.end():]
        if m := _DOOR.match(s):
            found["door_number"], s = m.group(1), s[m.end():]
    elif m := _NAME_DOOR.match(s):
        # No road suffix (a typo such as 幸福璐88号): what stands before a door number is the
        # road, unless it ends like a compound (阳光小区3号): then the number is the building.
        name, number, s = m.group(1), m.group(2), s[m.end():]
        if name.endswith(COMPOUND_SUFFIXES):
            s = f"{name}{number}栋{s}"
        else:
            found["road"], found["door_number"] = name, number
    elif m := _DOOR.match(s):
        found["door_number"], s = m.group(1), s[m.end():]
    found.update(_parse_tail(s))
    return AddressParts(**found)

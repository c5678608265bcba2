"""Normalise a typed Chinese address into one canonical spelling (rules in RULES.md).

Full-width forms become half-width, punctuation and spaces go, Latin letters are upper-cased,
every building marker (栋/幢/号楼/座/#) becomes 栋, and Chinese numerals become Arabic digits
only where they stand in a number slot: before 栋/单元/室/层/期/户 and as a door number after a
road (幸福路八十八号). Names keep their numerals: 三里屯, 五一路, 七星小区.
"""

from __future__ import annotations

import re
import unicodedata

CHINESE_DIGITS = {
    "零": 0, "〇": 0, "一": 1, "二": 2, "两": 2, "三": 3, "四": 4,
    "五": 5, "六": 6, "七": 7, "八": 8, "九": 9,
}
CHINESE_UNITS = {"十": 10, "百": 100, "千": 1000}
_CN = "".join(CHINESE_DIGITS) + "".join(CHINESE_UNITS)

ROAD_ENDINGS = "路街巷道弄"  # the last character of a road name, before a door number

_DASHES = re.compile(r"[—–‐‑‒―－~～]")
_NOISE = re.compile(r"[^\w#\-]|_")
# A Chinese numeral right before a slot marker (taken whole: the lookbehind keeps a long run
# from being tried at every position, which would be quadratic).
_SLOT_NUMBER_CN = re.compile(rf"(?<![{_CN}])([{_CN}]+)(?=号楼|#|栋|幢|座|单元|室|层|期|户)")
# 第 before an Arabic slot number, dropped last: earlier steps may put a marker after it
# (第3-2-301) or join its number with another (第0四层), and normalising twice must change nothing.
_ORDINAL = re.compile(r"(?<!第)第+(\d+)(?=栋|单元|室|层|期|户)")
_DOOR_NUMBER_CN = re.compile(rf"(?<=[{ROAD_ENDINGS}])第?([{_CN}]+)(?=号)")
_BUILDING_MARKER = re.compile(r"(?<=[0-9A-Z])(?:号楼|#|幢|座|栋)楼*")  # 3栋楼, 3座楼楼
_DASH_BUILDING_UNIT_ROOM = re.compile(
    rf"(?<![\d\-{ROAD_ENDINGS}])(\d+[A-Z]?)-(\d+)-(\d+)室?$"
)
_DASH_UNIT_ROOM = re.compile(r"栋(\d+)-(\d+)室?$")
_DOOR_WITHOUT_HAO = re.compile(
    rf"(?<=[{ROAD_ENDINGS}])(\d+(?:-\d+)?)(?!\d|-|号|栋|单元|室|层|楼|期|户|[A-Z])"
)
_HAO_BEFORE_UNIT = re.compile(rf"(?<=[^\d\-号{ROAD_ENDINGS}])(\d+[A-Z]?)号(?=\d+单元)")
_ROOM_HAO = re.compile(r"(?<=单元)(\d+)号")


def chinese_to_arabic(numeral: str) -> str:
    """Chinese numeral to Arabic digits: 十二 -> 12, 一百零三 -> 103, 一零三 -> 103 (by digit).

    Arabic input is returned as it is.
    """
    if numeral.isdigit():
        return numeral
    if not any(ch in CHINESE_UNITS for ch in numeral):
        return "".join(str(CHINESE_DIGITS[ch]) for ch in numeral)
    total, digit = 0, None
    for ch in numeral:
        if ch in CHINESE_DIGITS:
            digit = CHINESE_DIGITS[ch]
        else:
            total += (1 if digit is None else digit) * CHINESE_UNITS[ch]
            digit = None
    return str(total + (digit or 0))


def normalize(text: str) -> str:
    """The canonical spelling of an address; the same input always gives the same output."""
    s = unicodedata.normalize("NFKC", text).upper()
    s = _DASHES.sub("-", s)
    s = _NOISE.sub("", s)
    s = _SLOT_NUMBER_CN.sub(lambda m: chinese_to_arabic(m.group(1)), s)
    s = _DOOR_NUMBER_CN.sub(lambda m: chinese_to_arabic(m.group(1)), s)
    s = _BUILDING_MARKER.sub("栋", s)
    s = _DASH_BUILDING_UNIT_ROOM.sub(r"\1栋\2单元\3室", s)
    s = _DASH_UNIT_ROOM.sub(r"栋\1单元\2室", s)
    s = _DOOR_WITHOUT_HAO.sub(r"\1号", s)
    s = _HAO_BEFORE_UNIT.sub(r"\1栋", s)
    s = _ROOM_HAO.sub(r"\1室", s)
    return _ORDINAL.sub(r"\1", s)

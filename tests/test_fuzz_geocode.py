"""Property tests of the address normaliser, parser and matcher on arbitrary text.

Any text, however garbled (unicode junk, full-width forms, runs of thousands of digits), gives
an answer and never an exception: the addresses come from the public lookup and from rosters.
Seeded (``derandomize``) and bounded, so a run is reproducible and short.
"""

from __future__ import annotations

import re
import unicodedata

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from gridsvc.geocode import Gazetteer, GazetteerEntry, normalize, parse
from gridsvc.geocode.matcher import CANDIDATE_LIMIT

FUZZ = settings(max_examples=300, derandomize=True, deadline=None, database=None,
                suppress_health_check=[HealthCheck.too_slow])

# Pieces of real addresses, in every spelling the rules know, and of garbage around them.
_WORDS = """
    中国 江苏省 江苏 南通市 南通 崇川区 崇川 和平街道 阳光社区 居委会 幸福路 人民东路 五一路
    幸福璐 大道 胡同 88号 八十八号 88-1号 88 阳光小区 七星小区 三里屯 彩虹名邸 花园 苑 第 三
    十二 一百零三 两 〇 3 ０ ３ 12B A ａ 栋 幢 座 号楼 # ＃ 楼 单元 室 层 期 户 号 房 - — ～
    3-2-301 2-301 （ ） · ， NaN inf 1e400 ٣ ① ² ß ﬀ
"""
PIECES = [*_WORDS.split(), " ", "\u3000", "\x00", "\u0345", "\U0001f600"]
ADDRESS_LIKE = st.lists(st.sampled_from(PIECES), max_size=14).map("".join)
TEXT = st.one_of(st.text(), ADDRESS_LIKE)
LONG = [  # long runs that once raised (int() of 4,300+ digits) or took quadratic time
    "阳光小区3栋" + "1" * 5000 + "单元", "1" * 20000, "第" * 20000, "阳光小区" + "1栋" * 5000,
]


def _ascii_digits(text: str) -> str:
    return "".join(str(unicodedata.decimal(ch)) if ch.isdecimal() else ch for ch in text)


def _is_subsequence(part: str, whole: str) -> bool:
    chars = iter(whole)
    return all(ch in chars for ch in part)


@FUZZ
@given(TEXT)
@example("第０四层")  # once normalised to 第04层, then to 04层
@example("阳光小区3栋楼楼")  # once 3栋楼, then 3栋
@example("房第2十座")
@example("阳光小区第3-2-301")  # the dash form puts a marker after 第3
def test_normalize_is_idempotent(text: str) -> None:
    once = normalize(text)
    assert normalize(once) == once


@FUZZ
@given(ADDRESS_LIKE)
def test_full_width_forms_normalise_like_half_width(text: str) -> None:
    full = "".join(chr(ord(ch) + 0xFEE0) if "!" <= ch <= "~" else ch for ch in text)
    assert normalize(full) == normalize(text)


@FUZZ
@given(TEXT)
@example("江苏省南通市崇川区和平街道幸福路88号阳光小区3栋2单元5层301室")
@example("阳光小区3栋٠٣单元")
@example("一邸0号")
def test_parse_gives_parts_of_the_normalised_text(text: str) -> None:
    parts = parse(text)
    n = normalize(text)
    assert parse(n) == parts  # parsing normalises, and normalising twice changes nothing
    found = parts.as_dict()
    for name in ("province", "city", "district", "street", "community", "road",
                 "door_number", "compound", "room"):
        if name in found:
            assert found[name] and found[name] in n, (name, found[name], n)
    if parts.building is not None:  # leading zeros dropped; 阳光小区3号 is building 3 too
        assert re.search("0*" + re.escape(parts.building) + "[栋号]", n), (parts.building, n)
    if parts.unit is not None:  # digits in ASCII without leading zeros
        assert parts.unit.isascii() and parts.unit.isdigit()
        assert parts.unit == "0" or not parts.unit.startswith("0")
        assert re.search("0*" + parts.unit + "单元", _ascii_digits(n)), (parts.unit, n)
    if parts.rest is not None:  # the floor and what follows the room
        assert _is_subsequence(parts.rest, n), (parts.rest, n)


@pytest.mark.parametrize("text", LONG)
def test_long_runs_parse(text: str) -> None:
    parts = parse(text)
    assert normalize(normalize(text)) == normalize(text)
    if "单元" in text:
        assert parts.unit == "1" * 5000


GAZETTEER_ROWS = [
    ("江苏省南通市崇川区幸福路88号阳光小区3栋", 120.9007, 32.0007, "B1", None),
    ("崇川区幸福路88号阳光小区5栋", 120.9017, 32.0007, "B2", None),
    ("幸福路90号", 120.9027, 32.0007, None, "崇川区"),
    ("港闸区人民东路12号七星小区12B栋", 120.8507, 32.0507, "B3", None),
    ("海门区七星小区1栋", 121.1007, 31.9007, "B4", None),
    ("彩虹名邸6栋", 120.8542, 32.0051, "B5", "崇川区"),
]


@pytest.fixture(scope="module")
def gazetteer() -> Gazetteer:
    return Gazetteer(GazetteerEntry(a, x, y, unit_code=u, district=d)
                     for a, x, y, u, d in GAZETTEER_ROWS)


@FUZZ
@given(text=TEXT, district=st.one_of(st.none(), TEXT))
@example(text="幸福路88号阳光小区3栋", district=None)
@example(text="七星小区1栋", district="\x00")
def test_match_answers_any_text_consistently(gazetteer, text: str, district) -> None:
    result = gazetteer.match(text, district=district)
    assert result.status in ("matched", "ambiguous", "weak", "unmatched")
    assert (result.entry is not None) == (result.status == "matched")
    assert (result.level is None) == (result.status == "unmatched")
    assert 0.0 <= result.score <= 1.0
    assert len(result.candidates) <= CANDIDATE_LIMIT
    assert result.as_dict()["status"] == result.status  # serialisable
    again = gazetteer.match(normalize(text), district=district)
    assert (again.status, again.entry) == (result.status, result.entry)


@FUZZ
@given(address=TEXT, lon=st.floats(), lat=st.floats())
@example(address="幸福路88号", lon=float("nan"), lat=32.0)
@example(address=" ", lon=120.0, lat=32.0)
def test_gazetteer_entry_is_built_or_refused_with_value_error(address, lon, lat) -> None:
    try:
        entry = GazetteerEntry(address, lon, lat)
    except ValueError as exc:
        assert repr(address) in str(exc)
        return
    assert address.strip() and abs(lon) <= 180 and abs(lat) <= 90
    assert entry.parts == parse(address)

"""Address normalisation, parsing and gazetteer matching (gridsvc.geocode, RULES.md)."""

from __future__ import annotations

import itertools

import pytest

from gridsvc.geocode import (
    Gazetteer,
    GazetteerEntry,
    KnownPlaces,
    chinese_to_arabic,
    normalize,
    parse,
)
from gridsvc.geocode.matcher import MATCH_MIN_SCORE


def _entries() -> list[GazetteerEntry]:
    """A small city: a few dozen standard addresses with wgs84 points and micro-grid codes."""
    entries = []
    for b in range(1, 9):  # 阳光小区 behind one door number, buildings 1..8
        entries.append(GazetteerEntry(f"江苏省南通市崇川区幸福路88号阳光小区{b}栋",
                                      120.90 + b * 1e-4, 32.00, f"CC-YG-{b:02d}"))
    entries.append(GazetteerEntry("幸福路90号", 120.91, 32.00, "CC-XF90", district="崇川区"))
    entries.append(GazetteerEntry("幸运路88号", 120.92, 32.00, "CC-XY88", district="崇川区"))
    for district, code in (("崇川区", "CC"), ("港闸区", "GZ")):  # one compound name, two districts
        for b in (1, 2, 3):
            entries.append(GazetteerEntry(f"南通市{district}金色家园{b}栋", 120.8, 32.1,
                                          f"{code}-JS-{b:02d}"))
    entries.append(GazetteerEntry("月光小区8栋", 120.85, 32.02, "CC-YUE-08", district="崇川区"))
    entries.append(GazetteerEntry("三里屯小区3栋", 120.86, 32.03, "CC-SLT-03", district="崇川区"))
    entries.append(GazetteerEntry("五一路5号五一新村2栋", 120.87, 32.04, "CC-WY-02",
                                  district="崇川区"))
    entries.append(GazetteerEntry("七星小区12栋", 120.88, 32.05, "CC-QX-12", district="崇川区"))
    entries.append(GazetteerEntry("人民东路12号", 120.89, 32.06, "CC-RMD12", district="崇川区"))
    entries.append(GazetteerEntry("中央大厦A座", 120.89, 32.07, "CC-ZY-A", district="崇川区"))
    # the same building twice: derived from the building layer and imported from a CSV
    entries.append(GazetteerEntry("和平路6号翠竹苑1栋", 120.89, 32.08, "CC-CZ-01",
                                  district="崇川区"))
    entries.append(GazetteerEntry("翠竹苑1幢", 120.89, 32.08, None, district="崇川区"))
    entries.append(GazetteerEntry("和平路6号", 120.89, 32.08, "CC-HP6", district="崇川区"))
    return entries


@pytest.fixture(scope="module")
def gazetteer() -> Gazetteer:
    return Gazetteer(_entries())


def _code(result) -> str | None:
    return result.entry.unit_code if result.entry else None


# -- normalize ---------------------------------------------------------------------------------

@pytest.mark.parametrize(("text", "expected"), [
    ("幸福路８８号阳光小区３栋", "幸福路88号阳光小区3栋"),
    ("阳光小区三栋二单元一零三室", "阳光小区3栋2单元103室"),
    ("七星小区十二幢", "七星小区12栋"),
    ("阳光小区3号楼", "阳光小区3栋"),
    ("阳光小区３＃", "阳光小区3栋"),
    ("阳光小区第三栋", "阳光小区3栋"),
    ("中央大厦a座", "中央大厦A栋"),
    ("幸福路八十八号", "幸福路88号"),
    ("幸福路88", "幸福路88号"),
    ("阳光小区3-2-301", "阳光小区3栋2单元301室"),
    ("（南通） 阳光·小区 3 栋，2 单元", "南通阳光小区3栋2单元"),
    ("三里屯小区", "三里屯小区"),
    ("五一路", "五一路"),
    ("七星小区", "七星小区"),
])
def test_normalize(text: str, expected: str) -> None:
    assert normalize(text) == expected


@pytest.mark.parametrize(("numeral", "expected"), [
    ("三", "3"), ("十", "10"), ("十二", "12"), ("二十", "20"), ("一百零三", "103"),
    ("一零三", "103"), ("两百", "200"), ("42", "42"),
])
def test_chinese_to_arabic(numeral: str, expected: str) -> None:
    assert chinese_to_arabic(numeral) == expected


# -- parse -------------------------------------------------------------------------------------

def test_parse_full_address() -> None:
    parts = parse("江苏省南通市崇川区和平街道幸福路88号阳光小区3栋2单元301室")
    assert parts.as_dict() == {
        "province": "江苏省", "city": "南通市", "district": "崇川区", "street": "和平街道",
        "road": "幸福路", "door_number": "88", "compound": "阳光小区", "building": "3",
        "unit": "2", "room": "301",
    }


def test_parse_without_prefixes_unit_and_bare_room() -> None:
    parts = parse("阳光小区三栋二单元301")
    assert (parts.district, parts.road, parts.compound) == (None, None, "阳光小区")
    assert (parts.building, parts.unit, parts.room) == ("3", "2", "301")


def test_parse_prefixes_without_suffix_need_known_places() -> None:
    places = KnownPlaces.from_names({"南通市"}, {"崇川区"})
    parts = parse("江苏南通崇川幸福路88号", places)
    assert (parts.province, parts.city, parts.district, parts.road) == (
        "江苏", "南通", "崇川", "幸福路")
    assert parse("南通路1号", places).road == "南通路"  # a road named after the city stays a road


def test_parse_names_with_numerals_and_road_like_compounds() -> None:
    assert parse("三里屯小区三栋").compound == "三里屯小区"
    assert parse("五一路五号五一新村二栋").as_dict() == {
        "road": "五一路", "door_number": "5", "compound": "五一新村", "building": "2"}
    assert parse("金街花园3栋").as_dict() == {"compound": "金街花园", "building": "3"}
    assert parse("北京市朝阳区三里屯路19号").as_dict() == {
        "province": "北京市", "district": "朝阳区", "road": "三里屯路", "door_number": "19"}


def test_parse_road_typo_is_still_a_road_before_a_door_number() -> None:
    parts = parse("幸福璐88号阳光小区3栋")
    assert (parts.road, parts.door_number, parts.compound) == ("幸福璐", "88", "阳光小区")
    assert parse("阳光小区3号2单元").as_dict() == {
        "compound": "阳光小区", "building": "3", "unit": "2"}


# -- match -------------------------------------------------------------------------------------

@pytest.mark.parametrize("text", [
    "阳光小区3栋", "阳光小区三栋", "阳光小区3号楼", "阳光小区3幢", "阳光小区3#", "阳光小区３栋",
    "阳光小区 第三栋 2单元 301", "幸福路88号阳光小区3栋", "幸福路88号3号楼",
    "江苏省南通市崇川区幸福路88号阳光小区3栋2单元301室", "南通市崇川区阳光小区3-2-301",
    "江苏南通崇川阳光小区3栋", "崇川阳光小区3栋",
])
def test_building_spellings_and_prefixes_match_the_same_entry(gazetteer, text) -> None:
    result = gazetteer.match(text)
    assert (result.status, result.level, _code(result)) == ("matched", "building", "CC-YG-03")
    assert result.score == 1.0


def test_names_with_numerals_match(gazetteer) -> None:
    assert _code(gazetteer.match("三里屯小区三栋")) == "CC-SLT-03"
    assert _code(gazetteer.match("五一路五号五一新村二栋")) == "CC-WY-02"
    assert _code(gazetteer.match("七星小区十二幢")) == "CC-QX-12"
    assert _code(gazetteer.match("中央大厦a座")) == "CC-ZY-A"


def test_compound_typo_matches_with_a_lower_score(gazetteer) -> None:
    result = gazetteer.match("阳光小曲3栋")
    assert (result.status, result.level, _code(result)) == ("matched", "building", "CC-YG-03")
    assert MATCH_MIN_SCORE <= result.score < 1.0


def test_road_typo_matches_with_a_lower_score(gazetteer) -> None:
    door = gazetteer.match("幸福璐90号")
    assert (door.status, door.level, _code(door)) == ("matched", "door", "CC-XF90")
    assert door.score < 1.0
    building = gazetteer.match("幸福璐88号阳光小区3栋")
    assert (building.status, _code(building)) == ("matched", "CC-YG-03")
    assert door.score < building.score < 1.0


def test_wrong_building_number_is_never_matched(gazetteer) -> None:
    for text in ("月光小区3栋", "阳光小区9栋", "阳光小曲9栋", "幸福路88号9栋", "和平路6号2栋"):
        result = gazetteer.match(text)
        assert result.status == "weak", text
        assert result.entry is None
        assert all(c.entry.parts.building in (None, result.parts.building)
                   for c in result.candidates)
    assert "8" in gazetteer.match("月光小区3栋").reason  # names the buildings it knows


def test_same_compound_in_two_districts_is_ambiguous_without_district(gazetteer) -> None:
    result = gazetteer.match("金色家园2栋")
    assert (result.status, result.entry) == ("ambiguous", None)
    assert {c.entry.unit_code for c in result.candidates} == {"CC-JS-02", "GZ-JS-02"}
    assert _code(gazetteer.match("港闸区金色家园2栋")) == "GZ-JS-02"
    assert _code(gazetteer.match("港闸金色家园2栋")) == "GZ-JS-02"
    assert _code(gazetteer.match("金色家园2栋", district="崇川区")) == "CC-JS-02"


def test_district_that_contradicts_the_entry_is_not_matched(gazetteer) -> None:
    result = gazetteer.match("港闸区阳光小区3栋")
    assert result.status == "weak"
    assert result.entry is None
    assert result.candidates[0].entry.unit_code == "CC-YG-03"


def test_compound_only_and_door_with_several_buildings_are_weak(gazetteer) -> None:
    compound = gazetteer.match("阳光小区")
    assert (compound.status, compound.level, compound.entry) == ("weak", "compound", None)
    assert len(compound.candidates) > 1
    door = gazetteer.match("幸福路88号")
    assert (door.status, door.level, door.entry) == ("weak", "door", None)
    assert gazetteer.match("幸福路").status == "weak"


def test_duplicate_entries_of_one_building_are_not_ambiguous(gazetteer) -> None:
    result = gazetteer.match("翠竹苑1栋")
    assert result.status == "matched"
    assert result.entry.parts.compound == "翠竹苑"


def test_names_differing_by_direction_are_different_places(gazetteer) -> None:
    assert gazetteer.match("人民东路12号").status == "matched"
    assert gazetteer.match("人民西路12号").status == "unmatched"
    assert gazetteer.match("幸运路88号").entry.unit_code == "CC-XY88"


@pytest.mark.parametrize("text", ["火星路1号月亮湾5栋", "随便写写", "3栋2单元301", ""])
def test_unmatchable_address_is_unmatched(gazetteer, text) -> None:
    result = gazetteer.match(text)
    assert (result.status, result.entry, result.level) == ("unmatched", None, None)
    assert result.reason


def test_result_as_dict_states_the_coordinate_system(gazetteer) -> None:
    data = gazetteer.match("阳光小区3栋2单元301").as_dict()
    assert data["entry"]["coordsys"] == "wgs84"
    assert data["entry"]["unit_code"] == "CC-YG-03"
    assert data["parts"]["room"] == "301"


def test_entry_with_bad_coordinates_is_refused_with_its_address() -> None:
    with pytest.raises(ValueError, match=r"阳光小区3栋.*lat"):
        GazetteerEntry("阳光小区3栋", 120.9, 132.0)
    with pytest.raises(ValueError, match="address is empty"):
        GazetteerEntry("  ", 120.9, 32.0)


def test_typo_found_among_many_similar_compound_names() -> None:
    """The character index must still find the right name when most names share characters."""
    stems = ["".join(p) for p in itertools.permutations("春华秋实锦绣", 2)]  # 30 stems
    entries = [GazetteerEntry(f"{stem}{suffix}{b}栋", 120.0, 30.0, f"{stem}{suffix}-{b}")
               for stem in stems for suffix in ("小区", "花园", "家园") for b in (1, 2)]
    entries.append(GazetteerEntry("锦绣江南小区1栋", 120.0, 30.0, "target"))
    gazetteer = Gazetteer(entries)
    result = gazetteer.match("锦秀江南小区1栋")  # 秀 typed for 绣
    assert (result.status, _code(result)) == ("matched", "target")

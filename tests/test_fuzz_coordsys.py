"""Property tests of the coordinate code on arbitrary input: ``coordsys`` names, points as
numbers or text, boundary-file CRS names, and the request parameters that carry them (and
levels, numbers, JSON fields).

Refusals are ``CoordSysError`` / ``ValueError`` (library) or ``InvalidInput`` (service and web,
naming the field); nothing else escapes and no NaN comes out. Round trips through gcj02 and
bd09 stay within ``ROUND_TRIP_DEG`` inside China; outside it (``SERVICE_EXTENT``) every system
refuses the point instead of passing it through unshifted, as ``coordsys.py`` documents.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
from flask import Flask
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from gridsvc.hierarchy import load_hierarchy
from gridsvc.services.errors import InvalidInput
from gridsvc.services.lookup import to_point
from gridsvc.services.tree import resolve_level
from gridsvc.spatial.coordsys import (
    COORDSYS,
    GCJ02_BOX,
    SERVICE_EXTENT,
    CoordSysError,
    from_wgs84,
    gcj02_to_wgs84,
    invalid_mask,
    parse_coordsys,
    point_problem,
    to_wgs84,
    to_wgs84_array,
    wgs84_to_gcj02,
)
from gridsvc.spatial.crs import parse_crs
from gridsvc.web.params import bbox_arg, bool_arg, int_arg, json_object_field

FUZZ = settings(max_examples=300, derandomize=True, deadline=None, database=None,
                suppress_health_check=[HealthCheck.too_slow])
ROUND_TRIP_DEG = 1e-8  # about 1 mm; the inverse iterates to 1e-9 degrees

SPECIAL_TEXT = ["nan", "NaN", "inf", "-inf", "1e400", "-1e400", "１２０.５", "٣٢", " 121 ",
                "0x10", "1_20", "", " ", "\x00", "120,5", "1" * 5000]
NUMBER_LIKE = st.one_of(
    st.floats(), st.integers(min_value=-(10**400), max_value=10**400), st.text(max_size=20),
    st.sampled_from(SPECIAL_TEXT), st.floats(60, 150).map(str), st.none(), st.booleans(),
)
SYSTEM_LIKE = st.one_of(
    st.sampled_from([*COORDSYS, "EPSG:4326", "bd-09", " GCJ_02 ", "bd09mc", "4490"]),
    st.text(max_size=12), st.none(), st.integers(),
)
min_lon, min_lat, max_lon, max_lat = SERVICE_EXTENT
# Inside China with a margin, so the shifted point (up to ~0.02 degrees away) is inside too.
CHINA_LON = st.floats(min_lon + 0.05, max_lon - 0.05)
CHINA_LAT = st.floats(min_lat + 0.05, max_lat - 0.05)


@FUZZ
@given(SYSTEM_LIKE)
def test_parse_coordsys_names_a_system_or_refuses(value) -> None:
    try:
        assert parse_coordsys(value) in COORDSYS
    except CoordSysError as exc:
        assert "coordsys" in str(exc)


@FUZZ
@given(NUMBER_LIKE, NUMBER_LIKE, SYSTEM_LIKE, st.booleans())
@example(10**400, 32.0, "wgs84", True)  # float() of it raised OverflowError
@example(120.0, -(10**400), "gcj02", False)
@example("nan", "32", "bd09", True)
def test_point_conversion_gives_finite_numbers_or_refuses(lon, lat, system, forward) -> None:
    convert = from_wgs84 if forward else to_wgs84
    try:
        out = convert(lon, lat, system)
    except CoordSysError:
        return
    assert all(isinstance(v, float) and math.isfinite(v) for v in out)


@FUZZ
@given(st.lists(NUMBER_LIKE, max_size=4), st.lists(NUMBER_LIKE, max_size=4))
@example([10**400], [32.0])
def test_array_conversion_gives_finite_numbers_or_refuses(lon, lat) -> None:
    try:
        out_lon, out_lat = to_wgs84_array(lon, lat, "gcj02")
    except CoordSysError:
        return
    assert np.isfinite(out_lon).all() and np.isfinite(out_lat).all()


@FUZZ
@given(CHINA_LON, CHINA_LAT, st.sampled_from(COORDSYS))
def test_round_trips_inside_china(lon, lat, system) -> None:
    there = from_wgs84(lon, lat, system)
    back = to_wgs84(*there, system)
    assert back == pytest.approx((lon, lat), abs=ROUND_TRIP_DEG)
    # and the other way round: the point read as ``system`` and written back
    as_wgs84 = to_wgs84(lon, lat, system)
    assert from_wgs84(*as_wgs84, system) == pytest.approx((lon, lat), abs=ROUND_TRIP_DEG)
    if system in ("wgs84", "cgcs2000"):
        assert there == back == (lon, lat)
    # the vectorised form agrees with the scalar one
    arr = to_wgs84_array([there[0]], [there[1]], system)
    assert (arr[0][0], arr[1][0]) == pytest.approx(back, abs=ROUND_TRIP_DEG)


@FUZZ
@given(st.floats(-180, 180), st.floats(-90, 90), st.sampled_from(COORDSYS))
@example(139.69, 35.69, "wgs84")  # Tokyo
@example(103.82, 1.35, "gcj02")  # Singapore: in GCJ-02's box, not in China
def test_points_outside_china_are_refused_in_every_system(lon, lat, system) -> None:
    inside = min_lon <= lon <= max_lon and min_lat <= lat <= max_lat
    assert (point_problem(lon, lat) is None) == inside
    assert bool(invalid_mask([lon], [lat])[0]) == (not inside)
    if inside:
        return
    for convert in (to_wgs84, from_wgs84):
        with pytest.raises(CoordSysError, match="outside China"):
            convert(lon, lat, system)
    in_gcj_box = GCJ02_BOX[0] <= lon <= GCJ02_BOX[2] and GCJ02_BOX[1] <= lat <= GCJ02_BOX[3]
    if not in_gcj_box:
        for shift in (wgs84_to_gcj02, gcj02_to_wgs84):
            with pytest.raises(CoordSysError, match="GCJ-02 area"):
                shift(lon, lat)


@FUZZ
@given(st.floats(allow_nan=True, allow_infinity=True), st.floats(allow_nan=True,
                                                                 allow_infinity=True))
@example(120.0, 95.0)
@example(200.0, 32.0)
@example(32.0, 120.0)  # swapped
def test_out_of_range_points_are_refused_clearly(lon, lat) -> None:
    problem = point_problem(lon, lat)
    if not (math.isfinite(lon) and math.isfinite(lat)):
        assert "finite" in problem
    elif not -90 <= lat <= 90:
        assert "lat must be between -90 and 90" in problem
    elif not -180 <= lon <= 180:
        assert "lon must be between -180 and 180" in problem
    if problem is not None:
        with pytest.raises(InvalidInput) as err:
            to_point(lon, lat, "wgs84")
        assert err.value.extra["field"] in ("lon", "lat")


@FUZZ
@given(NUMBER_LIKE, NUMBER_LIKE, SYSTEM_LIKE)
@example(10**400, "32", "wgs84")
@example(True, 32.0, "wgs84")
@example("120.9", "32.0", 4326)
def test_service_points_are_read_or_refused_naming_the_field(lon, lat, system) -> None:
    try:
        x, y = to_point(lon, lat, system)
    except InvalidInput as exc:
        assert exc.extra["field"] in ("lon", "lat", "coordsys")
        return
    assert math.isfinite(x) and math.isfinite(y)


@settings(FUZZ, max_examples=100)  # pyproj takes milliseconds a CRS
@given(st.one_of(st.text(max_size=30), st.from_regex(r"(?i)\s*(epsg)?[:_ -]?[0-9０-９]{1,12}\s*",
                                                     fullmatch=True)))
@example("EPSG:4549")
@example("EPSG:9999999999999999999999")
@example("４５４９")
def test_parse_crs_gives_a_crs_or_value_error(text: str) -> None:
    try:
        crs = parse_crs(text)
    except ValueError:
        return
    assert crs.to_authority() is not None


# --- request parameters ---------------------------------------------------------------------

_PARAMS_APP = Flask(__name__)
QUERY_TEXT = st.one_of(st.text(max_size=40), st.sampled_from(SPECIAL_TEXT),
                       st.lists(st.sampled_from([*SPECIAL_TEXT, "120.9", "32", "-181", "91"]),
                                min_size=1, max_size=5).map(",".join))


@FUZZ
@given(QUERY_TEXT, QUERY_TEXT, st.one_of(st.none(), QUERY_TEXT))
@example("120.9,32.0,120.91,32.01", "1", "wgs84")
@example("nan,32,121,33", "1e400", None)
@example("120.9,32.0,120.91,32.01", "x", "gcj02")
@example("1,2,3,4", "1" * 5000, None)  # json.loads of it raised ValueError, not JSONDecodeError
@example("1,2,3,4", "[" * 100_000, None)  # and this RecursionError
def test_query_parameters_are_read_or_refused_naming_the_field(bbox, number, crs) -> None:
    query = {"bbox": bbox, "limit": number, "flag": number, "map": number}
    if crs is not None:
        query["bbox-crs"] = crs
    with _PARAMS_APP.test_request_context(query_string=query):
        for read, field in ((bbox_arg, "bbox"), (lambda: int_arg("limit", 7), "limit"),
                            (lambda: bool_arg("flag"), "flag"),
                            (lambda: json_object_field("map", {"map": number}), "map")):
            try:
                value = read()
            except InvalidInput as exc:
                assert exc.extra["field"] in (field, "bbox-crs")
                continue
            if field == "bbox" and value is not None:
                x0, y0, x1, y1 = value
                assert -180 <= x0 <= x1 <= 180 and -90 <= y0 <= y1 <= 90


@FUZZ
@given(st.one_of(QUERY_TEXT, st.integers(), st.floats()))
@example("³")  # isdigit() but not int(): a 500 for ?max_level=³
@example("1" * 5000)
@example("0002")
def test_level_parameters_resolve_or_refuse(value) -> None:
    hierarchy = load_hierarchy()
    found = hierarchy.resolve(value)
    assert found is None or found in hierarchy.levels
    if value == "0002":
        assert found.level == 2
    try:
        level = resolve_level(hierarchy, value)
    except InvalidInput as exc:
        assert exc.extra["field"] == "level"
        return
    assert level is None or 1 <= level <= len(hierarchy.levels)

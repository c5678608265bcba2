"""Coordinate systems: published vectors, an independent implementation, inverses, refusals."""

from __future__ import annotations

import math

import numpy as np
import pytest

from gridsvc.spatial.coordsys import (
    COORDSYS,
    CoordSysError,
    bd09_to_gcj02,
    check_in_china,
    from_wgs84,
    from_wgs84_array,
    gcj02_to_bd09,
    gcj02_to_wgs84,
    invalid_mask,
    out_of_china,
    parse_coordsys,
    point_problem,
    to_wgs84,
    to_wgs84_array,
    wgs84_to_gcj02,
)

# --- an independent implementation: a literal transcription of wandergis/coordtransform's JS ---
# (index.js; lng before lat, its own PI literal, no shared code with gridsvc).

PI = 3.1415926535897932384626
X_PI = 3.14159265358979324 * 3000.0 / 180.0
KRASOVSKY_A = 6378245.0
KRASOVSKY_EE = 0.00669342162296594323


def ref_transformlat(lng, lat):
    ret = -100.0 + 2.0 * lng + 3.0 * lat + 0.2 * lat * lat + 0.1 * lng * lat + 0.2 * math.sqrt(
        abs(lng))
    ret += (20.0 * math.sin(6.0 * lng * PI) + 20.0 * math.sin(2.0 * lng * PI)) * 2.0 / 3.0
    ret += (20.0 * math.sin(lat * PI) + 40.0 * math.sin(lat / 3.0 * PI)) * 2.0 / 3.0
    ret += (160.0 * math.sin(lat / 12.0 * PI) + 320 * math.sin(lat * PI / 30.0)) * 2.0 / 3.0
    return ret


def ref_transformlng(lng, lat):
    ret = 300.0 + lng + 2.0 * lat + 0.1 * lng * lng + 0.1 * lng * lat + 0.1 * math.sqrt(abs(lng))
    ret += (20.0 * math.sin(6.0 * lng * PI) + 20.0 * math.sin(2.0 * lng * PI)) * 2.0 / 3.0
    ret += (20.0 * math.sin(lng * PI) + 40.0 * math.sin(lng / 3.0 * PI)) * 2.0 / 3.0
    ret += (150.0 * math.sin(lng / 12.0 * PI) + 300.0 * math.sin(lng / 30.0 * PI)) * 2.0 / 3.0
    return ret


def ref_wgs84togcj02(lng, lat):
    dlat = ref_transformlat(lng - 105.0, lat - 35.0)
    dlng = ref_transformlng(lng - 105.0, lat - 35.0)
    radlat = lat / 180.0 * PI
    magic = math.sin(radlat)
    magic = 1 - KRASOVSKY_EE * magic * magic
    sqrtmagic = math.sqrt(magic)
    dlat = (dlat * 180.0) / ((KRASOVSKY_A * (1 - KRASOVSKY_EE)) / (magic * sqrtmagic) * PI)
    dlng = (dlng * 180.0) / (KRASOVSKY_A / sqrtmagic * math.cos(radlat) * PI)
    return [lng + dlng, lat + dlat]


def ref_gcj02towgs84_one_step(lng, lat):
    """The library's approximate inverse: subtract the offset taken at the gcj02 point."""
    mglng, mglat = ref_wgs84togcj02(lng, lat)
    return [lng * 2 - mglng, lat * 2 - mglat]


def ref_gcj02tobd09(lng, lat):
    z = math.sqrt(lng * lng + lat * lat) + 0.00002 * math.sin(lat * X_PI)
    theta = math.atan2(lat, lng) + 0.000003 * math.cos(lng * X_PI)
    return [z * math.cos(theta) + 0.0065, z * math.sin(theta) + 0.006]


def ref_bd09togcj02_closed_form(bd_lon, bd_lat):
    """The library's approximate inverse of gcj02tobd09."""
    x = bd_lon - 0.0065
    y = bd_lat - 0.006
    z = math.sqrt(x * x + y * y) - 0.00002 * math.sin(y * X_PI)
    theta = math.atan2(y, x) - 0.000003 * math.cos(x * X_PI)
    return [z * math.cos(theta), z * math.sin(theta)]


# --- helpers -----------------------------------------------------------------------------------

EARTH_RADIUS_M = 6_371_008.8
ONE_CM = 0.01


def metres(lon1, lat1, lon2, lat2):
    """Distance in metres (equirectangular; exact enough for centimetres apart)."""
    lat_mid = np.radians((np.asarray(lat1) + np.asarray(lat2)) / 2.0)
    dx = np.radians(np.asarray(lon2) - np.asarray(lon1)) * np.cos(lat_mid)
    dy = np.radians(np.asarray(lat2) - np.asarray(lat1))
    return EARTH_RADIUS_M * np.hypot(dx, dy)


def china_grid():
    """wgs84 points every ~0.7 deg across China's extent, offset off round numbers."""
    lon, lat = np.meshgrid(np.arange(74.013, 135.0, 0.71), np.arange(4.017, 53.5, 0.67))
    return lon.ravel(), lat.ravel()


# --- published vectors --------------------------------------------------------------------------

# googollee/eviltransform javascript/test.js: (wgs lon, wgs lat, gcj lon, gcj lat)
EVILTRANSFORM_PAIRS = [
    (121.5272106, 31.1774276, 121.531541859215, 31.17530398364597),  # Shanghai
    (113.912316, 22.543847, 113.9171764808363, 22.540796131694766),  # Shenzhen
    (116.377817, 39.911954, 116.38404722455657, 39.91334545536069),  # Beijing
]


@pytest.mark.parametrize(("lon", "lat", "gcj_lon", "gcj_lat"), EVILTRANSFORM_PAIRS)
def test_wgs84_to_gcj02_matches_published_pairs(lon, lat, gcj_lon, gcj_lat):
    got_lon, got_lat = wgs84_to_gcj02(lon, lat)
    assert abs(got_lon - gcj_lon) < 1e-6 and abs(got_lat - gcj_lat) < 1e-6
    assert from_wgs84(lon, lat, "gcj02") == pytest.approx((gcj_lon, gcj_lat), abs=1e-6)


@pytest.mark.parametrize(("lon", "lat", "gcj_lon", "gcj_lat"), EVILTRANSFORM_PAIRS)
def test_gcj02_to_wgs84_recovers_published_pairs_within_a_centimetre(lon, lat, gcj_lon, gcj_lat):
    got_lon, got_lat = to_wgs84(gcj_lon, gcj_lat, "gcj02")
    assert metres(got_lon, got_lat, lon, lat) < ONE_CM


def test_tiananmen_vectors_from_coordtransform_readme():
    # Baidu's own map centre near Tiananmen, (116.404, 39.915), through each published function.
    assert wgs84_to_gcj02(116.404, 39.915) == pytest.approx(
        (116.41024449916938, 39.91640428150164), abs=1e-6)
    assert gcj02_to_bd09(116.404, 39.915) == pytest.approx(
        (116.41036949371029, 39.92133699351021), abs=1e-6)
    # The README's inverses are the one-step approximations: ours land within a few metres of
    # them, but unlike them reproduce the input exactly when transformed forward again.
    approx_gcj = (116.39762729119315, 39.90865673957631)
    gcj = bd09_to_gcj02(116.404, 39.915)
    assert 0 < metres(*gcj, *approx_gcj) < 5
    assert metres(*gcj02_to_bd09(*gcj), 116.404, 39.915) < 1e-4
    approx_wgs = (116.39775550083061, 39.91359571849836)
    wgs = gcj02_to_wgs84(116.404, 39.915)
    assert 0 < metres(*wgs, *approx_wgs) < 5
    assert metres(*wgs84_to_gcj02(*wgs), 116.404, 39.915) < 1e-4


# --- forward transforms against the independent implementation ----------------------------------


def test_forward_transforms_agree_with_independent_implementation():
    lon, lat = china_grid()
    gcj_lon, gcj_lat = wgs84_to_gcj02(lon, lat)
    bd_lon, bd_lat = gcj02_to_bd09(gcj_lon, gcj_lat)
    for i in range(len(lon)):
        ref_gcj = ref_wgs84togcj02(lon[i], lat[i])
        ref_bd = ref_gcj02tobd09(*ref_gcj)
        assert abs(gcj_lon[i] - ref_gcj[0]) < 1e-9 and abs(gcj_lat[i] - ref_gcj[1]) < 1e-9
        assert abs(bd_lon[i] - ref_bd[0]) < 1e-9 and abs(bd_lat[i] - ref_bd[1]) < 1e-9
        assert wgs84_to_gcj02(float(lon[i]), float(lat[i])) == pytest.approx(ref_gcj, abs=1e-9)
        assert from_wgs84(lon[i], lat[i], "bd09") == pytest.approx(ref_bd, abs=1e-9)
    # the shift is real: hundreds of metres, not zero
    assert metres(lon, lat, gcj_lon, gcj_lat).min() > 10


# --- exact inverses ------------------------------------------------------------------------------


def test_gcj02_inverse_round_trip_below_a_centimetre_and_one_step_is_not():
    lon, lat = china_grid()
    gcj_lon, gcj_lat = from_wgs84_array(lon, lat, "gcj02")
    back_lon, back_lat = to_wgs84_array(gcj_lon, gcj_lat, "gcj02")
    assert metres(back_lon, back_lat, lon, lat).max() < ONE_CM
    scalar = [to_wgs84(gcj_lon[i], gcj_lat[i], "gcj02") for i in range(len(lon))]
    assert metres(*np.array(scalar).T, lon, lat).max() < ONE_CM
    one_step = np.array([ref_gcj02towgs84_one_step(*p) for p in zip(gcj_lon, gcj_lat, strict=True)])
    assert metres(*one_step.T, lon, lat).max() > ONE_CM  # the test has teeth


def test_bd09_inverse_round_trip_below_a_centimetre_and_closed_form_is_not():
    lon, lat = china_grid()
    bd_lon, bd_lat = from_wgs84_array(lon, lat, "bd09")
    back_lon, back_lat = to_wgs84_array(bd_lon, bd_lat, "bd09")
    assert metres(back_lon, back_lat, lon, lat).max() < ONE_CM
    scalar = [to_wgs84(bd_lon[i], bd_lat[i], "bd09") for i in range(len(lon))]
    assert metres(*np.array(scalar).T, lon, lat).max() < ONE_CM
    # bd09 -> gcj02 alone, against the closed-form approximation
    gcj_lon, gcj_lat = wgs84_to_gcj02(lon, lat)
    exact = bd09_to_gcj02(bd_lon, bd_lat)
    assert metres(*exact, gcj_lon, gcj_lat).max() < ONE_CM
    closed = np.array([ref_bd09togcj02_closed_form(*p) for p in zip(bd_lon, bd_lat, strict=True)])
    assert metres(*closed.T, gcj_lon, gcj_lat).max() > ONE_CM


def test_random_points_round_trip_in_every_system():
    rng = np.random.default_rng(20240601)
    lon, lat = rng.uniform(73.5, 135.0, 20_000), rng.uniform(3.9, 53.5, 20_000)
    for system in COORDSYS:
        there = from_wgs84_array(lon, lat, system)
        back = to_wgs84_array(*there, system)
        assert metres(*back, lon, lat).max() < ONE_CM, system
        # scalar and vectorised stop iterating at different steps, both within tolerance
        i = int(rng.integers(len(lon)))
        assert to_wgs84(there[0][i], there[1][i], system) == pytest.approx(
            (back[0][i], back[1][i]), abs=1e-8)


def test_cgcs2000_and_wgs84_are_unchanged():
    assert to_wgs84(116.4, 39.9, "cgcs2000") == (116.4, 39.9)
    assert from_wgs84(116.4, 39.9, "EPSG:4490") == (116.4, 39.9)
    lon, lat = to_wgs84_array([116.4, 121.5], [39.9, 31.2], "wgs84")
    assert lon.tolist() == [116.4, 121.5] and lat.tolist() == [39.9, 31.2]


def test_empty_arrays_convert_to_empty_arrays():
    lon, lat = to_wgs84_array([], [], "bd09")
    assert lon.shape == (0,) and lat.shape == (0,)


# --- refusals ------------------------------------------------------------------------------------


@pytest.mark.parametrize("system", COORDSYS)
def test_points_outside_china_are_refused_not_shifted(system):
    with pytest.raises(CoordSysError, match=r"lon=139\.69, lat=35\.69 is outside China"):
        to_wgs84(139.69, 35.69, system)  # Tokyo
    with pytest.raises(CoordSysError, match="outside China"):
        from_wgs84(-0.1276, 51.5072, system)  # London


def test_gcj02_functions_refuse_points_outside_their_area():
    with pytest.raises(CoordSysError, match="GCJ-02 area"):
        wgs84_to_gcj02(139.69, 35.69)
    with pytest.raises(CoordSysError, match="index 1") as err:
        gcj02_to_wgs84(np.array([116.4, 139.69]), np.array([39.9, 35.69]))
    assert err.value.index == 1
    assert out_of_china(139.69, 35.69) and not out_of_china(116.4, 39.9)
    assert out_of_china(np.array([139.69, 116.4, np.nan]), np.array([35.69, 39.9, 30])).tolist() \
        == [True, False, True]


def test_service_extent_is_stricter_than_the_gcj02_box():
    # Singapore lies in GCJ-02's rough box but not in China.
    assert not out_of_china(103.82, 1.35)
    with pytest.raises(CoordSysError, match="outside China"):
        check_in_china(103.82, 1.35)
    check_in_china(116.4, 39.9)  # Beijing passes


def test_swapped_lon_lat_is_named():
    with pytest.raises(CoordSysError,
                       match=r"lat must be between -90 and 90; did you swap lon and lat\?"):
        to_wgs84(32.0, 120.0, "wgs84")
    # Urumqi swapped: both values are in range, but the point is then outside China.
    with pytest.raises(CoordSysError, match=r"outside China.*did you swap lon and lat\?"):
        to_wgs84(43.8, 87.6, "gcj02")
    assert "swap" not in point_problem(139.69, 35.69)


@pytest.mark.parametrize(("lon", "lat", "expected"), [
    (float("nan"), 39.9, "finite"),
    (116.4, float("inf"), "finite"),
    (200.0, 39.9, "lon must be between -180 and 180"),
    (116.4, -95.0, "lat must be between -90 and 90"),
])
def test_bad_numbers_are_refused(lon, lat, expected):
    assert expected in point_problem(lon, lat)
    with pytest.raises(CoordSysError, match=expected):
        to_wgs84(lon, lat, "gcj02")


def test_non_numbers_are_refused_with_the_field_named():
    assert to_wgs84("116.4", "39.9", "wgs84") == (116.4, 39.9)
    with pytest.raises(CoordSysError, match="lat must be a number, got 'abc'"):
        to_wgs84(116.4, "abc", "wgs84")


def test_array_conversion_names_the_first_bad_point_and_mask_finds_all():
    lon = [116.4, 121.5, 32.0, 139.69, np.nan]
    lat = [39.9, 31.2, 120.0, 35.69, 30.0]
    with pytest.raises(CoordSysError, match=r"^point at index 2: .*did you swap") as err:
        to_wgs84_array(lon, lat, "gcj02")
    assert err.value.index == 2
    assert invalid_mask(lon, lat).tolist() == [False, False, True, True, True]
    with pytest.raises(CoordSysError, match="same length"):
        to_wgs84_array([116.4, 121.5], [39.9], "wgs84")


# --- coordsys names ------------------------------------------------------------------------------


@pytest.mark.parametrize(("alias", "expected"), [
    ("wgs84", "wgs84"), ("WGS84", "wgs84"), ("wgs-84", "wgs84"), ("EPSG:4326", "wgs84"),
    ("4326", "wgs84"), (" WGS 84 ", "wgs84"),
    ("gcj02", "gcj02"), ("GCJ-02", "gcj02"), ("gcj_02", "gcj02"),
    ("bd09", "bd09"), ("BD-09", "bd09"), ("bd09ll", "bd09"),
    ("cgcs2000", "cgcs2000"), ("CGCS2000", "cgcs2000"), ("epsg:4490", "cgcs2000"),
])
def test_aliases_are_parsed(alias, expected):
    assert parse_coordsys(alias) == expected


@pytest.mark.parametrize("missing", [None, "", "   "])
def test_missing_coordsys_is_required(missing):
    with pytest.raises(CoordSysError, match=r"coordsys is required.*wgs84, gcj02, bd09, cgcs2000"):
        parse_coordsys(missing)
    with pytest.raises(CoordSysError, match="coordsys is required"):
        to_wgs84(116.4, 39.9, missing)


def test_unknown_coordsys_is_named():
    with pytest.raises(CoordSysError, match=r"unknown coordsys 'bd09mc'; use one of wgs84"):
        parse_coordsys("bd09mc")
    assert issubclass(CoordSysError, ValueError)

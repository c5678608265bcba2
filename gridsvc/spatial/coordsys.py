"""Coordinate systems: parse the ``coordsys`` every coordinate comes with, check it, convert it.

Systems (``COORDSYS``):

- ``wgs84``: GPS, EPSG:4326. Storage is wgs84.
- ``cgcs2000``: China's official CRS, EPSG:4490. Taken as identical to wgs84: the two differ
  by a few centimetres, far below what placing a home in a building needs.
- ``gcj02``: the obfuscated "Mars" system of Chinese web and phone maps (Amap, Tencent, WeChat
  ``type: 'gcj02'``); offsets of up to several hundred metres from wgs84.
- ``bd09``: Baidu's lon/lat (``bd09ll``), a second shift applied on top of gcj02.

Forward transforms (wgs84 -> gcj02 -> bd09) are the published formulas (eviltransform,
coordtransform). Their inverses have no closed form: they are solved by fixed-point iteration
of the forward transform until the forward of the result reproduces the input to below
``INVERSE_TOL_DEG`` (1e-9 degrees, about 0.1 mm), at most ``INVERSE_MAX_ITER`` steps (three or
four suffice). The common one-step approximation is metres off and is not used.

Extents: gcj02 and bd09 are defined only inside the rough box GCJ-02 itself uses
(``GCJ02_BOX``, see ``out_of_china``); the conversion functions raise outside it instead of
returning the point unshifted. Every point the service accepts must also lie in China's
territorial extent (``SERVICE_EXTENT``, see ``check_in_china``), whatever its system.

Every function takes floats or, vectorised, NumPy arrays; one formula serves both (``math``
for scalars, ``numpy`` for arrays).
"""

from __future__ import annotations

import math
from types import SimpleNamespace
from typing import Any

import numpy as np

COORDSYS = ("wgs84", "gcj02", "bd09", "cgcs2000")

# Spellings accepted for each system, compared after lower-casing and removing " ", "-", "_".
_ALIASES = {
    "wgs84": "wgs84",
    "epsg:4326": "wgs84",
    "epsg4326": "wgs84",
    "4326": "wgs84",
    "gcj02": "gcj02",
    "bd09": "bd09",
    "bd09ll": "bd09",
    "cgcs2000": "cgcs2000",
    "epsg:4490": "cgcs2000",
    "epsg4490": "cgcs2000",
    "4490": "cgcs2000",
}

# (min lon, min lat, max lon, max lat)
GCJ02_BOX = (72.004, 0.8293, 137.8347, 55.8271)
# China's extremes (Pamirs 73°30'E, Heilong-Wusuli confluence 135°05'E, Zengmu Ansha 3°52'N,
# Mohe 53°33'N), rounded outward. Strictly inside GCJ02_BOX.
SERVICE_EXTENT = (73.4, 3.8, 135.1, 53.6)

INVERSE_TOL_DEG = 1e-9
INVERSE_MAX_ITER = 30
_BLOCK = 8192  # points per block in the vectorised conversions

_A = 6378245.0  # Krasovsky 1940 semi-major axis, as in the GCJ-02 formulas
_EE = 0.00669342162296594323  # its first eccentricity squared
_X_PI = math.pi * 3000.0 / 180.0  # BD-09's angular frequency

_MATH = SimpleNamespace(sin=math.sin, cos=math.cos, sqrt=math.sqrt, atan2=math.atan2)
_NUMPY = SimpleNamespace(sin=np.sin, cos=np.cos, sqrt=np.sqrt, atan2=np.arctan2)

Coord = Any  # a float or a NumPy array of floats


class CoordSysError(ValueError):
    """A coordinate system or coordinate that cannot be accepted; ``index`` names the point."""

    def __init__(self, message: str, *, index: int | None = None) -> None:
        super().__init__(message)
        self.index = index


def parse_coordsys(value: str | None) -> str:
    """The canonical name (one of ``COORDSYS``) for ``value``; aliases and any case accepted."""
    if value is None or not str(value).strip():
        raise CoordSysError(
            f"coordsys is required: say which system the coordinates are in, "
            f"one of {', '.join(COORDSYS)}"
        )
    key = str(value).strip().lower().replace(" ", "").replace("-", "").replace("_", "")
    try:
        return _ALIASES[key]
    except KeyError:
        raise CoordSysError(
            f"unknown coordsys {value!r}; use one of {', '.join(COORDSYS)}"
        ) from None


# --- extents and validation -------------------------------------------------------------------


def _inside(lon: Coord, lat: Coord, box: tuple[float, float, float, float]) -> Coord:
    """True where the point is in ``box``; False for NaN."""
    min_lon, min_lat, max_lon, max_lat = box
    if isinstance(lon, np.ndarray) or isinstance(lat, np.ndarray):
        return (lon >= min_lon) & (lon <= max_lon) & (lat >= min_lat) & (lat <= max_lat)
    return min_lon <= lon <= max_lon and min_lat <= lat <= max_lat


def out_of_china(lon: Coord, lat: Coord) -> Coord:
    """GCJ-02's own test: True where the point is outside ``GCJ02_BOX`` (or NaN)."""
    inside = _inside(lon, lat, GCJ02_BOX)
    return ~inside if isinstance(inside, np.ndarray) else not inside


def point_problem(lon: float, lat: float) -> str | None:
    """Why the service refuses the point ``(lon, lat)``, or None if it accepts it."""
    if not (math.isfinite(lon) and math.isfinite(lat)):
        return f"lon and lat must be finite numbers, got lon={lon}, lat={lat}"
    if not -90.0 <= lat <= 90.0:
        hint = "; did you swap lon and lat?" if -90.0 <= lon <= 90.0 and abs(lat) <= 180 else ""
        return f"lat={lat} is out of range: lat must be between -90 and 90{hint}"
    if not -180.0 <= lon <= 180.0:
        return f"lon={lon} is out of range: lon must be between -180 and 180"
    if not _inside(lon, lat, SERVICE_EXTENT):
        hint = "; did you swap lon and lat?" if _inside(lat, lon, SERVICE_EXTENT) else ""
        min_lon, min_lat, max_lon, max_lat = SERVICE_EXTENT
        return (
            f"point lon={lon}, lat={lat} is outside China (lon {min_lon}..{max_lon}, "
            f"lat {min_lat}..{max_lat}); gridsvc serves points in China only{hint}"
        )
    return None


def check_in_china(lon: float, lat: float) -> None:
    """Raise ``CoordSysError`` unless the point is finite, in range and inside China."""
    problem = point_problem(lon, lat)
    if problem:
        raise CoordSysError(problem)


def invalid_mask(lon: Any, lat: Any) -> np.ndarray:
    """Vectorised ``point_problem``: True for every point the service refuses."""
    lon, lat = _as_arrays(lon, lat)
    return ~_inside(lon, lat, SERVICE_EXTENT)  # NaN and inf are outside too


# --- the transforms, one formula for math (scalars) and numpy (arrays) ------------------------


def _gcj02_offset(lon: Coord, lat: Coord, xp: SimpleNamespace) -> tuple[Coord, Coord]:
    """GCJ-02 minus WGS-84 at a wgs84 point, in degrees.

    The published formula, with sin(3a) = sin(a) * (3 - 4 sin(a)^2) giving sin(6 pi x) from
    sin(2 pi x) and sin(pi x) from sin(pi x / 3): sines dominate the cost of the vectorised
    inverse. The tests check it against a literal transcription to 1e-9 degrees.
    """
    pi = math.pi
    x, y = lon - 105.0, lat - 35.0
    sin_2x = xp.sin(2.0 * x * pi)
    sin_x3 = xp.sin(x / 3.0 * pi)
    sin_y3 = xp.sin(y / 3.0 * pi)
    waves = 20.0 * sin_2x * (3.0 - 4.0 * sin_2x * sin_2x) + 20.0 * sin_2x  # sin(6x), sin(2x)
    d_lat = -100.0 + 2.0 * x + 3.0 * y + 0.2 * y * y + 0.1 * x * y + 0.2 * xp.sqrt(abs(x))
    d_lat = d_lat + (
        waves
        + 20.0 * sin_y3 * (3.0 - 4.0 * sin_y3 * sin_y3) + 40.0 * sin_y3  # sin(y), sin(y/3)
        + 160.0 * xp.sin(y / 12.0 * pi) + 320.0 * xp.sin(y / 30.0 * pi)
    ) * 2.0 / 3.0
    d_lon = 300.0 + x + 2.0 * y + 0.1 * x * x + 0.1 * x * y + 0.1 * xp.sqrt(abs(x))
    d_lon = d_lon + (
        waves
        + 20.0 * sin_x3 * (3.0 - 4.0 * sin_x3 * sin_x3) + 40.0 * sin_x3  # sin(x), sin(x/3)
        + 150.0 * xp.sin(x / 12.0 * pi) + 300.0 * xp.sin(x / 30.0 * pi)
    ) * 2.0 / 3.0
    sin_lat = xp.sin(lat / 180.0 * pi)
    magic = 1.0 - _EE * sin_lat * sin_lat
    sqrt_magic = xp.sqrt(magic)
    cos_lat = xp.sqrt(1.0 - sin_lat * sin_lat)  # |lat| < 90 inside China
    d_lat = (d_lat * 180.0) / ((_A * (1.0 - _EE)) / (magic * sqrt_magic) * pi)
    d_lon = (d_lon * 180.0) / (_A / sqrt_magic * cos_lat * pi)
    return d_lon, d_lat


def _wgs84_to_gcj02(lon: Coord, lat: Coord, xp: SimpleNamespace) -> tuple[Coord, Coord]:
    d_lon, d_lat = _gcj02_offset(lon, lat, xp)
    return lon + d_lon, lat + d_lat


def _gcj02_to_bd09(lon: Coord, lat: Coord, xp: SimpleNamespace) -> tuple[Coord, Coord]:
    z = xp.sqrt(lon * lon + lat * lat) + 0.00002 * xp.sin(lat * _X_PI)
    theta = xp.atan2(lat, lon) + 0.000003 * xp.cos(lon * _X_PI)
    return z * xp.cos(theta) + 0.0065, z * xp.sin(theta) + 0.006


def _invert(forward, lon: Coord, lat: Coord, xp: SimpleNamespace) -> tuple[Coord, Coord]:
    """Solve ``forward(x, y, xp) == (lon, lat)`` by fixed-point iteration (all points at once)."""
    x, y = lon, lat
    for _ in range(INVERSE_MAX_ITER):
        fx, fy = forward(x, y, xp)
        err_x, err_y = fx - lon, fy - lat
        if _worst(err_x, err_y) < INVERSE_TOL_DEG:
            return x, y
        x, y = x - err_x, y - err_y
    raise CoordSysError(  # not reached for points inside GCJ02_BOX
        f"inverse transform did not converge within {INVERSE_MAX_ITER} iterations"
    )


def _worst(err_x: Coord, err_y: Coord) -> float:
    if isinstance(err_x, np.ndarray):
        if err_x.size == 0:
            return 0.0
        return float(max(np.max(np.abs(err_x)), np.max(np.abs(err_y))))
    return max(abs(err_x), abs(err_y))


def _gcj02_to_wgs84(lon: Coord, lat: Coord, xp: SimpleNamespace) -> tuple[Coord, Coord]:
    return _invert(_wgs84_to_gcj02, lon, lat, xp)


def _bd09_to_gcj02(lon: Coord, lat: Coord, xp: SimpleNamespace) -> tuple[Coord, Coord]:
    return _invert(_gcj02_to_bd09, lon, lat, xp)


# --- public conversions -----------------------------------------------------------------------


def _gcj_area(lon: Coord, lat: Coord) -> tuple[Coord, Coord, SimpleNamespace]:
    """Floats with ``math`` or arrays with ``numpy``; raise if any point is out of GCJ02_BOX."""
    if np.ndim(lon) == 0 and np.ndim(lat) == 0:
        lon, lat = float(lon), float(lat)
        if out_of_china(lon, lat):
            raise CoordSysError(_outside_gcj_message(lon, lat))
        return lon, lat, _MATH
    lon, lat = _as_arrays(lon, lat)
    outside = out_of_china(lon, lat)
    if outside.any():
        i = int(np.flatnonzero(outside)[0])
        raise CoordSysError(f"point at index {i}: {_outside_gcj_message(lon[i], lat[i])}", index=i)
    return lon, lat, _NUMPY


def _outside_gcj_message(lon: float, lat: float) -> str:
    min_lon, min_lat, max_lon, max_lat = GCJ02_BOX
    return (
        f"point lon={lon}, lat={lat} is outside China's GCJ-02 area (lon {min_lon}..{max_lon}, "
        f"lat {min_lat}..{max_lat}); gcj02 and bd09 exist only inside China"
    )


def wgs84_to_gcj02(lon: Coord, lat: Coord) -> tuple[Coord, Coord]:
    """wgs84 -> gcj02 (floats or arrays)."""
    return _wgs84_to_gcj02(*_gcj_area(lon, lat))


def gcj02_to_wgs84(lon: Coord, lat: Coord) -> tuple[Coord, Coord]:
    """gcj02 -> wgs84 by the exact iterative inverse (floats or arrays)."""
    return _gcj02_to_wgs84(*_gcj_area(lon, lat))


def gcj02_to_bd09(lon: Coord, lat: Coord) -> tuple[Coord, Coord]:
    """gcj02 -> bd09 (floats or arrays)."""
    return _gcj02_to_bd09(*_gcj_area(lon, lat))


def bd09_to_gcj02(lon: Coord, lat: Coord) -> tuple[Coord, Coord]:
    """bd09 -> gcj02 by the exact iterative inverse (floats or arrays)."""
    return _bd09_to_gcj02(*_gcj_area(lon, lat))


def _to_wgs84(lon: Coord, lat: Coord, system: str, xp: SimpleNamespace) -> tuple[Coord, Coord]:
    if system == "gcj02":
        return _gcj02_to_wgs84(lon, lat, xp)
    if system == "bd09":
        return _gcj02_to_wgs84(*_bd09_to_gcj02(lon, lat, xp), xp)
    return lon, lat  # wgs84, cgcs2000


def _from_wgs84(lon: Coord, lat: Coord, system: str, xp: SimpleNamespace) -> tuple[Coord, Coord]:
    if system == "gcj02":
        return _wgs84_to_gcj02(lon, lat, xp)
    if system == "bd09":
        return _gcj02_to_bd09(*_wgs84_to_gcj02(lon, lat, xp), xp)
    return lon, lat  # wgs84, cgcs2000


def to_wgs84(lon: float, lat: float, coordsys: str | None) -> tuple[float, float]:
    """One point in ``coordsys`` to wgs84; ``CoordSysError`` if it is bad or outside China."""
    system = parse_coordsys(coordsys)
    lon, lat = _as_float(lon, "lon"), _as_float(lat, "lat")
    check_in_china(lon, lat)
    return _to_wgs84(lon, lat, system, _MATH)


def from_wgs84(lon: float, lat: float, coordsys: str | None) -> tuple[float, float]:
    """One wgs84 point to ``coordsys`` (e.g. to draw it on an Amap or Baidu base map)."""
    system = parse_coordsys(coordsys)
    lon, lat = _as_float(lon, "lon"), _as_float(lat, "lat")
    check_in_china(lon, lat)
    return _from_wgs84(lon, lat, system, _MATH)


def to_wgs84_array(lon: Any, lat: Any, coordsys: str | None) -> tuple[np.ndarray, np.ndarray]:
    """Vectorised ``to_wgs84``; the error names the index of the first bad point.

    To report every bad point, call ``invalid_mask`` first and ``point_problem`` per bad one.
    """
    system = parse_coordsys(coordsys)
    return _in_blocks(_to_wgs84, *_checked_arrays(lon, lat), system)


def from_wgs84_array(lon: Any, lat: Any, coordsys: str | None) -> tuple[np.ndarray, np.ndarray]:
    """Vectorised ``from_wgs84``."""
    system = parse_coordsys(coordsys)
    return _in_blocks(_from_wgs84, *_checked_arrays(lon, lat), system)


def _in_blocks(convert, lon: np.ndarray, lat: np.ndarray, system: str):
    """Convert in blocks of ``_BLOCK`` points: temporaries stay in cache (about 1.5x faster)."""
    if system in ("wgs84", "cgcs2000"):
        return lon, lat
    out_lon, out_lat = np.empty_like(lon), np.empty_like(lat)
    for start in range(0, len(lon), _BLOCK):
        block = slice(start, start + _BLOCK)
        out_lon[block], out_lat[block] = convert(lon[block], lat[block], system, _NUMPY)
    return out_lon, out_lat


# --- input coercion ---------------------------------------------------------------------------


def _as_float(value: Any, name: str) -> float:
    try:
        return float(value)
    except (TypeError, ValueError, OverflowError):  # OverflowError: an int beyond any float
        raise CoordSysError(f"{name} must be a number, got {value!r}") from None


def _as_arrays(lon: Any, lat: Any) -> tuple[np.ndarray, np.ndarray]:
    """Two 1-D float64 arrays (new copies) of the same length."""
    try:
        lon_a = np.array(lon, dtype=np.float64, ndmin=1)
        lat_a = np.array(lat, dtype=np.float64, ndmin=1)
    except (TypeError, ValueError, OverflowError) as exc:
        raise CoordSysError(f"lon and lat must be arrays of numbers: {exc}") from None
    if lon_a.ndim != 1 or lon_a.shape != lat_a.shape:
        raise CoordSysError(
            f"lon and lat must be 1-D arrays of the same length, got shapes "
            f"{lon_a.shape} and {lat_a.shape}"
        )
    return lon_a, lat_a


def _checked_arrays(lon: Any, lat: Any) -> tuple[np.ndarray, np.ndarray]:
    lon, lat = _as_arrays(lon, lat)
    bad = ~_inside(lon, lat, SERVICE_EXTENT)
    if bad.any():
        i = int(np.flatnonzero(bad)[0])
        problem = point_problem(float(lon[i]), float(lat[i]))
        raise CoordSysError(f"point at index {i}: {problem}", index=i)
    return lon, lat

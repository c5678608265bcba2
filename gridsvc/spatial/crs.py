"""Coordinate reference systems of boundary files: parse a ``--crs`` option, reproject to wgs84.

Storage is EPSG:4326. CGCS2000 (EPSG:4490) is taken as wgs84: same datum at the precision
that matters here, so no datum shift is applied. A projected CGCS2000 CRS (the Gauss-Krüger
zones EPSG:4513-4554 planners' GIS exports use) is inverse-projected to CGCS2000 lon/lat and
then labelled wgs84. Any other CRS is transformed with PROJ's best available transformation.
"""

from __future__ import annotations

import geopandas as gpd
import numpy as np
import shapely
from pyproj import CRS
from pyproj.exceptions import CRSError

WGS84 = "EPSG:4326"
CGCS2000 = "EPSG:4490"

# Plausible wgs84 lon/lat of Chinese boundaries (min lon, min lat, max lon, max lat), wider than
# coordsys.SERVICE_EXTENT: it only catches files whose CRS is missing or wrong.
CHINA_LONLAT_BOX = (73.0, 3.0, 136.0, 54.0)

_WORDS = {"wgs84": WGS84, "cgcs2000": CGCS2000}


def parse_crs(value: str) -> CRS:
    """The CRS named by a ``--crs`` option: ``EPSG:4549``, ``4549``, ``wgs84`` or ``cgcs2000``."""
    text = value.strip().lower().replace(" ", "").replace("-", "").replace("_", "")
    code = _WORDS.get(text, text)
    if code.isdigit():
        code = f"EPSG:{code}"
    if not code.upper().startswith("EPSG:"):
        raise ValueError(f"unknown CRS {value!r}: give an EPSG code (EPSG:4549 or 4549), "
                         "wgs84 or cgcs2000")
    try:
        return CRS.from_user_input(code.upper())
    except CRSError as exc:
        raise ValueError(f"unknown CRS {value!r}: {exc}") from exc


def crs_label(crs: CRS) -> str:
    """``EPSG:4549`` when the CRS has an EPSG code, else its name."""
    authority = crs.to_authority()
    return f"{authority[0]}:{authority[1]}" if authority else crs.name


def is_cgcs2000(crs: CRS) -> bool:
    """True for CGCS2000 itself and for every CRS projected from it."""
    geodetic = crs.geodetic_crs
    return geodetic is not None and geodetic.datum is not None and (
        geodetic.datum.name == "China 2000" or geodetic.to_epsg() == 4490
    )


def to_wgs84(geoms: gpd.GeoSeries) -> gpd.GeoSeries:
    """``geoms`` (with a CRS set) in EPSG:4326, treating CGCS2000 as wgs84."""
    if geoms.crs is None:
        raise ValueError("geometries have no CRS")
    if is_cgcs2000(geoms.crs):
        if not geoms.crs.is_geographic:
            geoms = geoms.to_crs(geoms.crs.geodetic_crs)
        return geoms.set_crs(WGS84, allow_override=True)
    return geoms.to_crs(WGS84)


def outside_china(geoms: gpd.GeoSeries) -> np.ndarray:
    """Per geometry: True where a wgs84 geometry has coordinates outside ``CHINA_LONLAT_BOX``
    (or non-finite ones); empty and missing geometries are False."""
    values = np.asarray(geoms.array, dtype=object)
    bounds = shapely.bounds(values)
    present = ~shapely.is_missing(values) & ~shapely.is_empty(values)
    min_lon, min_lat, max_lon, max_lat = CHINA_LONLAT_BOX
    with np.errstate(invalid="ignore"):
        inside = (
            np.isfinite(bounds).all(axis=1)
            & (bounds[:, 0] >= min_lon) & (bounds[:, 2] <= max_lon)
            & (bounds[:, 1] >= min_lat) & (bounds[:, 3] <= max_lat)
        )
    return present & ~inside

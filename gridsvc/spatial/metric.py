"""Metric coordinates for areas and distances: CGCS2000 3-degree Gauss-Krüger zones.

Storage is wgs84 (EPSG:4326). For metres and square metres we project to the CGCS2000
3-degree Gauss-Krüger zone whose central meridian is nearest the data: EPSG:4534 (CM 75E) to
EPSG:4554 (CM 135E), ``epsg = 4534 + (cm - 75) / 3``. These are the "CM" variants (false
easting 500 km, no zone prefix). Within 1.5 degrees of the central meridian the scale error
stays below about 0.03 %, so one zone serves a whole city. CGCS2000 and WGS84 agree within
centimetres here, so the transformation is taken as a datum no-op.

Transformers are built once per (source, target) pair and cached; pyproj transformers are
thread-safe (pyproj >= 3.1). Everything is vectorised: geometry arrays go through
``shapely.transform`` with the transformer applied to whole coordinate arrays.
"""

from __future__ import annotations

import math
from functools import lru_cache
from typing import Any

import numpy as np
import shapely
from pyproj import Transformer
from shapely.geometry.base import BaseGeometry

WGS84_EPSG = 4326
FIRST_ZONE_EPSG = 4534  # CGCS2000 / 3-degree Gauss-Kruger CM 75E
FIRST_ZONE_CM = 75
LAST_ZONE_CM = 135
ZONE_WIDTH = 3


def metric_epsg_for(lon: float) -> int:
    """The EPSG code of the CGCS2000 3-degree Gauss-Krüger zone nearest a wgs84 longitude.

    Raises ValueError for a longitude outside the zones' span (73.5E to 136.5E), which
    means the data is not in China or not in wgs84 degrees.
    """
    low = FIRST_ZONE_CM - ZONE_WIDTH / 2
    high = LAST_ZONE_CM + ZONE_WIDTH / 2
    if not math.isfinite(lon) or not low <= lon <= high:
        raise ValueError(
            f"longitude {lon} (wgs84) is outside the CGCS2000 Gauss-Krüger zones "
            f"({low}E to {high}E): is the data in China and in degrees?"
        )
    cm = min(max(round(lon / ZONE_WIDTH) * ZONE_WIDTH, FIRST_ZONE_CM), LAST_ZONE_CM)
    return FIRST_ZONE_EPSG + (cm - FIRST_ZONE_CM) // ZONE_WIDTH


def metric_epsg_for_geoms(geoms: np.ndarray | BaseGeometry) -> int:
    """The zone for the centre of the geometries' total bounds (wgs84)."""
    xmin, _, xmax, _ = shapely.total_bounds(geoms)
    return metric_epsg_for((xmin + xmax) / 2)


@lru_cache(maxsize=64)
def transformer(src_epsg: int, dst_epsg: int) -> Transformer:
    """A cached lon/lat-ordered (always_xy) transformer between two EPSG codes."""
    return Transformer.from_crs(src_epsg, dst_epsg, always_xy=True)


def lonlat_to_metric(
    lon: np.ndarray | float, lat: np.ndarray | float, epsg: int
) -> tuple[Any, Any]:
    """Project wgs84 lon/lat arrays (or one point's floats) to easting/northing metres in zone
    ``epsg``: arrays for arrays, floats for floats."""
    return transformer(WGS84_EPSG, epsg).transform(lon, lat)


def _reproject(geoms, src_epsg: int, dst_epsg: int):
    tr = transformer(src_epsg, dst_epsg)

    def apply(xy: np.ndarray) -> np.ndarray:
        x, y = tr.transform(xy[:, 0], xy[:, 1])
        return np.column_stack([x, y])

    return shapely.transform(geoms, apply)


def to_metric(geoms: np.ndarray | BaseGeometry, epsg: int) -> np.ndarray | BaseGeometry:
    """Project wgs84 geometries (one or an array; None stays None) to zone ``epsg``, 2D."""
    return _reproject(geoms, WGS84_EPSG, epsg)


def to_wgs84(geoms: np.ndarray | BaseGeometry, epsg: int) -> np.ndarray | BaseGeometry:
    """Project geometries from zone ``epsg`` back to wgs84 lon/lat, 2D."""
    return _reproject(geoms, epsg, WGS84_EPSG)


def area_m2(geom: BaseGeometry) -> float:
    """Area in square metres of one wgs84 geometry, in the zone nearest its centre."""
    if geom is None or geom.is_empty:
        return 0.0
    return float(shapely.area(to_metric(geom, metric_epsg_for_geoms(geom))))

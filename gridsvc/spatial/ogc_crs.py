"""Coordinate reference systems of the OGC API (Features Part 2), projected with pyproj.

(``gridsvc.spatial.crs`` is the boundary files' ``--crs``; this module is what ``/ogc``
answers in and accepts, named by OGC URIs.)

Stored geometries are wgs84 lon/lat (``storage.models.SRID`` 4326 in x=lon, y=lat order),
which is exactly ``CRS84``. The other systems offered (``SUPPORTED``):

- ``EPSG:4326`` (WGS 84) and ``EPSG:4490`` (CGCS2000): geographic, **lat, lon** order as EPSG
  defines them (OGC API Part 2 and every client that reads it, GDAL and QGIS included, use the
  authority's axis order). CGCS2000 and wgs84 are taken as identical, as
  ``gridsvc.spatial.coordsys`` does: they differ by centimetres.
- ``EPSG:4513``-``EPSG:4533`` (CGCS2000 / 3-degree Gauss-Krüger zones 25-45, the easting
  prefixed with the zone number) and ``EPSG:4534``-``EPSG:4554`` (the same zones by central
  meridian 75°E-135°E, no prefix): metres, **northing, easting** order (EPSG's X north, Y
  east), as Chinese survey drawings give them.

A CRS is named by its OGC URI (``http://www.opengis.net/def/crs/EPSG/0/4549``, the form used in
answers), and also accepted as ``EPSG:4549``, ``[EPSG:4549]`` (a safe CURIE), the OGC URN
(``urn:ogc:def:crs:EPSG::4549``), ``https`` URIs, ``CRS84``/``OGC:CRS84``, with or without the
angle brackets of the ``Content-Crs`` header. Anything else raises ``UnsupportedCrs``.

A point outside a Gauss-Krüger zone's area is still projected (the formulas go on; the
distortion grows away from the central meridian): a client that picks a zone picks it.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from functools import lru_cache
from typing import Any

import numpy as np
import shapely
from pyproj import Transformer
from shapely.geometry.base import BaseGeometry

CRS84 = "http://www.opengis.net/def/crs/OGC/1.3/CRS84"
EPSG_URI = "http://www.opengis.net/def/crs/EPSG/0/"
GEOGRAPHIC_EPSG = (4326, 4490)
GK_ZONE_EPSG = tuple(range(4513, 4534))  # zones 25-45, easting prefixed with the zone
GK_CM_EPSG = tuple(range(4534, 4555))  # central meridians 75°E-135°E
SUPPORTED_EPSG = (*GEOGRAPHIC_EPSG, *GK_ZONE_EPSG, *GK_CM_EPSG)
SUPPORTED = (CRS84, *(f"{EPSG_URI}{code}" for code in SUPPORTED_EPSG))

_EPSG_FORMS = (
    re.compile(r"https?://www\.opengis\.net/def/crs/epsg/0/(\d+)"),
    re.compile(r"\[?epsg:(\d+)\]?"),
    re.compile(r"urn:ogc:def:crs:epsg:[\d.]*:(\d+)"),
)
_CRS84_FORMS = re.compile(
    r"https?://www\.opengis\.net/def/crs/ogc/1\.3/crs84|\[?(ogc:)?crs84\]?"
    r"|urn:ogc:def:crs:ogc:1\.3:crs84|urn:ogc:def:crs:ogc::crs84")


class UnsupportedCrs(ValueError):
    """A CRS that is not one of ``SUPPORTED`` (the message lists them in short)."""


def supported_summary() -> str:
    """The supported systems in one line, for error messages."""
    return (f"{CRS84} (lon, lat), {EPSG_URI}4326 and {EPSG_URI}4490 (lat, lon), "
            f"{EPSG_URI}4513 to {EPSG_URI}4554 (CGCS2000 3-degree Gauss-Krüger zones, "
            "northing, easting)")


def parse_crs(value: str) -> str:
    """The canonical URI (one of ``SUPPORTED``) of a CRS named in any accepted form."""
    text = value.strip()
    if text.startswith("<") and text.endswith(">"):
        text = text[1:-1].strip()
    folded = text.lower().rstrip("/")
    if _CRS84_FORMS.fullmatch(folded):
        return CRS84
    for form in _EPSG_FORMS:
        found = form.fullmatch(folded)
        if found and int(found[1]) in SUPPORTED_EPSG:
            return f"{EPSG_URI}{int(found[1])}"
    raise UnsupportedCrs(f"the CRS {value!r} is not supported; supported are "
                         f"{supported_summary()}")


def epsg_of(uri: str) -> int | None:
    """The EPSG code of a canonical URI (None for CRS84)."""
    return None if uri == CRS84 else int(uri.rsplit("/", 1)[1])


@lru_cache(maxsize=64)
def _projection(epsg: int) -> Transformer:
    """CGCS2000 lon/lat -> the zone's easting, northing (x, y order; swapped by callers)."""
    return Transformer.from_crs("EPSG:4490", f"EPSG:{epsg}", always_xy=True)


def _coords_fn(source: str, target: str) -> Callable[[Any, Any], tuple[Any, Any]]:
    """Coordinates in ``source`` axis order to ``target`` axis order; one side is CRS84.

    No datum shift: CRS84, EPSG:4326 and CGCS2000 are one datum here (as the boundary import,
    ``gridsvc.spatial.crs``, treats them), so a geographic system only swaps to lat, lon and a
    Gauss-Krüger zone is CGCS2000's projection, swapped to northing, easting."""
    other = target if source == CRS84 else source
    epsg = epsg_of(other)
    forward = source == CRS84
    if epsg is None:
        return lambda x, y: (x, y)
    if epsg in GEOGRAPHIC_EPSG:
        return lambda x, y: (y, x)
    projection = _projection(epsg)

    def convert(x: Any, y: Any) -> tuple[Any, Any]:
        x, y = np.asarray(x, dtype=float), np.asarray(y, dtype=float)
        if forward:  # lon, lat -> northing, easting
            easting, northing = projection.transform(x, y)
            return northing, easting
        lon, lat = projection.transform(y, x, direction="INVERSE")  # (northing, easting) in
        return lon, lat
    return convert


def _finite(geom: BaseGeometry, target: str) -> BaseGeometry:
    coords = shapely.get_coordinates(geom)
    if coords.size and not np.isfinite(coords).all():
        raise UnsupportedCrs(f"the geometry cannot be expressed in {target}: it lies outside "
                             "the area that CRS can project")
    return geom


def from_crs84(geom: BaseGeometry | None, target: str) -> BaseGeometry | None:
    """A stored (CRS84) geometry in ``target`` (a canonical URI)."""
    if geom is None or target == CRS84:
        return geom
    return _finite(shapely.transform(geom, _coords_fn(CRS84, target), interleaved=False),
                   target)


def to_crs84(geom: BaseGeometry, source: str) -> BaseGeometry:
    """A geometry given in ``source`` (a canonical URI) as CRS84 lon/lat."""
    if source == CRS84:
        return geom
    return _finite(shapely.transform(geom, _coords_fn(source, CRS84), interleaved=False),
                   CRS84)


def _bounds(bbox: tuple[float, float, float, float], source: str,
            target: str) -> tuple[float, float, float, float]:
    """The bbox (lower corner, upper corner in ``source`` axis order) in ``target``: the
    bounds of its outline densified to 21 points a side, so a curved image is covered."""
    x0, y0, x1, y1 = bbox
    steps = np.linspace(0.0, 1.0, 21)
    xs = np.concatenate([x0 + (x1 - x0) * steps, np.full(21, x1),
                         x1 - (x1 - x0) * steps, np.full(21, x0)])
    ys = np.concatenate([np.full(21, y0), y0 + (y1 - y0) * steps,
                         np.full(21, y1), y1 - (y1 - y0) * steps])
    out_x, out_y = _coords_fn(source, target)(xs, ys)
    out_x, out_y = np.asarray(out_x, dtype=float), np.asarray(out_y, dtype=float)
    if not (np.isfinite(out_x).all() and np.isfinite(out_y).all()):
        raise UnsupportedCrs(f"the bbox {list(bbox)} lies outside the area {source} can "
                             "express")
    return float(out_x.min()), float(out_y.min()), float(out_x.max()), float(out_y.max())


def bbox_to_crs84(bbox: tuple[float, float, float, float],
                  source: str) -> tuple[float, float, float, float]:
    """A bbox given in ``source`` axis order (lower corner, upper corner) as a CRS84 bbox
    covering it."""
    return bbox if source == CRS84 else _bounds(bbox, source, CRS84)


def bbox_from_crs84(bbox: tuple[float, float, float, float],
                    target: str) -> tuple[float, float, float, float]:
    """A CRS84 bbox in ``target``'s axis order, covering it."""
    return bbox if target == CRS84 else _bounds(bbox, CRS84, target)

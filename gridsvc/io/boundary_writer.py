"""Write ``BoundaryRecord`` objects as GeoJSON, GeoPackage or zipped Shapefile.

Everything is written in EPSG:4326 and UTF-8, in the interchange schema of
``boundaries/SCHEMA.md``, so that ``read_boundaries`` gives the same records back:

- GeoJSON: one FeatureCollection, mixed geometry types; ``service_area`` as WKT.
- GeoPackage: one layer per level; ``service_area`` as WKT.
- Shapefile: a ``.zip`` with one shapefile per level (split by geometry kind if a level mixes
  points and polygons), a ``.cpg`` saying UTF-8, ``parent_code`` cut to ``parent_cod``; service
  areas, too long for a DBF text field, go to a polygon layer ``<layer>_service_area``.

Free properties become extra columns (in a Shapefile, names longer than 10 bytes are cut).
"""

from __future__ import annotations

import json
import re
import tempfile
import zipfile
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import geopandas as gpd
import pandas as pd
import pyogrio
import shapely

from gridsvc.io.fieldmap import SCHEMA_FIELDS, SERVICE_AREA_LAYER, SHAPEFILE_COLUMNS, normal
from gridsvc.io.records import BoundaryRecord
from gridsvc.spatial.crs import WGS84

FORMATS = ("geojson", "gpkg", "shp")
_BY_SUFFIX = {".geojson": "geojson", ".json": "geojson", ".gpkg": "gpkg", ".zip": "shp",
              ".shp": "shp"}
_KINDS = {"Point": "point", "MultiPoint": "point", "LineString": "line",
          "MultiLineString": "line", "Polygon": "polygon", "MultiPolygon": "polygon"}


def write_records(
    records: Iterable[BoundaryRecord],
    path: Path,
    fmt: str | None = None,
    *,
    layer_names: dict[int, str] | None = None,
) -> Path:
    """Write records to ``path``; returns the file written.

    ``fmt`` is ``geojson``, ``gpkg`` or ``shp``, else inferred from the suffix (``.geojson``,
    ``.json``, ``.gpkg``, ``.zip``, ``.shp``). A Shapefile is always a zip: ``x.shp`` writes
    ``x.zip``. ``layer_names`` gives the layer name per level (e.g. ``{1: "level1_street"}``);
    the default is ``level<N>``.
    """
    path = Path(path)
    fmt = fmt or _BY_SUFFIX.get(path.suffix.lower())
    if fmt not in FORMATS:
        raise ValueError(f"cannot tell the format of {path.name}; give one of {FORMATS}")
    records = list(records)
    if fmt == "geojson":
        path.unlink(missing_ok=True)
        _write(_frame(records, shapefile=False), path, "GeoJSON", layer=path.stem)
        return path
    groups = _group(records, layer_names or {}, split_kinds=fmt == "shp")
    if fmt == "gpkg":
        path.unlink(missing_ok=True)
        for name, group in groups.items():
            _write(_frame(group, shapefile=False), path, "GPKG", layer=name)
        return path
    return _write_shapefiles(groups, path.with_suffix(".zip"))


def _write_shapefiles(groups: dict[str, list[BoundaryRecord]], target: Path) -> Path:
    with tempfile.TemporaryDirectory(prefix="gridsvc-shp-") as tmp:
        folder = Path(tmp)
        for name, group in groups.items():
            _write(_frame(group, shapefile=True), folder / f"{name}.shp", "ESRI Shapefile")
            areas = [r for r in group if r.service_area is not None]
            if areas:
                frame = gpd.GeoDataFrame({"code": [r.code for r in areas]},
                                         geometry=[r.service_area for r in areas], crs=WGS84)
                _write(frame, folder / f"{name}{SERVICE_AREA_LAYER}.shp", "ESRI Shapefile")
        target.unlink(missing_ok=True)
        with zipfile.ZipFile(target, "w", zipfile.ZIP_DEFLATED) as zf:
            for file in sorted(folder.iterdir()):
                zf.write(file, file.name)
    return target


def _write(frame: gpd.GeoDataFrame, path: Path, driver: str, **options: Any) -> None:
    # No promotion to multi-types, so a Polygon comes back a Polygon; mixed kinds make an
    # "Unknown" (any geometry) layer where the format allows it.
    pyogrio.write_dataframe(frame, path, driver=driver, encoding="UTF-8",
                            promote_to_multi=False, **options)


def _group(records: list[BoundaryRecord], layer_names: dict[int, str],
           split_kinds: bool) -> dict[str, list[BoundaryRecord]]:
    """Records per layer: one layer per level (and per geometry kind for Shapefiles)."""
    by_level: dict[Any, dict[str, list[BoundaryRecord]]] = {}
    for rec in records:
        kind = _KINDS.get(rec.geometry.geom_type, "other") if rec.geometry is not None else ""
        by_level.setdefault(rec.level, {}).setdefault(kind if split_kinds else "", []).append(rec)
    groups: dict[str, list[BoundaryRecord]] = {}
    for level in sorted(by_level, key=lambda lv: (not isinstance(lv, int), str(lv))):
        base = layer_names.get(level) if isinstance(level, int) else None
        base = base or (f"level{level}" if isinstance(level, int)
                        else "level_" + re.sub(r"\W+", "_", str(level)))
        kinds = by_level[level]
        if "" in kinds and len(kinds) > 1:  # no geometry: put with the first kind
            missing = kinds.pop("")
            next(iter(kinds.values())).extend(missing)
        for kind, group in kinds.items():
            groups[f"{base}_{kind}" if len(kinds) > 1 else base] = group
    return groups or {"boundaries": []}


def _frame(records: list[BoundaryRecord], shapefile: bool) -> gpd.GeoDataFrame:
    def column(schema_field: str) -> str:
        return SHAPEFILE_COLUMNS.get(schema_field, schema_field) if shapefile else schema_field

    levels = [r.level for r in records]
    data: dict[str, Any] = {
        "code": [r.code for r in records],
        "name": [r.name for r in records],
        "level": _typed(levels),
        column("parent_code"): [r.parent_code for r in records],
        "leader": [r.leader for r in records],
        "phone": [r.phone for r in records],
        "households": pd.array([r.households for r in records], dtype="Int64"),
        "address": [r.address for r in records],
    }
    if not shapefile and any(r.service_area is not None for r in records):
        data["service_area"] = [
            shapely.to_wkt(r.service_area, rounding_precision=-1)
            if r.service_area is not None else None for r in records]
    taken = {normal(f) for f in SCHEMA_FIELDS} | {normal(c) for c in data}
    keys = list(dict.fromkeys(k for r in records for k in r.properties))
    for key in keys:
        if normal(key) in taken:
            raise ValueError(f"free property {key!r} clashes with the schema column of that "
                             "name; rename it")
        data[key] = _typed([r.properties.get(key) for r in records])
    return gpd.GeoDataFrame(data, geometry=[r.geometry for r in records], crs=WGS84)


def _typed(values: list[Any]) -> Any:
    """A column for values of one JSON type: nullable integers, floats, booleans or text."""
    present = [v for v in values if v is not None]
    if all(isinstance(v, int) and not isinstance(v, bool) for v in present):
        return pd.array(values, dtype="Int64")
    if all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in present):
        return pd.array(values, dtype="Float64")
    if all(isinstance(v, bool) for v in present):
        return pd.array(values, dtype="boolean")
    return [v if v is None or isinstance(v, str)
            else json.dumps(v, ensure_ascii=False) if isinstance(v, (dict, list)) else str(v)
            for v in values]

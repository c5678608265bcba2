"""Read boundary files into ``BoundaryRecord`` objects; write records back out.

Formats: GeoJSON (``.geojson``/``.json``), GeoPackage (``.gpkg``, every layer), Shapefile
(``.shp``) and ``.zip`` archives holding any of these. The interchange schema, the CRS and
encoding rules and the recognised column names are described in ``boundaries/SCHEMA.md``.

Reading never stops at a bad row: each one becomes a ``Problem`` (with layer, row and field)
and the row is left out of ``records``; ``records`` holds only rows that read cleanly. Whole
layers are skipped when they cannot be read at all (no CRS, a required column missing). Errors
about the file itself (missing, unreadable, unsafe archive, bad option) raise
``BoundaryFileError``.
"""

from __future__ import annotations

import math
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import geopandas as gpd
import numpy as np
import pandas as pd
import pyogrio
import shapely
from pyproj import CRS

from gridsvc.io import encoding as enc
from gridsvc.io.archive import ZipLimits, extract_zip
from gridsvc.io.boundary_writer import write_records
from gridsvc.io.errors import BoundaryFileError, ZipLimitExceeded
from gridsvc.io.fieldmap import (
    ALIASES,
    REQUIRED_FIELDS,
    SERVICE_AREA_LAYER,
    ColumnMatch,
    check_field_map,
    match_columns,
)
from gridsvc.io.records import BoundaryRecord
from gridsvc.spatial.crs import crs_label, outside_china, parse_crs, to_wgs84
from gridsvc.validation.report import Problem

READ_SUFFIXES = {".geojson", ".json", ".gpkg", ".shp"}

__all__ = ["BoundaryFileError", "ReadResult", "ZipLimitExceeded", "ZipLimits",
           "read_boundaries", "write_records"]


@dataclass
class ReadResult:
    records: list[BoundaryRecord]
    problems: list[Problem]
    source_crs: str | None  # the CRS the file declares (or --crs), e.g. "EPSG:4549"
    layers: list[str]  # every layer read, as named in records and problems

    @property
    def ok(self) -> bool:
        return not any(p.severity == "error" for p in self.problems)


@dataclass(frozen=True)
class _Options:
    codec: str | None  # explicit --encoding, as a Python codec
    encoding: str | None  # as the user wrote it, for messages
    field_map: dict[str, str]
    crs: CRS | None


def read_boundaries(
    path: Path,
    *,
    encoding: str | None = None,
    field_map: dict[str, str] | None = None,
    crs: str | None = None,
    zip_limits: ZipLimits | None = None,
) -> ReadResult:
    """Read every layer of a boundary file; geometries come back in EPSG:4326.

    ``encoding`` applies to Shapefiles without a ``.cpg``; ``field_map`` maps schema fields to
    file columns (``{"code": "GRID_ID"}``); ``crs`` (``EPSG:4549``, ``4549``, ``wgs84``,
    ``cgcs2000``) is used when the file declares none, and overrides a declared one. A zip is
    unpacked within ``zip_limits`` (default ``ZipLimits()``; past one: ``ZipLimitExceeded``).
    """
    path = Path(path)
    try:
        options = _Options(
            codec=enc.codec_name(encoding) if encoding else None,
            encoding=encoding,
            field_map=check_field_map(field_map),
            crs=parse_crs(crs) if crs else None,
        )
    except ValueError as exc:
        raise BoundaryFileError(str(exc)) from exc
    if not path.is_file():
        raise BoundaryFileError(f"{path}: no such file")
    result = ReadResult([], [], None, [])
    crs_seen: list[str] = []
    areas: list[tuple[str, int, str, Any]] = []  # (layer, row, code, polygon)
    with _sources(path, zip_limits or ZipLimits()) as sources:
        for source, prefix in sources:
            for layer in _layers(source):
                label = layer if source.suffix.lower() == ".gpkg" else prefix
                is_area = label.lower().removesuffix(".shp").endswith(SERVICE_AREA_LAYER)
                result.layers.append(label)
                frame = _read_layer(source, layer, label, options, result.problems,
                                    required=("code",) if is_area else REQUIRED_FIELDS)
                if frame is None:
                    continue
                if frame.crs_label not in crs_seen:
                    crs_seen.append(frame.crs_label)
                if is_area:
                    areas.extend(_service_areas(frame, label, result.problems))
                else:
                    result.records.extend(_records(frame, label, result.problems))
    _attach_service_areas(result, areas)
    result.source_crs = ", ".join(crs_seen) or None
    return result


# --- files and layers -------------------------------------------------------------------------


@contextmanager
def _sources(path: Path, zip_limits: ZipLimits) -> Iterator[list[tuple[Path, str]]]:
    """The data files to read, each with the name it goes by in problems."""
    suffix = path.suffix.lower()
    if suffix in READ_SUFFIXES:
        yield [(path, path.name)]
    elif suffix == ".zip":
        with tempfile.TemporaryDirectory(prefix="gridsvc-zip-") as tmp:
            yield _extract(path, Path(tmp), zip_limits)
    else:
        raise BoundaryFileError(
            f"{path}: unsupported file type {path.suffix!r}; use .geojson, .json, .gpkg, "
            ".shp or a .zip holding Shapefiles, a GeoPackage or GeoJSON")


def _extract(archive: Path, folder: Path, limits: ZipLimits) -> list[tuple[Path, str]]:
    """Unpack a zip safely and within ``limits`` (``gridsvc.io.archive``); its data files."""
    extract_zip(archive, folder, limits)
    found = sorted(
        p for p in folder.rglob("*")
        if p.is_file() and p.suffix.lower() in READ_SUFFIXES
        and "__MACOSX" not in p.parts and not p.name.startswith("._")
    )
    if not found:
        raise BoundaryFileError(f"{archive.name}: holds no .shp, .gpkg, .geojson or .json file")
    return [(p, p.relative_to(folder).as_posix()) for p in found]


def _layers(source: Path) -> list[str]:
    try:
        return [str(name) for name, _kind in pyogrio.list_layers(source)]
    except Exception as exc:
        raise BoundaryFileError(f"{source.name}: cannot be read as a GIS file ({exc})") from exc


@dataclass
class _Frame:
    """One layer as read: wgs84 geometries, decoded text, matched columns."""

    data: gpd.GeoDataFrame
    match: ColumnMatch
    crs_label: str
    source_bounds: np.ndarray  # per row (minx, miny, maxx, maxy) in the file's CRS


def _read_layer(
    source: Path, layer: str, label: str, options: _Options, problems: list[Problem],
    required: tuple[str, ...],
) -> _Frame | None:
    is_shp = source.suffix.lower() == ".shp"
    try:
        # Shapefile text is read as Latin-1 to get its bytes back unchanged; decoded below.
        data = pyogrio.read_dataframe(source, layer=layer, encoding="latin1" if is_shp else None)
    except Exception as exc:
        raise BoundaryFileError(f"{label}: cannot read layer {layer!r} ({exc})") from exc
    if not isinstance(data, gpd.GeoDataFrame):
        problems.append(Problem("warning", "no-geometry-column",
                                f"Layer {label} has no geometry column; it was skipped.",
                                layer=label))
        return None
    first_problem = len(problems)
    if is_shp:
        data = enc.decode_shapefile(data, source, label, options.codec, options.encoding,
                                    problems)
    enc.check_garbled(data, label, problems)
    declared = data.crs
    if options.crs is not None:
        if declared is not None and not declared.equals(options.crs):
            problems.append(Problem(
                "warning", "crs-overridden",
                f"Layer {label} declares {crs_label(declared)}; read as "
                f"{crs_label(options.crs)} as --crs asks.", layer=label))
        data = data.set_crs(options.crs, allow_override=True)
    elif declared is None:
        problems.append(Problem(
            "error", "missing-crs",
            f"Layer {label} does not declare its coordinate system (no .prj or CRS); "
            "declare the CRS with --crs, e.g. --crs EPSG:4549 or --crs cgcs2000.",
            layer=label))
        return None
    source_crs = data.crs
    source_bounds = shapely.bounds(np.asarray(data.geometry.array, dtype=object))
    data = data.set_geometry(to_wgs84(data.geometry))
    columns = [str(c) for c in data.columns if c != data.geometry.name]
    match = match_columns(columns, options.field_map, required)
    schema_field = {column: name for name, column in match.columns.items()}
    for problem in problems[first_problem:]:  # text problems name schema fields, not columns
        problem.field = schema_field.get(problem.field or "", problem.field)
    if not _columns_ok(match, columns, label, problems):
        return None
    return _Frame(data, match, crs_label(source_crs), source_bounds)


def _columns_ok(match: ColumnMatch, columns: list[str], label: str,
                problems: list[Problem]) -> bool:
    listed = ", ".join(columns) or "(none)"
    for schema_field, wanted in match.unknown_mapped.items():
        problems.append(Problem(
            "error" if schema_field in match.missing else "warning", "missing-column",
            f"Layer {label} has no column {wanted!r} (mapped to {schema_field}); "
            f"its columns are: {listed}.", layer=label, field=schema_field))
    for schema_field in match.missing:
        if schema_field in match.unknown_mapped:
            continue
        names = ", ".join(ALIASES[schema_field])
        problems.append(Problem(
            "error", "missing-column",
            f"Layer {label} has no column for the required field {schema_field} (looked for "
            f"{names}); its columns are: {listed}. Name the column with the field mapping, "
            f"e.g. --map {schema_field}=COLUMN.", layer=label, field=schema_field))
    return not match.missing


# --- rows -------------------------------------------------------------------------------------


def _missing(value: Any) -> bool:
    return value is None or value is pd.NA or value is pd.NaT or (
        isinstance(value, float) and math.isnan(value))


def as_text(value: Any) -> str | None:
    """A cell as text: integers without '.0' (DBF numbers hold codes too), blanks as None."""
    if type(value) is str:
        return value.strip() or None
    if _missing(value):
        return None
    if hasattr(value, "item"):
        value = value.item()  # NumPy scalar
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    return str(value).strip() or None


def _level(value: Any) -> int | str | None:
    text = as_text(value)
    return int(text) if text is not None and text.isdecimal() else text


def _count(value: Any) -> int | str | None:
    """A non-negative whole number, None when blank, or the text itself when it is not one."""
    text = as_text(value)
    if text is None:
        return None
    try:
        number = float(text)
    except ValueError:
        return text
    if not number.is_integer() or number < 0:
        return text
    return int(text) if text.isdecimal() else int(number)


def _properties(column: pd.Series) -> list[Any]:
    """A free-property column as JSON-like values, None where blank. Whole-number floats in a
    column with blanks become ints again (pandas widens such integer columns to float)."""
    present = column.dropna()
    integral = (pd.api.types.is_float_dtype(column) and len(present) < len(column)
                and bool((present == present.round()).all()))
    values = []
    for value in column.tolist():
        if _missing(value):
            value = None
        elif isinstance(value, pd.Timestamp):
            value = value.isoformat()
        elif integral and isinstance(value, float):
            value = int(value)
        elif hasattr(value, "item") and not isinstance(value, str):
            value = value.item()
        values.append(value)
    return values


def _records(frame: _Frame, label: str, problems: list[Problem]) -> list[BoundaryRecord]:
    data, cols = frame.data, frame.match.columns

    def column(schema_field: str, convert: Any = as_text) -> list[Any]:
        name = cols.get(schema_field)
        return [convert(v) for v in data[name].tolist()] if name else [None] * len(data)

    code, name, level = column("code"), column("name"), column("level", _level)
    households = column("households", _count)
    geoms = shapely.force_2d(np.asarray(data.geometry.array, dtype=object))
    empty = shapely.is_missing(geoms) | shapely.is_empty(geoms)
    outside = outside_china(data.geometry)
    areas = _service_area_column(data, cols.get("service_area"))
    free = {c: _properties(data[c]) for c in frame.match.free}
    text = {f: column(f) for f in ("parent_code", "leader", "phone", "address")}
    records = []
    for i in range(len(data)):
        found = []
        for schema_field, value in (("code", code[i]), ("name", name[i]), ("level", level[i])):
            if value is None:
                found.append((schema_field, "missing-value", f"{schema_field} is empty."))
        if isinstance(households[i], str):
            found.append(("households", "bad-value", "households must be a non-negative whole "
                          f"number, got {households[i]!r}."))
        if empty[i]:
            found.append(("geometry", "missing-value", "the feature has no geometry."))
        elif outside[i]:
            found.append(("geometry", "outside-china",
                          _outside_message(frame.source_bounds[i], geoms[i].bounds,
                                           frame.crs_label)))
        if isinstance(areas[i], str):
            found.append(("service_area", "bad-value",
                          f"service_area is not WKT: {areas[i][:60]!r}."))
        problems.extend(
            Problem("error", rule, f"Layer {label} row {i + 1}: {message}", code=code[i],
                    row=i + 1, layer=label, field=schema_field)
            for schema_field, rule, message in found)
        if found:
            continue
        records.append(BoundaryRecord(
            row=i + 1, code=code[i], name=name[i], level=level[i],
            parent_code=text["parent_code"][i], geometry=geoms[i], leader=text["leader"][i],
            phone=text["phone"][i], households=households[i], address=text["address"][i],
            service_area=areas[i], layer=label,
            properties={c: values[i] for c, values in free.items() if values[i] is not None},
        ))
    return records


def _outside_message(source: np.ndarray, wgs84: tuple[float, ...], crs: str) -> str:
    x0, y0, x1, y1 = source
    lon0, lat0, lon1, lat1 = wgs84
    converted = (f"lon {lon0:.4f}..{lon1:.4f}, lat {lat0:.4f}..{lat1:.4f}"
                 if np.isfinite(wgs84).all() else "no valid lon/lat")
    zone = (f"; x starts with a Gauss-Krüger zone number ({int(x0 // 1e6)}), so the CRS is a "
            "zoned one (CGCS2000 zones: EPSG:4513-4533)") if 1.3e7 <= x0 < 4.6e7 else ""
    return (f"coordinates x {x0:.10g}..{x1:.10g}, y {y0:.10g}..{y1:.10g} read as {crs} give "
            f"{converted}, outside China; the file's CRS is probably missing or wrong{zone}: "
            "declare the right one with --crs.")


def _service_area_column(data: gpd.GeoDataFrame, column: str | None) -> list[Any]:
    """Per row: the service area in wgs84, None when blank, or the text when it is not WKT."""
    if column is None:
        return [None] * len(data)
    texts = [as_text(v) for v in data[column]]
    parsed = shapely.from_wkt(texts, on_invalid="ignore")
    series = to_wgs84(gpd.GeoSeries(parsed, crs=data.crs, index=data.index))
    return [
        text if geom is None and text is not None else geom
        for text, geom in zip(texts, series, strict=True)
    ]


def _service_areas(frame: _Frame, label: str,
                   problems: list[Problem]) -> list[tuple[str, int, str, Any]]:
    """Rows of a service-area layer: (layer, row, code, polygon)."""
    out = []
    column = frame.match.columns["code"]
    for i, (value, geom) in enumerate(zip(frame.data[column], frame.data.geometry, strict=True)):
        code = as_text(value)
        if code is None or geom is None or geom.is_empty:
            problems.append(Problem("error", "missing-value",
                                    f"Layer {label} row {i + 1}: a service area needs a code "
                                    "and a polygon.", row=i + 1, layer=label, code=code))
            continue
        out.append((label, i + 1, code, shapely.force_2d(geom)))
    return out


def _attach_service_areas(result: ReadResult, areas: list[tuple[str, int, str, Any]]) -> None:
    by_code = {r.code: r for r in result.records}
    for label, row, code, geom in areas:
        record = by_code.get(code)
        if record is None:
            result.problems.append(Problem(
                "error", "unknown-code",
                f"Layer {label} row {row}: service area for code {code}, which no feature has.",
                code=code, row=row, layer=label, field="code"))
        else:
            record.service_area = geom

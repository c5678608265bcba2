"""The local address gazetteer: imported standard addresses plus one entry per building.

Two sources feed the matcher (``gridsvc/geocode``, rules in ``gridsvc/geocode/RULES.md``):

- every micro-grid unit (building) with an ``address`` gives an entry whose point is a point
  inside the building (``shapely.point_on_surface``) and whose ``unit_code`` is the building;
- imported files (CSV or GeoJSON) of standard addresses with points. Each row needs
  ``address``, ``lon``, ``lat`` and ``coordsys`` (GeoJSON points are wgs84 unless a
  ``coordsys`` property says otherwise); ``district`` and ``unit_code`` (or ``building_code``)
  are optional. Re-importing a file replaces the entries of that file (its ``source`` is the
  file name) in one transaction; rows with problems are reported and not stored.

When the same address (and district) comes from both, the entry that names its building wins.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import shapely
from sqlalchemy import delete, select

from gridsvc.geocode.matcher import Gazetteer, GazetteerEntry
from gridsvc.geocode.normalize import normalize
from gridsvc.hierarchy import Hierarchy
from gridsvc.services.context import Services
from gridsvc.services.errors import InvalidInput
from gridsvc.spatial.coordsys import CoordSysError, point_problem, to_wgs84
from gridsvc.storage import units as q
from gridsvc.storage.engine import Database
from gridsvc.storage.models import GazetteerAddress, Unit
from gridsvc.validation.report import Problem

GAZETTEER = "gazetteer"  # revision counter
Progress = Callable[[str, int, int], None]


def build_gazetteer(db: Database, hierarchy: Hierarchy) -> Gazetteer:
    """The matcher over stored entries and the buildings' own addresses."""
    with db.session() as session:
        stored = session.execute(
            select(GazetteerAddress.address, GazetteerAddress.lon, GazetteerAddress.lat,
                   GazetteerAddress.unit_code, GazetteerAddress.district)
            .order_by(GazetteerAddress.id)
        ).all()
        buildings = list(session.scalars(
            select(Unit).where(Unit.level == hierarchy.micro_grid.level,
                               Unit.address.is_not(None)).order_by(Unit.id)
        ))
        points = shapely.point_on_surface(q.geometries(buildings)) if buildings else []
    entries: dict[tuple[str, str | None], GazetteerEntry] = {}
    for unit, point in zip(buildings, points, strict=True):
        assert unit.address is not None  # as selected
        key: tuple[str, str | None] = (normalize(unit.address), None)
        entries.setdefault(key, GazetteerEntry(unit.address, point.x, point.y, unit.code))
    for address, lon, lat, unit_code, district in stored:
        key = (normalize(address), district)
        if key not in entries or (unit_code and not entries[key].unit_code):
            entries[key] = GazetteerEntry(address, lon, lat, unit_code, district)
    return Gazetteer(entries.values())


@dataclass
class GazetteerImport:
    stored: int = 0
    problems: list[Problem] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return {"stored": self.stored, "rejected": len({p.row for p in self.problems}),
                "problems": [p.as_dict() for p in self.problems]}


def _rows(path: Path) -> list[dict[str, Any]]:
    """The rows of a CSV (UTF-8, or GB18030 as Excel saves it) or GeoJSON file."""
    suffix = path.suffix.lower()
    if suffix not in (".csv", ".geojson", ".json"):
        raise InvalidInput(f"{path.name}: a gazetteer must be .csv or .geojson", field="file")
    raw = path.read_bytes()
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError:
        try:
            text = raw.decode("gb18030")
        except UnicodeDecodeError:
            raise InvalidInput(f"{path.name}: the file is neither UTF-8 nor GB18030 text",
                               field="file") from None
    if suffix == ".csv":
        rows = list(csv.DictReader(io.StringIO(text, newline="")))
        if rows and "address" not in rows[0]:
            raise InvalidInput(
                f"{path.name}: no address column; the columns are address, lon, lat, "
                f"coordsys (district, unit_code optional), found {', '.join(rows[0])}",
                field="file")
        return rows
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise InvalidInput(f"{path.name}: not valid JSON: {exc}", field="file") from None
    if not isinstance(data, dict) or not isinstance(data.get("features"), list):
        raise InvalidInput(f"{path.name}: a GeoJSON FeatureCollection is needed", field="file")
    rows = []
    for feature in data["features"]:
        feature = feature if isinstance(feature, dict) else {}
        props = dict(feature.get("properties") or {})
        geom = feature.get("geometry") or {}
        if geom.get("type") == "Point" and len(geom.get("coordinates") or []) >= 2:
            props["lon"], props["lat"] = geom["coordinates"][:2]
            props.setdefault("coordsys", "wgs84")
        rows.append(props)
    return rows


def _entry(row: dict[str, Any], n: int, layer: str) -> tuple[dict[str, Any] | None, Problem | None]:
    def problem(fld: str, message: str) -> tuple[None, Problem]:
        return None, Problem("error", "bad-value", message, row=n, layer=layer, field=fld)

    address = str(row.get("address") or "").strip()
    if not address:
        return problem("address", "address is empty")
    try:
        # (the ignore below: checked as numbers above)
        lon, lat = float(row.get("lon")), float(row.get("lat"))  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return problem("lon", f"lon/lat {row.get('lon')!r}, {row.get('lat')!r} are not numbers")
    try:
        wlon, wlat = to_wgs84(lon, lat, row.get("coordsys"))
    except CoordSysError as exc:
        return problem("coordsys" if "coordsys" in str(exc) else "lon", str(exc))
    reason = point_problem(wlon, wlat)
    if reason:
        return problem("lon", reason)
    unit_code = row.get("unit_code") or row.get("building_code") or None
    return {"address": address, "lon": wlon, "lat": wlat, "district": row.get("district") or None,
            "unit_code": unit_code}, None


def import_gazetteer(svc: Services, path: Path, source: str | None = None,
                     progress: Progress | None = None) -> GazetteerImport:
    """Replace the entries of ``source`` (default: the file name) with the file's good rows.

    When no row is good, nothing changes (a broken upload never wipes the stored entries).
    """
    path = Path(path)
    source = source or f"file:{path.name}"
    result = GazetteerImport()
    good = []
    rows = _rows(path)
    for n, row in enumerate(rows, start=1):
        if progress and (n % 1000 == 0 or n == len(rows)):
            progress("check", n, len(rows))
        entry, problem = _entry(row, n, path.name)
        if problem:
            result.problems.append(problem)
        elif entry is not None:
            good.append(entry | {"source": source})
    if not good:
        return result
    if progress:
        progress("store", 0, 1)
    with svc.db.session() as session:
        session.execute(delete(GazetteerAddress).where(GazetteerAddress.source == source))
        session.add_all(GazetteerAddress(**e) for e in good)
        q.bump_revision(session, GAZETTEER)
    result.stored = len(good)
    return result

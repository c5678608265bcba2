"""The demo city's address gazetteer: one standard address and one wgs84 point per building.

``address`` is always ``road + door_number + compound + building``, e.g.
幸福路88号阳光小区3栋 = 幸福路 + 88号 + 阳光小区 + 3栋. The point lies inside the building.
The CSV is UTF-8 with a header; its ``coordsys`` column says the points are wgs84.
"""

from __future__ import annotations

import csv
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

COORDSYS = "wgs84"
DECIMALS = 7  # about 1 cm


@dataclass(frozen=True)
class GazetteerEntry:
    address: str  # standard form: 幸福路88号阳光小区3栋
    district: str  # 区, e.g. 崇川区
    street: str  # 街道, e.g. 和平街道
    road: str  # 幸福路
    door_number: str  # 88号
    compound: str  # 阳光小区
    building: str  # 3栋
    lon: float  # wgs84
    lat: float  # wgs84
    building_code: str


_FIELDS = [f.name for f in fields(GazetteerEntry)]
COLUMNS = [*_FIELDS, "coordsys"]


def gazetteer_rows(entries: list[GazetteerEntry]) -> list[dict[str, Any]]:
    """One dict per entry: the dataclass fields (lon/lat rounded) plus ``coordsys``."""
    rows = []
    for entry in entries:
        row: dict[str, Any] = {name: getattr(entry, name) for name in _FIELDS}
        row["lon"] = round(entry.lon, DECIMALS)
        row["lat"] = round(entry.lat, DECIMALS)
        row["coordsys"] = COORDSYS
        rows.append(row)
    return rows


def write_gazetteer_csv(entries: list[GazetteerEntry], path: Path) -> None:
    """Write the entries as a UTF-8 CSV with a header row (``COLUMNS``)."""
    with Path(path).open("w", encoding="utf-8", newline="") as out:
        writer = csv.DictWriter(out, fieldnames=COLUMNS, lineterminator="\n")
        writer.writeheader()
        for row in gazetteer_rows(entries):
            row["lon"] = f"{row['lon']:.{DECIMALS}f}"
            row["lat"] = f"{row['lat']:.{DECIMALS}f}"
            writer.writerow(row)

"""Small helpers shared by the rule modules: problems tied to a record, coordinate text."""

from __future__ import annotations

from typing import Any

from gridsvc.io.records import BoundaryRecord
from gridsvc.validation.report import Problem, Severity

# Below this a polygon (or an overlap, gap or outside part) is numerical noise, not a shape.
MIN_AREA_M2 = 0.01


def record_problem(
    record: BoundaryRecord, severity: Severity, rule: str, message: str, **fields: Any
) -> Problem:
    """A problem located at one file record (its code, row and layer)."""
    return Problem(
        severity=severity,
        rule=rule,
        message=message,
        code=record.code or None,
        row=record.row,
        layer=record.layer,
        **fields,
    )


def lonlat_text(lon: float, lat: float) -> str:
    """A wgs84 position as planners read it: '120.900100, 32.000200'."""
    return f"{lon:.6f}, {lat:.6f}"


def blank(value: object) -> bool:
    return value is None or (isinstance(value, str) and not value.strip())

"""The validation report: a list of problems, each saying what is wrong and where."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any, Literal

Severity = Literal["error", "warning", "info"]


@dataclass
class Problem:
    severity: Severity
    rule: str  # stable identifier, e.g. "invalid-geometry", "overlapping-siblings"
    message: str  # one sentence a planner understands
    code: str | None = None  # the feature's unit code
    row: int | None = None  # 1-based feature number in its layer
    layer: str | None = None
    field: str | None = None  # the schema field at fault, if any
    location: tuple[float, float] | None = None  # wgs84 lon, lat of the problem
    area_m2: float | None = None  # overlap, gap or outside area
    other_code: str | None = None  # the other unit involved (overlap partner, parent)
    geometry_wkt: str | None = None  # the problem's shape (overlap, gap, invalid part)

    def as_dict(self, with_geometry: bool = False) -> dict[str, Any]:
        data = {k: v for k, v in asdict(self).items() if v is not None}
        if "location" in data:
            data["location"] = {"lon": data["location"][0], "lat": data["location"][1],
                                "coordsys": "wgs84"}
        if not with_geometry:
            data.pop("geometry_wkt", None)
        return data


@dataclass
class Report:
    problems: list[Problem] = field(default_factory=list)
    features: int = 0
    repaired: int = 0

    def add(self, problem: Problem) -> None:
        self.problems.append(problem)

    @property
    def errors(self) -> list[Problem]:
        return [p for p in self.problems if p.severity == "error"]

    @property
    def warnings(self) -> list[Problem]:
        return [p for p in self.problems if p.severity == "warning"]

    @property
    def ok(self) -> bool:
        return not self.errors

    def as_dict(self, with_geometry: bool = False) -> dict[str, Any]:
        return {
            "ok": self.ok,
            "features": self.features,
            "errors": len(self.errors),
            "warnings": len(self.warnings),
            "repaired": self.repaired,
            "problems": [p.as_dict(with_geometry) for p in self.problems],
        }

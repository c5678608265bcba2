"""The in-memory form of one boundary feature, as read from a file or built by the demo.

Every reader produces ``BoundaryRecord`` objects in the interchange schema of
``boundaries/SCHEMA.md``, with the geometry already in EPSG:4326; validation and import work on
these, never on file-specific columns.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from shapely.geometry.base import BaseGeometry


@dataclass
class BoundaryRecord:
    row: int  # 1-based feature number within its layer, as a planner would count them
    code: str
    name: str
    level: Any  # as written in the file: 1-5, a level key or a level name; resolved in validation
    parent_code: str | None
    geometry: BaseGeometry | None  # EPSG:4326
    leader: str | None = None
    phone: str | None = None
    households: int | None = None
    address: str | None = None
    service_area: BaseGeometry | None = None  # EPSG:4326, household level only
    properties: dict[str, Any] = field(default_factory=dict)
    layer: str | None = None  # the layer or file inside an archive the row came from

    @property
    def where(self) -> str:
        """Where a planner finds this feature: layer, row and code."""
        place = f"{self.layer} " if self.layer else ""
        return f"{place}row {self.row} (code {self.code or '?'})"

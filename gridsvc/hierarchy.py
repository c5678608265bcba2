"""The organisation hierarchy as data: levels with a number, key, Chinese name and geometry kind.

The default is the Qianjiang five-level model from DOMAIN.md. A deployment renames levels with
``GRIDSVC_LEVELS``: a JSON list (inline, or a path to a ``.json`` file) of objects with
``level``, ``key``, ``name`` and ``geometry`` (``polygon`` or ``point``). Entries may give only
``level`` and the fields to change, e.g. Nantong::

    [{"level": 1, "name": "社区大党委"}, {"level": 2, "name": "党总支"},
     {"level": 3, "name": "网格党支部"}, {"level": 4, "name": "党小组"},
     {"level": 5, "name": "微网格"}]

Rules the code relies on, checked here: levels are numbered 1..N without gaps; polygon levels
come first; the deepest polygon level is the residence micro-grid that lookups resolve to; a
trailing point level (optional) holds the 党员中心户 households, each a point with an optional
service-area polygon.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, replace
from functools import cached_property
from pathlib import Path
from typing import Literal

GeometryKind = Literal["polygon", "point"]


@dataclass(frozen=True)
class Level:
    level: int
    key: str
    name: str
    geometry: GeometryKind

    def as_dict(self) -> dict[str, object]:
        return {"level": self.level, "key": self.key, "name": self.name, "geometry": self.geometry}


DEFAULT_LEVELS: tuple[Level, ...] = (
    Level(1, "street", "街道大工委", "polygon"),
    Level(2, "community", "社区大党委", "polygon"),
    Level(3, "grid", "小区(片区、网格)党支部", "polygon"),
    Level(4, "building", "楼栋党小组", "polygon"),
    Level(5, "household", "党员中心户", "point"),
)


class HierarchyError(ValueError):
    """The configured hierarchy breaks one of the rules in the module docstring."""


@dataclass(frozen=True)
class Hierarchy:
    levels: tuple[Level, ...]

    def __post_init__(self) -> None:
        numbers = [lv.level for lv in self.levels]
        if numbers != list(range(1, len(numbers) + 1)):
            raise HierarchyError(f"levels must be numbered 1..N in order, got {numbers}")
        keys = [lv.key for lv in self.levels]
        if len(set(keys)) != len(keys):
            raise HierarchyError(f"level keys must be unique, got {keys}")
        kinds = [lv.geometry for lv in self.levels]
        if "polygon" not in kinds:
            raise HierarchyError("at least one polygon level is needed")
        if any(k not in ("polygon", "point") for k in kinds):
            raise HierarchyError(f"geometry must be 'polygon' or 'point', got {kinds}")
        first_point = kinds.index("point") if "point" in kinds else len(kinds)
        if first_point != len(kinds) - 1 and first_point != len(kinds):
            raise HierarchyError("only the last level may be a point level")

    @cached_property
    def micro_grid(self) -> Level:
        """The deepest polygon level: where a home point is assigned."""
        return [lv for lv in self.levels if lv.geometry == "polygon"][-1]

    @cached_property
    def household(self) -> Level | None:
        """The point level of 党员中心户, if the hierarchy has one."""
        last = self.levels[-1]
        return last if last.geometry == "point" else None

    @property
    def depth(self) -> int:
        return len(self.levels)

    def get(self, level: int) -> Level:
        if not 1 <= level <= len(self.levels):
            raise KeyError(level)
        return self.levels[level - 1]

    def resolve(self, value: object) -> Level | None:
        """A level from its number, key or name (as files write it), or None."""
        if value is None:
            return None
        if isinstance(value, float) and value.is_integer():
            value = int(value)
        text = str(value).strip()
        if text.isdecimal():  # not isdigit(): int() refuses "³"
            digits = text.lstrip("0") or "0"
            n = int(digits) if len(digits) <= 9 else 0  # int() refuses 4,300 digits
            return self.levels[n - 1] if 1 <= n <= len(self.levels) else None
        low = text.lower()
        for lv in self.levels:
            if low == lv.key.lower() or text == lv.name:
                return lv
        return None

    def as_list(self) -> list[dict[str, object]]:
        return [lv.as_dict() for lv in self.levels]


def load_hierarchy(spec: str = "") -> Hierarchy:
    """Build the hierarchy from ``GRIDSVC_LEVELS`` (inline JSON or a path), or the default."""
    if not spec.strip():
        return Hierarchy(DEFAULT_LEVELS)
    text = spec
    if not spec.lstrip().startswith("["):
        path = Path(spec)
        if not path.is_file():
            raise HierarchyError(f"GRIDSVC_LEVELS: {spec!r} is neither a JSON list nor a file")
        text = path.read_text(encoding="utf-8")
    try:
        items = json.loads(text)
    except json.JSONDecodeError as exc:
        raise HierarchyError(f"GRIDSVC_LEVELS is not valid JSON: {exc}") from exc
    if not isinstance(items, list) or not all(isinstance(i, dict) for i in items):
        raise HierarchyError("GRIDSVC_LEVELS must be a JSON list of objects")
    levels = {lv.level: lv for lv in DEFAULT_LEVELS}
    for item in items:
        n = item.get("level")
        if not isinstance(n, int) or n < 1:
            raise HierarchyError(f"GRIDSVC_LEVELS entry {item} needs an integer 'level' >= 1")
        base = levels.get(n)
        if base is None:
            missing = {"key", "name", "geometry"} - item.keys()
            if missing:
                raise HierarchyError(f"new level {n} needs {sorted(missing)}")
            base = Level(n, item["key"], item["name"], item["geometry"])
        levels[n] = replace(
            base,
            key=item.get("key", base.key),
            name=item.get("name", base.name),
            geometry=item.get("geometry", base.geometry),
        )
    if any(item.get("drop") for item in items):
        for item in items:
            if item.get("drop"):
                levels.pop(item["level"], None)
    return Hierarchy(tuple(levels[k] for k in sorted(levels)))

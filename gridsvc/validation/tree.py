"""Attribute and tree rules: missing values, levels, duplicate codes and parent links.

Rule ids: ``missing-value``, ``unknown-level``, ``duplicate-code``, ``missing-parent``,
``root-with-parent``, ``unknown-parent``, ``parent-wrong-level``, ``parent-cycle``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Protocol

from gridsvc.hierarchy import Hierarchy, Level
from gridsvc.io.records import BoundaryRecord
from gridsvc.validation.problems import blank, record_problem
from gridsvc.validation.report import Report


class StoredUnit(Protocol):
    """What the tree rules read of a stored unit (read-only, so frozen dataclasses fit)."""

    @property
    def code(self) -> str: ...
    @property
    def level(self) -> int: ...
    @property
    def parent_code(self) -> str | None: ...


def level_label(hierarchy: Hierarchy, level: int) -> str:
    """'level 3 grid (小区(片区、网格)党支部)', or 'level 9' outside the hierarchy."""
    try:
        lv = hierarchy.get(level)
    except KeyError:
        return f"level {level}"
    return f"level {lv.level} {lv.key} ({lv.name})"


def check_attributes(
    records: list[BoundaryRecord], hierarchy: Hierarchy, report: Report
) -> tuple[list[Level | None], dict[str, int]]:
    """Check code, name and level of every record and find duplicate codes.

    Returns each record's resolved level (None when missing or unknown) and, for every code,
    the index of the record that first uses it; later records with that code are duplicates.
    """
    levels: list[Level | None] = []
    first: dict[str, int] = {}
    resolved: dict[tuple[type, object], Level | None] = {}  # level as written -> level
    known = ", ".join(f"{lv.level} {lv.key}" for lv in hierarchy.levels)
    for i, rec in enumerate(records):
        if blank(rec.code):
            report.add(record_problem(rec, "error", "missing-value",
                                      "The feature has no code.", field="code"))
        elif rec.code in first:
            prev = records[first[rec.code]]
            report.add(record_problem(
                rec, "error", "duplicate-code",
                f"Code {rec.code} is already used by {prev.where}.", field="code"))
        else:
            first[rec.code] = i
        if blank(rec.name):
            report.add(record_problem(rec, "error", "missing-value",
                                      "The feature has no name.", field="name"))
        key = (type(rec.level), rec.level)
        if key not in resolved:
            resolved[key] = hierarchy.resolve(rec.level)
        level = resolved[key]
        if blank(rec.level):
            report.add(record_problem(rec, "error", "missing-value",
                                      f"The feature has no level (one of {known}).",
                                      field="level"))
        elif level is None:
            report.add(record_problem(
                rec, "error", "unknown-level",
                f"Level {rec.level!r} is not a level of this hierarchy ({known}).",
                field="level"))
        levels.append(level)
    return levels, first


def check_parents(
    records: list[BoundaryRecord],
    levels: list[Level | None],
    first: dict[str, int],
    stored: Mapping[str, StoredUnit],
    hierarchy: Hierarchy,
    report: Report,
) -> None:
    """Check every record's parent_code against the file and the stored units.

    Only the first record of each code with a known level is checked (duplicates and unknown
    levels are errors already). ``stored`` holds stored units the file does not override.
    """
    parent_of: dict[str, str] = {}
    wrong_levels = False
    for code, i in first.items():
        rec, level = records[i], levels[i]
        if level is None:
            continue
        parent = None if blank(rec.parent_code) else rec.parent_code
        if level.level == 1:
            if parent is not None:
                this = level_label(hierarchy, level.level)
                report.add(record_problem(
                    rec, "error", "root-with-parent",
                    f"A {this} is a root and must have no parent_code, got {parent}.",
                    field="parent_code", other_code=parent))
            continue
        if parent is None:
            this, wanted = (level_label(hierarchy, n) for n in (level.level, level.level - 1))
            report.add(record_problem(
                rec, "error", "missing-parent",
                f"A {this} needs a parent_code naming its {wanted}.", field="parent_code"))
            continue
        if parent in first:
            parent_of[code] = parent
            parent_level = levels[first[parent]]
            parent_number = parent_level.level if parent_level else None
        elif parent in stored:
            parent_number = stored[parent].level
        else:
            report.add(record_problem(
                rec, "error", "unknown-parent",
                f"Parent {parent} is neither in this file nor stored.",
                field="parent_code", other_code=parent))
            continue
        if parent_number is not None and parent_number != level.level - 1:
            this, wanted = (level_label(hierarchy, n) for n in (level.level, level.level - 1))
            where = f"({records[first[parent]].where})" if parent in first else "(stored)"
            wrong_levels = True
            report.add(record_problem(
                rec, "error", "parent-wrong-level",
                f"Parent {parent} {where} is a {level_label(hierarchy, parent_number)}; "
                f"a {this} needs a {wanted} as parent.",
                field="parent_code", other_code=parent))
    if wrong_levels:  # each link goes one level up, unless one of them is at the wrong level
        _check_cycles(records, first, parent_of, report)


def _check_cycles(
    records: list[BoundaryRecord],
    first: dict[str, int],
    parent_of: dict[str, str],
    report: Report,
) -> None:
    """Report each parent cycle once (levels make them impossible, but guard anyway)."""
    done: set[str] = set()
    for start in parent_of:
        path: list[str] = []
        on_path: set[str] = set()
        code: str | None = start
        while code is not None and code not in done:
            if code in on_path:
                cycle = path[path.index(code):]
                rec = min((records[first[c]] for c in cycle), key=lambda r: r.row)
                chain = " → ".join([*cycle, code])
                report.add(record_problem(
                    rec, "error", "parent-cycle",
                    f"Parent codes form a cycle: {chain}.", field="parent_code"))
                break
            on_path.add(code)
            path.append(code)
            code = parent_of.get(code)
        done.update(path)

"""The validation report as a plain-text table for the CLI."""

from __future__ import annotations

import unicodedata

from gridsvc.validation.report import Problem, Report

HEADERS = ("severity", "rule", "where", "code", "field", "area m²", "message")
_ORDER = {"error": 0, "warning": 1, "info": 2}


def _width(text: str) -> int:
    """Terminal columns: CJK characters take two."""
    return sum(2 if unicodedata.east_asian_width(ch) in "WF" else 1 for ch in text)


def _pad(text: str, width: int) -> str:
    return text + " " * (width - _width(text))


def _where(p: Problem) -> str:
    row = f"row {p.row}" if p.row is not None else ""
    return " ".join(part for part in (p.layer or "", row) if part)


def _cells(p: Problem) -> tuple[str, ...]:
    area = f"{p.area_m2:,.1f}" if p.area_m2 is not None else ""
    return (p.severity, p.rule, _where(p), p.code or "", p.field or "", area, p.message)


def _plural(n: int, word: str) -> str:
    return f"{n} {word}" if n == 1 else f"{n} {word}s"


def summary(report: Report) -> str:
    """'2 errors, 1 warning in 120 features' (plus repairs, when any)."""
    text = (f"{_plural(len(report.errors), 'error')}, "
            f"{_plural(len(report.warnings), 'warning')} in "
            f"{_plural(report.features, 'feature')}")
    if report.repaired:
        text += f", {report.repaired} repaired"
    return text


def format_report(report: Report) -> str:
    """Problems as an aligned table, errors first, then the summary line."""
    problems = sorted(report.problems, key=lambda p: _ORDER.get(p.severity, 3))
    if not problems:
        return summary(report)
    rows = [HEADERS, *(_cells(p) for p in problems)]
    widths = [max(_width(r[c]) for r in rows) for c in range(len(HEADERS) - 1)]
    lines = []
    area = HEADERS.index("area m²")
    for r in rows:
        cells = [_pad(cell, w) for cell, w in zip(r, widths, strict=False)]
        if r is not rows[0]:
            cells[area] = r[area].rjust(widths[area])
        lines.append("  ".join([*cells, r[-1]]).rstrip())
    lines.insert(1, "  ".join("-" * w for w in [*widths, _width(HEADERS[-1])]))
    lines.append("")
    lines.append(summary(report))
    return "\n".join(lines)

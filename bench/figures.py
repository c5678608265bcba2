"""What a benchmark run produces: figures against in-run baselines, agreement counts, a table.

Every ``Figure`` has a baseline measured in the same run. Its ``gain`` is how many times better
the measured value is than the baseline (baseline / value for times and memory, value /
baseline for rates), so a gain above 1 always means "better than the baseline". A ``Target``
is the issue's goal, on the value (``build < 2 s``) or on the gain (``>= 5x sjoin``).
"""

from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass, field


@dataclass(frozen=True)
class Target:
    op: str  # "<" or ">="
    limit: float
    on_gain: bool = False  # the target is on the gain, not on the value

    def met(self, value: float, gain: float) -> bool:
        x = gain if self.on_gain else value
        return x < self.limit if self.op == "<" else x >= self.limit

    def text(self, unit: str) -> str:
        limit = f"{self.limit:,.0f}" if self.limit == int(self.limit) else fmt(self.limit)
        return f"{self.op} {limit}" + ("x" if self.on_gain else f" {unit}")


@dataclass
class Figure:
    part: str  # index, postgis, http
    name: str
    value: float
    unit: str
    baseline: str  # what the baseline is
    baseline_value: float
    higher_is_better: bool = False
    target: Target | None = None

    @property
    def gain(self) -> float:
        if self.value <= 0 or self.baseline_value <= 0:
            return math.nan
        ratio = self.baseline_value / self.value
        return 1 / ratio if self.higher_is_better else ratio

    @property
    def verdict(self) -> str:
        if self.target is None:
            return ""
        if not (self.value > 0 and math.isfinite(self.value)):
            return "n/a"
        return "PASS" if self.target.met(self.value, self.gain) else "FAIL"


@dataclass
class Agreement:
    """The index's micro-grid per point against a reference join's matches."""

    name: str  # e.g. "PostGIS ST_Covers, random points"
    points: int
    in_none: int  # the reference puts the point in no micro-grid
    in_one: int
    on_shared_boundary: int  # the reference puts it in two or more (shared edge or vertex)
    disagree: int  # the index's answer is not the reference's (or not one of them)

    @property
    def agreeing(self) -> int:
        return self.points - self.disagree

    @classmethod
    def from_counts(cls, name: str, counts: dict[str, int]) -> Agreement:
        return cls(name=name, **counts)


@dataclass(frozen=True)
class Check:
    """A count the run must reproduce exactly, e.g. requests answered 2xx of those sent, or
    audit entries of the personal reads made."""

    name: str
    expected: int
    found: int

    @property
    def ok(self) -> bool:
        return self.found == self.expected

    def text(self) -> str:
        return (f"{self.name}: {self.found:,} of {self.expected:,}: "
                f"{'OK' if self.ok else 'MISMATCH'}")


@dataclass
class Report:
    title: str
    figures: list[Figure] = field(default_factory=list)
    agreements: list[Agreement] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    checks: list[Check] = field(default_factory=list)

    @property
    def agreement_ok(self) -> bool:
        return all(a.disagree == 0 for a in self.agreements)

    @property
    def checks_ok(self) -> bool:
        return all(c.ok for c in self.checks)

    def as_json(self) -> str:
        figures = [{**asdict(f), "gain": f.gain, "verdict": f.verdict} for f in self.figures]
        agreements = [{**asdict(a), "agreeing": a.agreeing} for a in self.agreements]
        checks = [{**asdict(c), "ok": c.ok} for c in self.checks]
        return json.dumps({"title": self.title, "figures": figures, "agreements": agreements,
                           "checks": checks, "notes": self.notes}, indent=2,
                          ensure_ascii=False)


def fmt(x: float) -> str:
    """A number in as few characters as still say it: 1,234,567  123.4  1.23  0.0123."""
    if not math.isfinite(x):
        return "-"
    if abs(x) >= 1000:
        return f"{x:,.0f}"
    if abs(x) >= 100:
        return f"{x:.1f}"
    return f"{x:.3g}"


COLUMNS = (("figure", 48, "<"), ("value", 11, ">"), ("unit", 9, "<"), ("baseline", 33, "<"),
           ("baseline", 11, ">"), ("gain", 8, ">"), ("target", 19, "<"), ("", 4, "<"))


def table_lines(report: Report) -> list[str]:
    """The report as fixed-width text lines (also valid Markdown inside a code block)."""

    def line(cells: tuple[str, ...]) -> str:
        return " ".join(f"{c:{align}{width}}" for c, (_, width, align) in
                        zip(cells, COLUMNS, strict=True)).rstrip()

    lines = [report.title, "", line(tuple(name for name, _, _ in COLUMNS)),
             line(tuple("-" * width for _, width, _ in COLUMNS))]
    part = None
    for f in report.figures:
        if f.part != part and part is not None:
            lines.append("")
        part = f.part
        target = f.target.text(f.unit) if f.target else ""
        lines.append(line((f"{f.part}: {f.name}", fmt(f.value), f.unit, f.baseline,
                           fmt(f.baseline_value), f"{fmt(f.gain)}x", target, f.verdict)))
    if report.agreements:
        lines += ["", "agreement (the index's micro-grid per point against the reference):"]
    for a in report.agreements:
        verdict = "OK" if a.disagree == 0 else "MISMATCH"
        lines.append(f"  {a.name}: {a.points:,} points, {a.agreeing:,} agree "
                     f"(in none {a.in_none:,}, in one {a.in_one:,}, on shared boundaries "
                     f"{a.on_shared_boundary:,}), {a.disagree:,} disagree: {verdict}")
    if report.checks:
        lines += ["", "checks (counts the run must reproduce exactly):"]
    lines += [f"  {c.text()}" for c in report.checks]
    lines += [f"note: {n}" for n in report.notes]
    return lines


def markdown_lines(report: Report) -> list[str]:
    """The figures as a Markdown table, and the agreement as a list (for a README)."""
    lines = ["| figure | value | baseline (same run) | gain | target | |",
             "|---|---:|---|---:|---|---|"]
    for f in report.figures:
        target = f.target.text(f.unit) if f.target else ""
        lines.append(f"| {f.part}: {f.name} | {fmt(f.value)} {f.unit} | {f.baseline}: "
                     f"{fmt(f.baseline_value)} {f.unit} | {fmt(f.gain)}x | {target} | "
                     f"{f.verdict} |")
    lines.append("")
    for a in report.agreements:
        lines.append(f"- agreement with {a.name}: {a.agreeing:,} of {a.points:,} points agree "
                     f"({a.on_shared_boundary:,} on shared boundaries), {a.disagree:,} "
                     f"disagree")
    lines += [f"- check: {c.text()}" for c in report.checks]
    return lines

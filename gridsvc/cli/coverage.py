"""``gridsvc coverage``: coverage figures of a unit and its children, or of a level."""

from __future__ import annotations

from typing import Any

import click

from gridsvc.access import cli_principal
from gridsvc.cli.common import cli, fail, print_json, services
from gridsvc.services import coverage as svc_coverage
from gridsvc.services.errors import ServiceError
from gridsvc.validation.text import _pad, _width

# (header, figure); the table keeps to the figures staff act on, --json has them all.
COLUMNS = (
    ("code", "code"),
    ("name", "name"),
    ("households", "households"),
    ("members", "members"),
    ("to confirm", "needs_confirmation"),
    ("per 100 hh", "members_per_100"),
    ("bldg no leader", "buildings_without_leader"),
    ("grid no secretary", "grids_without_secretary"),
    ("bldg no member", "buildings_without_member"),
    ("bldg no 中心户", "buildings_without_household"),
    ("homes no 中心户", "homes_without_household"),
)


def _cell(value: Any) -> str:
    return "-" if value is None else str(value)


def format_table(items: list[dict[str, Any]]) -> str:
    """Items as an aligned table: text left, numbers right, null as '-'."""
    rows = [[h for h, _ in COLUMNS]] + [[_cell(i[key]) for _, key in COLUMNS] for i in items]
    widths = [max(_width(r[c]) for r in rows) for c in range(len(COLUMNS))]
    lines = []
    for r in rows:
        cells = [_pad(v, w) if c < 2 or r is rows[0] else " " * (w - _width(v)) + v
                 for c, (v, w) in enumerate(zip(r, widths, strict=True))]
        lines.append("  ".join(cells).rstrip())
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)


@cli.command("coverage")
@click.option("--unit", help="A unit code: its figures, then each child's.")
@click.option("--level", help="List one level: number or key (street, community, grid, "
              "building). Default: streets.")
@click.option("--parent", help="With --level: only units under this unit code.")
@click.option("--sort", type=click.Choice(list(svc_coverage.SORTS)), default="code",
              show_default=True, help="members_per_100 lists the lowest first, gaps the most.")
@click.option("--order", type=click.Choice(["asc", "desc"]), help="Reverse the sort.")
@click.option("--limit", type=int, default=100, show_default=True)
@click.option("--offset", type=int, default=0, show_default=True)
@click.option("--json", "as_json", is_flag=True, help="Print every figure as JSON.")
def coverage(unit: str | None, level: str | None, parent: str | None, sort: str,
             order: str | None, limit: int, offset: int, as_json: bool) -> None:
    """Households, members, members per 100 households and the gaps, per unit."""
    svc = services()
    try:
        if unit is not None:
            if level or parent:
                raise click.UsageError("give either --unit or --level/--parent")
            result = svc_coverage.unit_coverage(svc, unit, cli_principal())
            if as_json:
                print_json({"unit": result.unit, "children": result.children})
                return
            click.echo(format_table([result.unit, *result.children]))
            return
        page = svc_coverage.level_coverage(svc, level or 1, parent=parent, sort=sort,
                                           order=order, limit=limit, offset=offset,
                                           viewer=cli_principal())
    except ServiceError as exc:
        raise fail(exc) from exc
    finally:
        svc.close()
    if as_json:
        print_json({"items": page.items, "total": page.total, "limit": page.limit,
                    "offset": page.offset, "summary": page.summary})
        return
    click.echo(format_table(page.items))
    shown = f"{offset + 1}-{offset + len(page.items)}" if page.items else "none"
    click.echo(f"\n{shown} of {page.total}; all together: "
               + ", ".join(f"{k} {_cell(page.summary[k])}" for k in
                           ("households", "members", "members_per_100", "gaps")))

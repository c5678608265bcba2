"""Registration commands: import-members, import-work-orgs, rosters show, work-orgs report.

The CLI is a staff tool (it has the database), so it shows members' personal data.
Row numbers are spreadsheet rows: the header is row 1, the first data row is row 2.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click

from gridsvc.access import cli_principal
from gridsvc.cli.common import Progress, audited, cli, fail, print_json, services
from gridsvc.services import members, registration, work_orgs
from gridsvc.services.errors import ServiceError

FILE = click.Path(exists=True, dir_okay=False, path_type=Path)
PAGE = 1000


def _all_rows(roster_id: int, status: str | None) -> list[dict[str, Any]]:
    svc = services()
    rows: list[dict[str, Any]] = []
    while True:
        page = registration.roster_rows(svc, roster_id, status, limit=PAGE, offset=len(rows),
                                         viewer=cli_principal())
        rows.extend(page["items"])
        if len(rows) >= page["total"] or not page["items"]:
            return rows


def _show_roster(summary: dict[str, Any], rows: list[dict[str, Any]], as_json: bool) -> None:
    if as_json:
        print_json({"roster": summary, "rows": rows})
        return
    counts = ", ".join(f"{k} {v}" for k, v in summary["counts"].items())
    click.echo(f"roster {summary['id']} ({summary['kind']}, {summary['filename']}): {counts}")
    for row in rows:
        for p in row["problems"] or [{"field": "-", "message": row["status"]}]:
            click.echo(f"  row {row['row']:>5}  {row['status']:<18} {p.get('field') or '-':<14} "
                       f"{p['message']}")


def _import(importer, file: Path, as_json: bool) -> None:
    svc = services()
    progress = Progress()
    try:
        summary = importer(svc, file, progress=progress)
    except ServiceError as exc:
        raise fail(exc) from exc
    finally:
        progress.close()
    rows = [r for r in _all_rows(summary["id"], None) if r["status"] != registration.ASSIGNED]
    _show_roster(summary, rows, as_json)


@cli.command("import-members")
@click.argument("file", type=FILE)
@click.option("--json", "as_json", is_flag=True, help="Print the outcome as JSON.")
@audited("import-members", lambda kw: f"file:{kw['file'].name}")
def import_members(file: Path, as_json: bool) -> None:
    """Import a member roster (CSV or XLSX) and list the rows that were not assigned."""
    _import(members.import_members, file, as_json)


@cli.command("import-work-orgs")
@click.argument("file", type=FILE)
@click.option("--json", "as_json", is_flag=True, help="Print the outcome as JSON.")
@audited("import-work-orgs", lambda kw: f"file:{kw['file'].name}")
def import_work_orgs(file: Path, as_json: bool) -> None:
    """Import work-unit Party organisations (CSV or XLSX: 单位名称, 办公地址, 经度, 纬度,
    坐标系, 联系人, 联系电话)."""
    _import(work_orgs.import_work_orgs, file, as_json)


@cli.group("rosters")
def rosters() -> None:
    """Imported rosters and their rows."""


@rosters.command("show")
@click.argument("roster_id", type=int)
@click.option("--status", type=click.Choice(registration.STATUSES),
              help="Only rows with this outcome (default: all rows).")
@click.option("--json", "as_json", is_flag=True, help="Print as JSON.")
@audited("rosters show", lambda kw: f"roster:{kw['roster_id']}")
def show_roster(roster_id: int, status: str | None, as_json: bool) -> None:
    """Show a roster's counts and its rows with their problems."""
    try:
        summary = registration.get_roster(services(), roster_id, cli_principal())
        rows = _all_rows(roster_id, status)
    except ServiceError as exc:
        raise fail(exc) from exc
    _show_roster(summary, rows, as_json)


@cli.group("work-orgs")
def work_orgs_group() -> None:
    """Work-unit Party organisations (单位党组织)."""


@work_orgs_group.command("report")
@click.argument("name")
@click.option("--json", "as_json", is_flag=True, help="Print as JSON.")
@audited("work-orgs report", lambda kw: f"work-org:{kw['name']}")
def report(name: str, as_json: bool) -> None:
    """The organisation's community and where each of its members lives."""
    try:
        data = work_orgs.work_org_report(services(), name=name, viewer=cli_principal())
    except ServiceError as exc:
        raise fail(exc) from exc
    if as_json:
        print_json(data)
        return
    org = data["organisation"]
    where = org["community"]
    click.echo(f"{org['name']}: {org['status']}, community "
               f"{where['code'] + ' ' + where['name'] if where else '-'}")
    counts = data["counts"]
    click.echo(f"members {counts['members']}, assigned {counts['assigned']}, living in its "
               f"community {counts['living_in_its_community']}")
    for m in data["members"]:
        home = " > ".join(e["name"] for e in m["residence"].values()) or "-"
        click.echo(f"  {m['name']:<8} {m['phone']}  {m['status']:<18} {home}")

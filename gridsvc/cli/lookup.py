"""Commands for "which grid do I report to" and the address gazetteer."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import click

from gridsvc.cli.common import Progress, audited, cli, print_json, services
from gridsvc.services import lookup as lookup_service
from gridsvc.services.contacts import ALL  # the command line acts as an administrator
from gridsvc.services.errors import ServiceError
from gridsvc.services.gazetteer import import_gazetteer
from gridsvc.spatial.coordsys import COORDSYS


def _table(rows: Sequence[Sequence[str]]) -> str:
    """Columns padded by display width (a Chinese character takes two cells)."""

    def width(text: str) -> int:
        return sum(2 if ord(ch) > 0x2E80 else 1 for ch in text)

    widths = [max(width(r[i]) for r in rows) for i in range(len(rows[0]))]
    return "\n".join(
        "  ".join(cell + " " * (w - width(cell)) for cell, w in zip(row, widths, strict=True))
        .rstrip()
        for row in rows)


def _contact(entry: dict[str, Any]) -> str:
    contact = entry["contact"]
    return " ".join(v for v in (contact["name"], contact["phone"]) if v) or "(no leader)"


def format_answer(answer: dict[str, Any]) -> str:
    """The chain as a table, then the household, the point and the match."""
    rows = [("level", "code", "name", "contact")]
    rows += [(e["level_name"], e["code"], e["name"], _contact(e)) for e in answer["chain"]]
    hh = answer["household"]
    household = (f"{hh['name']} ({hh['code']}), {_contact(hh)}; rule: {hh['rule']}"
                 if hh else "none responsible (a coverage gap)")
    match, point = answer["match"], answer["point"]
    how = (f"address {match['address']} ({match['level']}, score {match['score']})"
           if match["method"] == "address" else f"point given in {match['coordsys']}")
    return (f"{_table(rows)}\n\n党员中心户: {household}\n"
            f"match: {how}; at {point['lon']}, {point['lat']} wgs84")


def _problem_text(error: ServiceError) -> str:
    lines = [error.detail]
    nearest = error.extra.get("nearest")
    if nearest:
        lines.append(f"nearest unit: {nearest['code']} {nearest['name']} "
                     f"({nearest['distance_m']} m away; a fallback only, not an assignment)")
    for c in error.extra.get("candidates") or []:
        lines.append(f"candidate: {c['address']} ({c['level']}, score {c['score']})")
    return "\n".join(lines)


@cli.command("lookup")
@click.option("--lon", type=float, help="Longitude in --coordsys.")
@click.option("--lat", type=float, help="Latitude in --coordsys.")
@click.option("--coordsys", type=click.Choice(COORDSYS, case_sensitive=False),
              help="The system of --lon/--lat (required with them).")
@click.option("--address", help="A home address instead of a point.")
@click.option("--district", help="With --address: the district when the address lacks it.")
@click.option("--json", "as_json", is_flag=True, help="Print the answer as JSON.")
def lookup(lon: float | None, lat: float | None, coordsys: str | None, address: str | None,
           district: str | None, as_json: bool) -> None:
    """Which grid do I report to: the chain of units for a point or an address."""
    if (address is None) == (lon is None and lat is None):
        raise click.UsageError("give either --lon, --lat and --coordsys, or --address")
    svc = services()
    try:
        answer = (lookup_service.lookup_address(svc, address, district, ALL)
                  if address is not None
                  else lookup_service.lookup_point(svc, lon, lat, coordsys, ALL))
    except ServiceError as exc:
        if as_json:
            print_json({"type": f"/problems/{exc.slug}", "title": exc.title,
                        "status": exc.status, "detail": exc.detail, **exc.extra})
        click.echo(f"Error: {_problem_text(exc)}", err=True)
        raise SystemExit(1) from None
    finally:
        svc.close()
    if as_json:
        print_json(answer)
    else:
        click.echo(format_answer(answer))


@cli.command("import-gazetteer")
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@audited("import-gazetteer", lambda kw: f"file:{kw['file'].name}")
def import_gazetteer_command(file: Path) -> None:
    """Import standard addresses (CSV or GeoJSON points) into the address gazetteer.

    CSV columns: address, lon, lat, coordsys; district and unit_code optional. Re-importing
    a file of the same name replaces its entries; rows with problems are listed and skipped.
    """
    svc = services()
    progress = Progress()
    try:
        result = import_gazetteer(svc, file, progress=progress)
    except ServiceError as exc:
        raise click.ClickException(exc.detail) from None
    finally:
        progress.close()
        svc.close()
    if result.problems:
        rows = [("row", "field", "problem")]
        rows += [(str(p.row), p.field or "", p.message) for p in result.problems]
        click.echo(_table(rows), err=True)
    report = result.as_dict()
    click.echo(f"{file.name}: {report['stored']} stored, {report['rejected']} rejected")
    if result.stored == 0 and result.problems:
        raise click.ClickException("every row failed; nothing was stored or replaced")

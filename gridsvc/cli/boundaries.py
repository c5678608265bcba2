"""Commands for the database and boundaries: init-db, import-boundaries, validate, export."""

from __future__ import annotations

from pathlib import Path

import click

from gridsvc.access import cli_principal
from gridsvc.cli.common import Progress, audited, cli, fail, print_json, services
from gridsvc.services import boundaries as svc_boundaries
from gridsvc.services.errors import ServiceError
from gridsvc.storage.schema import upgrade
from gridsvc.validation.report import Report
from gridsvc.validation.text import format_report


@cli.command("init-db")
def init_db() -> None:
    """Create or upgrade the database schema (safe to run again)."""
    svc = services()
    upgrade(svc.db)
    click.echo(f"database ready ({svc.db.backend}): {svc.db.engine.url!r}")


def _field_map(pairs: tuple[str, ...]) -> dict[str, str]:
    mapping = {}
    for pair in pairs:
        field, sep, column = pair.partition("=")
        if not sep or not field or not column:
            raise click.BadParameter(
                f"{pair!r}: use FIELD=COLUMN, e.g. code=GRID_ID", param_hint="--map"
            )
        mapping[field.strip()] = column.strip()
    return mapping


def _show(report: Report, as_json: bool) -> None:
    if as_json:
        print_json(report.as_dict())
    else:
        click.echo(format_report(report))


FILE = click.Path(exists=True, dir_okay=False, path_type=Path)
file_options = [
    click.option("--encoding", help="Text encoding of Shapefile attributes (default: .cpg, "
                 "else UTF-8 if valid, else GBK/GB18030)."),
    click.option("--map", "mapping", multiple=True, metavar="FIELD=COLUMN",
                 help="Which file column holds a schema field, e.g. --map code=GRID_ID."),
    click.option("--crs", help="CRS of a file that declares none: EPSG code, wgs84 or cgcs2000."),
    click.option("--repair", is_flag=True, help="Repair invalid geometries and report the change."),
    click.option("--json", "as_json", is_flag=True, help="Print the report as JSON."),
]


def with_file_options(func):
    for option in reversed(file_options):
        func = option(func)
    return func


@cli.command("import-boundaries")
@click.argument("file", type=FILE)
@with_file_options
@click.option("--dry-run", is_flag=True, help="Validate only; store nothing.")
@audited("import-boundaries", lambda kw: f"file:{kw['file'].name}")
def import_boundaries(file: Path, encoding: str | None, mapping: tuple[str, ...],
                      crs: str | None, repair: bool, as_json: bool, dry_run: bool) -> None:
    """Validate FILE and, if it has no errors, store it in one transaction."""
    svc = services()
    progress = Progress()
    try:
        outcome = svc_boundaries.import_file(
            svc, file, encoding=encoding, field_map=_field_map(mapping), crs=crs,
            repair=repair, dry_run=dry_run, progress=progress, viewer=cli_principal(),
        )
    except ServiceError as exc:
        raise fail(exc) from exc
    finally:
        progress.close()
    _show(outcome.report, as_json)
    if not outcome.report.ok:
        raise click.ClickException("nothing was stored: fix the errors above")
    if outcome.stored:
        click.echo(f"stored: {outcome.created} created, {outcome.updated} updated, "
                   f"{outcome.unchanged} unchanged")
    else:
        click.echo("dry run: nothing stored")


@cli.command("validate")
@click.argument("file", required=False, type=FILE)
@click.option("--unit", help="Without FILE: validate the stored subtree of this unit code.")
@with_file_options
def validate(file: Path | None, unit: str | None, encoding: str | None,
             mapping: tuple[str, ...], crs: str | None, repair: bool, as_json: bool) -> None:
    """Validate FILE against the stored tree, or without FILE the stored tree itself."""
    svc = services()
    progress = Progress()
    try:
        if file is not None:
            report = svc_boundaries.import_file(
                svc, file, encoding=encoding, field_map=_field_map(mapping), crs=crs,
                repair=repair, dry_run=True, progress=progress, viewer=cli_principal(),
            ).report
        else:
            report = svc_boundaries.validate_stored(svc, unit, viewer=cli_principal())
    except ServiceError as exc:
        raise fail(exc) from exc
    finally:
        progress.close()
    _show(report, as_json)
    if not report.ok:
        raise SystemExit(1)


@cli.command("export")
@click.argument("out", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--unit", help="Export only this unit and its subtree.")
@click.option("--format", "fmt", type=click.Choice(["geojson", "gpkg", "shp"]),
              help="Default: from OUT's suffix (.geojson, .gpkg, .zip).")
def export(out: Path, unit: str | None, fmt: str | None) -> None:
    """Write the tree (or a subtree) to a GeoJSON, GeoPackage or zipped Shapefile."""
    svc = services()
    try:
        count = svc_boundaries.export_tree(svc, out, fmt, unit, viewer=cli_principal())
    except ServiceError as exc:
        raise fail(exc) from exc
    click.echo(f"wrote {count} units to {out}")

"""``gridsvc map coverage|distribution|validation``: a map page as a static HTML file.

The file opens from disk with no server and no network: its layers are inlined and the
scripts and stylesheets are copied into ``vendor/`` beside it (``maps.assets.save_offline``).
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

import click

from gridsvc.access import cli_principal
from gridsvc.cli.common import Progress, audited, cli, fail, services
from gridsvc.services.context import Services
from gridsvc.services.errors import ServiceError

if TYPE_CHECKING:
    import folium

    from gridsvc.maps.layers import LayerStore

OUT = click.option("--out", type=click.Path(dir_okay=False, path_type=Path), required=True,
                   help="The HTML file to write (assets go to vendor/ beside it).")
UNIT = click.option("--unit", help="A unit code: its subtree (default: the whole tree).")


def _write(build: Callable[[LayerStore], folium.Map], out: Path) -> None:
    """Build a map with a fresh layer store and save it offline, with progress on stderr."""
    from gridsvc.maps.assets import save_offline
    from gridsvc.maps.layers import LayerStore

    progress = Progress()
    svc: Services = services()
    try:
        progress("load", 0, 1)
        store = LayerStore(svc)
        store.index()
        progress("layers", 0, 1)
        m = build(store)
        progress("write", 0, 1)
        save_offline(m, out)
    except ServiceError as exc:
        raise fail(exc) from exc
    finally:
        progress.close()
        svc.close()
    click.echo(f"wrote {out} ({out.stat().st_size / 1e6:.1f} MB)")


@cli.group("map")
def map_group() -> None:
    """Write a map page as a static HTML file."""


@map_group.command("coverage")
@UNIT
@OUT
def coverage(unit: str | None, out: Path) -> None:
    """Coverage: members per 100 households, grids and buildings without a leader."""
    from gridsvc.maps.coverage import coverage_map

    _write(lambda store: coverage_map(store, unit, api=None), out)


@map_group.command("distribution")
@UNIT
@OUT
@click.option("--members", is_flag=True,
              help="Every member's home, name and phone (personal data: staff only). "
                   "Default: counts per micro-grid.")
@audited("map distribution", lambda kw: "members" if kw["members"] else None)
def distribution(unit: str | None, out: Path, members: bool) -> None:
    """Members as clusters and a heat map."""
    from gridsvc.maps.distribution import distribution_map

    _write(lambda store: distribution_map(store, unit, detail=members, api=None), out)


@map_group.command("validation")
@click.argument("file", required=False, type=click.Path(exists=True, dir_okay=False,
                                                         path_type=Path))
@UNIT
@OUT
@click.option("--encoding", help="Encoding of a Shapefile without .cpg (e.g. gbk).")
@click.option("--crs", help="CRS of a file that declares none, e.g. EPSG:4549.")
def validation(file: Path | None, unit: str | None, out: Path, encoding: str | None,
               crs: str | None) -> None:
    """The problems of FILE (validated against the stored tree), or of the stored tree."""
    from gridsvc.maps.validation import uploaded_records, validation_map
    from gridsvc.services import boundaries

    def build(store: LayerStore) -> folium.Map:
        if file is None:
            report = boundaries.validate_stored(store.svc, unit, viewer=cli_principal())
            return validation_map(store, report, unit=unit, api=None)
        outcome = boundaries.import_file(store.svc, file, encoding=encoding, crs=crs,
                                         dry_run=True, viewer=cli_principal())
        records = uploaded_records(file, encoding=encoding, crs=crs,
                                   zip_limits=boundaries.zip_limits(store.svc.settings))
        click.echo(f"{len(outcome.report.errors)} errors, {len(outcome.report.warnings)} "
                   "warnings", err=True)
        return validation_map(store, outcome.report, uploaded=records, title=file.name,
                              api=None)

    _write(build, out)

"""Commands that run things: the demo city loader and the web server."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click

from gridsvc.cli.common import Progress, cli, services
from gridsvc.demo.city import generate_city, write_demo
from gridsvc.services.boundaries import import_records
from gridsvc.storage.schema import upgrade
from gridsvc.validation.text import format_report


@cli.command("demo")
@click.option("--seed", default=1, show_default=True, help="Same seed, same city.")
@click.option("--scale", type=click.Choice(["small", "city"]), default="small", show_default=True,
              help="small: 3 streets, 600 buildings; city: 40 streets, 77,000 buildings.")
@click.option("--out", type=click.Path(file_okay=False, path_type=Path),
              help="Also write city.geojson and gazetteer.csv to this folder.")
@click.option("--load/--no-load", default=True, show_default=True,
              help="Load the city into the database.")
def demo(seed: int, scale: str, out: Path | None, load: bool) -> None:
    """Generate a demo city (deterministic from --seed) and load it."""
    click.echo(f"generating the {scale} demo city (seed {seed}) ...", err=True)
    city = generate_city(seed=seed, scale=scale)
    if out is not None:
        write_demo(city, out)
        click.echo(f"wrote {out}/city.geojson and {out}/gazetteer.csv", err=True)
    if not load:
        return
    svc = services()
    upgrade(svc.db)
    progress = Progress()
    try:
        outcome = import_records(svc, city.records, progress=progress)
    finally:
        progress.close()
    if not outcome.report.ok:
        click.echo(format_report(outcome.report), err=True)
        raise click.ClickException("the demo city did not validate")
    click.echo(f"demo city loaded: {outcome.created} created, {outcome.updated} updated, "
               f"{outcome.unchanged} unchanged")


@cli.command("serve")
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=5000, show_default=True, type=int)
@click.option("--workers", default=2, show_default=True, type=int, help="gunicorn workers.")
@click.option("--dev", is_flag=True, help="Flask's reloading development server instead.")
def serve(host: str, port: int, workers: int, dev: bool) -> None:
    """Serve the web API and maps (gunicorn; --dev for Flask's server)."""
    from gridsvc.web import create_app

    if dev:
        create_app().run(host=host, port=port, debug=True)
        return
    from gunicorn.app.base import BaseApplication

    class _Server(BaseApplication):  # type: ignore[misc]
        def load_config(self) -> None:
            self.cfg.set("bind", f"{host}:{port}")
            self.cfg.set("workers", workers)
            self.cfg.set("accesslog", "-")

        def load(self) -> Any:
            return create_app()

    click.echo(f"gridsvc on http://{host}:{port}/", err=True)
    _Server().run()

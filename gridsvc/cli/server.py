"""Commands that run things: the demo city loader and the web server."""

from __future__ import annotations

import gc
import os
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import click
from gunicorn.app.base import BaseApplication

from gridsvc.access import cli_principal
from gridsvc.cli.common import Progress, audited, cli, services
from gridsvc.demo.city import SCALES, SHAPES, generate_city, write_demo
from gridsvc.demo.members import demo_roster, write_roster
from gridsvc.services.boundaries import import_records
from gridsvc.services.context import Services
from gridsvc.services.members import import_members
from gridsvc.storage.schema import upgrade
from gridsvc.validation.text import format_report


@cli.command("demo")
@click.option("--seed", default=1, show_default=True, help="Same seed, same city.")
@click.option("--scale", type=click.Choice(list(SCALES)), default="small", show_default=True,
              help="small: 3 streets, 600 buildings; city: 40 streets, 77,000 buildings; "
                   "district: 20 streets, 2,900 grids; province: 400 streets, 760,000 "
                   "buildings (for make bench-province; use --no-load --out).")
@click.option("--shape", type=click.Choice(SHAPES), default="rect", show_default=True,
              help="rect: straight streets, 4-5 vertices a cell; organic: streets traced with "
                   "~1,000 vertices a grid outline (grids then tile their communities).")
@click.option("--out", type=click.Path(file_okay=False, path_type=Path),
              help="Also write city.geojson and gazetteer.csv to this folder.")
@click.option("--load/--no-load", default=True, show_default=True,
              help="Load the city into the database.")
@click.option("--members/--no-members", default=None,
              help="Also register a made-up roster, about 3 members a building "
                   "[default: on for small, off for city].")
@click.option("--needs", "need_count", type=int, default=None,
              help="Also order this many made-up needs and run them through the service "
                   "loop (needs members) [default: 200 for small, 0 otherwise].")
@audited("demo")
def demo(seed: int, scale: str, shape: str, out: Path | None, load: bool,
         members: bool | None, need_count: int | None) -> None:
    """Generate a demo city (deterministic from --seed) and load it."""
    click.echo(f"generating the {scale} {shape} demo city (seed {seed}) ...", err=True)
    city = generate_city(seed=seed, scale=scale, shape=shape)
    if out is not None:
        write_demo(city, out)
        click.echo(f"wrote {out}/city.geojson and {out}/gazetteer.csv", err=True)
    if not load:
        return
    svc = services()
    upgrade(svc.db)
    progress = Progress()
    try:
        outcome = import_records(svc, city.records, progress=progress, viewer=cli_principal())
    finally:
        progress.close()
    if not outcome.report.ok:
        click.echo(format_report(outcome.report), err=True)
        raise click.ClickException("the demo city did not validate")
    click.echo(f"demo city loaded: {outcome.created} created, {outcome.updated} updated, "
               f"{outcome.unchanged} unchanged")
    if members if members is not None else scale == "small":
        with tempfile.TemporaryDirectory() as folder:
            roster = write_roster(demo_roster(city, seed), Path(folder) / "demo-roster.csv")
            counts = import_members(svc, roster, progress=Progress(),
                                    viewer=cli_principal())["counts"]
        click.echo("demo members: " + ", ".join(f"{k} {v}" for k, v in counts.items()))
    need_count = (200 if scale == "small" else 0) if need_count is None else need_count
    if need_count > 0:
        from gridsvc.demo.loop import seed_needs, summary

        click.echo(f"demo needs: {summary(seed_needs(svc, seed, need_count))}")
    community = next(r.code for r in city.records if r.level == 2)
    path = demo_tokens(svc, community)
    click.echo(f"demo tokens (admin; planner and staff of community {community}; a member) "
               f"in {path}")


def demo_tokens(svc: Services, community: str) -> Path:
    """Make the demo's tokens, revoking earlier demo tokens, and write them to
    ``<instance>/demo-tokens.txt`` (readable by the owner only): the demo's way in."""
    from sqlalchemy import select

    from gridsvc.services import accounts
    from gridsvc.storage.models import Member

    for old in accounts.list_tokens(svc):
        if old["name"].startswith("demo "):
            accounts.revoke_token(svc, old["id"])
    with svc.db.session() as session:
        member_id = session.scalar(select(Member.id).where(Member.status == "assigned")
                                   .order_by(Member.id).limit(1))
    wanted: list[tuple[str, str | None, int | None]] = [
        ("admin", None, None), ("planner", community, None), ("staff", community, None)]
    if member_id is not None:
        wanted.append(("member", None, member_id))
    lines = []
    for role, unit, member in wanted:
        secret, _ = accounts.create_token(svc, f"demo {role}", role, unit=unit,
                                          member_id=member)
        lines.append(f"{role:<8} {secret}  {unit or ''}{f'member {member}' if member else ''}")
    path = Path(svc.settings.instance_dir) / "demo-tokens.txt"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.touch(mode=0o600)
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def default_workers() -> int:
    """One worker process per core: a lookup is CPU work, threads cover waiting clients."""
    return max(1, os.cpu_count() or 1)


@dataclass(frozen=True)
class ServeOptions:
    """How ``gridsvc serve`` runs gunicorn (see ``serve``)."""

    host: str = "127.0.0.1"
    port: int = 5000
    workers: int = field(default_factory=default_workers)
    threads: int = 4
    timeout: int = 120
    access_log: bool = False

    def gunicorn_settings(self) -> dict[str, Any]:
        """gunicorn's settings for these options."""
        return {
            "bind": f"{self.host}:{self.port}",
            "workers": self.workers,
            # gthread (keeps connections alive, unlike sync workers) whose own error answers
            # (URI or headers too long, a malformed request) are problem+json
            "worker_class": "gridsvc.web.edge.ProblemThreadWorker",
            "threads": self.threads,
            "timeout": self.timeout,
            "accesslog": "-" if self.access_log else None,
            # the path without its query string: lookups carry addresses and points there
            "access_log_format": '%(h)s %(t)s "%(m)s %(U)s %(H)s" %(s)s %(B)s %(M)sms',
            "preload_app": True,
            # gunicorn 25+ opens a control socket at one fixed path per user by default; two
            # servers on one machine (a test next to `make run`) would fight over it.
            "control_socket_disable": True,
        }


class GunicornServer(BaseApplication):
    """gunicorn around ``make_app``, loaded once in the master before the workers fork.

    The master builds the app, warms the spatial index and the gazetteer
    (``Services.warm``), and closes its database connections; each worker then starts with
    both in memory, shared copy-on-write, and drops any pooled connection it inherited
    (``post_fork``). The master freezes what it built (``gc.freeze``) so that the workers'
    garbage collector leaves those pages unwritten. Workers still rebuild on their own when a
    stored revision moves.
    """

    def __init__(self, options: ServeOptions, make_app: Callable[[], Any]) -> None:
        self.options = options
        self.make_app = make_app
        self.services: Services | None = None
        super().__init__()

    def load_config(self) -> None:
        for name, value in self.options.gunicorn_settings().items():
            self.cfg.set(name, value)
        self.cfg.set("post_fork", self.post_fork)

    def load(self) -> Any:
        app = self.make_app()
        self.services = app.extensions["gridsvc"]
        try:
            started = time.perf_counter()
            self.services.warm()
            # the objects built so far are the workers' shared picture: out of the cyclic
            # garbage collector's reach, whose passes in a worker would otherwise write to
            # (and so copy) every page holding them
            gc.collect()
            gc.freeze()
            click.echo(f"index and gazetteer ready in {time.perf_counter() - started:.1f} s",
                       err=True)
        except Exception as exc:  # e.g. no schema yet: workers build on first use instead
            click.echo(f"warning: could not build the index before forking ({exc}); each "
                       f"worker builds it on first use", err=True)
            self.services.db.dispose()
        return app

    def post_fork(self, server: Any, worker: Any) -> None:
        if self.services is not None:
            self.services.after_fork()


@cli.command("serve")
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=5000, show_default=True, type=click.IntRange(0, 65535))
@click.option("--workers", type=click.IntRange(min=1),
              help="Worker processes.  [default: one per core]")
@click.option("--threads", default=ServeOptions.threads, show_default=True,
              type=click.IntRange(min=1),
              help="Threads per worker: connections served at once, kept alive between "
                   "requests.")
@click.option("--timeout", default=ServeOptions.timeout, show_default=True,
              type=click.IntRange(min=1),
              help="Seconds a silent worker may take before it is restarted.")
@click.option("--access-log", is_flag=True, help="Log every request to stdout.")
@click.option("--dev", is_flag=True, help="Flask's reloading development server instead.")
def serve(host: str, port: int, workers: int | None, threads: int, timeout: int,
          access_log: bool, dev: bool) -> None:
    """Serve the web API and maps (gunicorn; --dev for Flask's server).

    The index and the gazetteer are built once, before the workers start."""
    from gridsvc.web import create_app

    if dev:
        create_app().run(host=host, port=port, debug=True)
        return
    options = ServeOptions(host=host, port=port, workers=workers or default_workers(),
                           threads=threads, timeout=timeout, access_log=access_log)
    click.echo(f"gridsvc on http://{host}:{port}/ ({options.workers} workers x "
               f"{options.threads} threads)", err=True)
    run_server(options, create_app)


def run_server(options: ServeOptions, make_app: Callable[[], Any]) -> None:
    """Run gunicorn until it is stopped."""
    GunicornServer(options, make_app).run()

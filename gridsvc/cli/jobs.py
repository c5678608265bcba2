"""Scheduled jobs: ``gridsvc jobs run [--only NAME] [--force]`` and ``gridsvc jobs list``
(see gridsvc.services.jobs). Run ``gridsvc jobs run`` from cron or a systemd timer on every
host; the database lease lets one host run each due job."""

from __future__ import annotations

import click

from gridsvc.access import cli_principal
from gridsvc.cli.common import audited, cli, fail, print_json, services
from gridsvc.services import jobs as scheduled
from gridsvc.services.errors import ServiceError


@cli.group("jobs")
def jobs() -> None:
    """Scheduled jobs (the audit purge, later reminders and escalations)."""


@jobs.command("run")
@click.option("--only", help="Run only this job (when due).")
@click.option("--force", is_flag=True, help="Run even when not due (never while another "
              "host runs it).")
@audited("jobs run", lambda kw: f"job:{kw['only']}" if kw.get("only") else None)
def run(only: str | None, force: bool) -> None:
    """Run every due job once; exit 1 when one failed."""
    try:
        outcomes = scheduled.run_due(services(), only, actor=cli_principal(), force=force)
    except ServiceError as exc:
        raise fail(exc) from exc
    for o in outcomes:
        click.echo(f"{o.name:<24} {o.status:<8} {o.result}".rstrip())
    failed = [o.name for o in outcomes if o.status == "failed"]
    if failed:
        raise click.ClickException(f"failed: {', '.join(failed)}")


@jobs.command("list")
@click.option("--json", "as_json", is_flag=True)
def list_jobs(as_json: bool) -> None:
    """Every job, its period, last run and result, and when it is next due."""
    listed = scheduled.describe(services())
    if as_json:
        print_json(listed)
        return
    click.echo(f"{'job':<20} {'every':>8}  {'last success':<25} {'next due':<25} last result")
    for j in listed:
        every = f"{j['every_s'] // 3600}h" if j["every_s"] % 3600 == 0 else f"{j['every_s']}s"
        running = f"  (running on {j['running_on']})" if j["running_on"] else ""
        click.echo(f"{j['name']:<20} {every:>8}  {j['last_ok_at'] or 'never':<25} "
                   f"{j['next_due']:<25} {j['last_result'] or '-'}{running}")

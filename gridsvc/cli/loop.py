"""The service loop for staff at the command line: ``gridsvc resident add``, ``gridsvc outbox
list|send`` (what would be sent, and sending it with the log sender). The command line acts
as the system actor (``gridsvc.access.cli_principal``)."""

from __future__ import annotations

import click

from gridsvc.access import cli_principal
from gridsvc.cli.common import audited, cli, fail, print_json, services
from gridsvc.services.errors import ServiceError
from gridsvc.services.loop import outbox as outbox_service
from gridsvc.services.loop import residents


@cli.group("resident")
def resident() -> None:
    """Residents who order and rate their own needs (a verified phone)."""


@resident.command("add")
@click.option("--name", required=True)
@click.option("--phone", required=True, help="The mainland mobile number you verified.")
@audited("resident add")
def add(name: str, phone: str) -> None:
    """Record a resident; prints their id (for `gridsvc token create --role resident`)."""
    try:
        info = residents.add_resident(services(), cli_principal(),
                                      {"name": name, "phone": phone})
    except ServiceError as exc:
        raise fail(exc) from exc
    click.echo(info["id"])


@cli.group("outbox")
def outbox() -> None:
    """Notifications: what would be sent, and sending it."""


@outbox.command("list")
@click.option("--status", type=click.Choice(list(outbox_service.STATUSES)), default="pending")
@click.option("--limit", type=int, default=100)
@click.option("--json", "as_json", is_flag=True)
def list_(status: str, limit: int, as_json: bool) -> None:
    """Messages (ids and templates, no personal data), oldest first."""
    try:
        page = outbox_service.list_outbox(services(), cli_principal(), status=status,
                                          limit=limit)
    except ServiceError as exc:
        raise fail(exc) from exc
    if as_json:
        print_json(page)
        return
    for m in page["items"]:
        click.echo(f"{m['id']:>6}  {m['template']:<20} {m['recipient']['kind']}:"
                   f"{m['recipient']['id']:<8} need {m['need_id'] or '-'}  {m['status']}")
    click.echo(f"{page['total']} {status}", err=True)


@outbox.command("send")
@audited("outbox send")
def send() -> None:
    """Send the pending messages with the configured sender (the log, by default)."""
    click.echo(f"{outbox_service.send_pending(services(), cli_principal())} messages sent")

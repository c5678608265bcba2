"""Accounts and the audit log: ``gridsvc token create|list|revoke``, ``gridsvc audit
list|purge``. The command line acts as an administrator (see gridsvc.access)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import click

from gridsvc.access import Role, cli_principal
from gridsvc.cli.common import audited, cli, fail, print_json, services
from gridsvc.services import accounts
from gridsvc.services import audit as audit_log
from gridsvc.services.errors import ServiceError

ROLES = [r.value for r in Role if r is not Role.PUBLIC]


@cli.group("token")
def token() -> None:
    """API tokens (stored hashed; a token is shown once, when it is made)."""


@token.command("create")
@click.option("--name", required=True, help="Who or what uses it, e.g. 'Zhang Wei, C01 staff'.")
@click.option("--role", required=True, type=click.Choice(ROLES))
@click.option("--unit", help="Planner/staff: the code of the unit at the root of their "
              "subtree (default: the whole city).")
@click.option("--member", "member_id", type=int, help="Member tokens: the member's id.")
@click.option("--resident", "resident_id", type=int, help="Resident tokens: the resident's id.")
@click.option("--work-org", "work_org_id", type=int,
              help="Unit tokens: the work-unit organisation's id.")
@click.option("--expires-days", type=int, help="Expire after this many days (default: never).")
@click.option("--json", "as_json", is_flag=True, help="Print the token and its record as JSON.")
@audited("token create", lambda kw: f"unit:{kw['unit']}" if kw.get("unit") else None)
def create(name: str, role: str, unit: str | None, member_id: int | None,
           resident_id: int | None, work_org_id: int | None, expires_days: int | None,
           as_json: bool) -> None:
    """Make a token and print it (the only time it is shown)."""
    try:
        secret, info = accounts.create_token(services(), name, role, unit=unit,
                                             member_id=member_id, resident_id=resident_id,
                                             work_org_id=work_org_id,
                                             expires_days=expires_days)
    except ServiceError as exc:
        raise fail(exc) from exc
    if as_json:
        print_json({"token": secret, **info})
        return
    click.echo(secret)
    click.echo(f"token {info['id']} ({info['role']}, {info['unit'] or 'whole city'}) for "
               f"{info['name']}; send it as 'Authorization: Bearer <token>'", err=True)


@token.command("list")
@click.option("--all", "include_revoked", is_flag=True, help="Include revoked tokens.")
@click.option("--json", "as_json", is_flag=True)
def list_(include_revoked: bool, as_json: bool) -> None:
    """The tokens (never the secrets): id, prefix, role, subtree, name."""
    rows = accounts.list_tokens(services(), include_revoked=include_revoked)
    if as_json:
        print_json(rows)
        return
    for r in rows:
        state = "revoked" if r["revoked_at"] else (f"expires {r['expires_at']}"
                                                   if r["expires_at"] else "active")
        click.echo(f"{r['id']:>4}  {r['prefix']}…  {r['role']:<8} {r['unit'] or '*':<14} "
                   f"{state:<10} {r['name']}")


@token.command("revoke")
@click.argument("token_id", type=int)
@audited("token revoke", lambda kw: f"token:{kw['token_id']}")
def revoke(token_id: int) -> None:
    """Revoke a token by id: it stops working at once."""
    try:
        info = accounts.revoke_token(services(), token_id)
    except ServiceError as exc:
        raise fail(exc) from exc
    click.echo(f"token {info['id']} ({info['name']}) revoked at {info['revoked_at']}")


@cli.group("audit")
def audit() -> None:
    """The audit log: who did what, when, on which record, with what result."""


@audit.command("list")
@click.option("--actor", help="Exactly this actor (token name, or cli:<user>).")
@click.option("--action", help="Actions starting with this, e.g. 'PUT /api/v1/members'.")
@click.option("--target", help="Exactly this record, e.g. member:12 or unit:320602001001.")
@click.option("--days", type=int, default=7, show_default=True, help="Entries of the last N days.")
@click.option("--limit", type=int, default=100, show_default=True)
@click.option("--json", "as_json", is_flag=True)
def list_entries(actor: str | None, action: str | None, target: str | None, days: int,
                 limit: int, as_json: bool) -> None:
    """Entries, newest first."""
    try:
        page = audit_log.query(services(), viewer=cli_principal(), actor=actor, action=action,
                               target=target,
                               since=datetime.now(UTC) - timedelta(days=days), limit=limit)
    except ServiceError as exc:
        raise fail(exc) from exc
    if as_json:
        print_json(page)
        return
    for e in page["items"]:
        click.echo(f"{e['at'][:19]}  {e['actor']:<24} {e['role']:<8} {e['action']:<44} "
                   f"{e['target'] or '-':<24} {e['result']}")
    click.echo(f"{len(page['items'])} of {page['total']} entries", err=True)


@audit.command("purge")
@click.option("--days", type=int, help="Keep this many days (default: "
              "GRIDSVC_AUDIT_RETENTION_DAYS, 180).")
@audited("audit purge")
def purge(days: int | None) -> None:
    """Delete entries older than the retention period."""
    try:
        removed = audit_log.purge(services(), days)
    except ServiceError as exc:
        raise fail(exc) from exc
    click.echo(f"{removed} audit entries removed")

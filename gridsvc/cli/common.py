"""The command group, shared options and the progress display."""

from __future__ import annotations

import functools
import json
import sys
import time
from collections.abc import Callable
from typing import Any, TypeVar

import click

from gridsvc import logsafe
from gridsvc.services.context import Services
from gridsvc.services.errors import ServiceError
from gridsvc.settings import Settings, SettingsError

F = TypeVar("F", bound=Callable[..., Any])


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="gridsvc")
def cli() -> None:
    """gridsvc: grid-based Party organisation for city communities."""
    logsafe.install()
    try:  # every command checks the settings before it starts (gridsvc.settings)
        Settings.from_env()
    except SettingsError as exc:
        raise BadSettings(str(exc)) from None


class BadSettings(click.ClickException):
    """A GRIDSVC_* variable is wrong: the message names it; exit status 2."""

    exit_code = 2


def services() -> Services:
    """Services for the configured database; the schema must be current (run init-db)."""
    try:
        return Services.from_settings(Settings.from_env())
    except ValueError as exc:
        raise click.ClickException(str(exc)) from exc


def fail(exc: ServiceError) -> click.ClickException:
    return click.ClickException(exc.detail)


def print_json(data: Any) -> None:
    click.echo(json.dumps(data, ensure_ascii=False, indent=2, default=str))


class Progress:
    """A progress callback for services: one line per step on stderr, redrawn in place on a
    terminal, throttled to a few updates a second."""

    def __init__(self) -> None:
        self.step = ""
        self.last = 0.0
        self.tty = sys.stderr.isatty()

    def __call__(self, step: str, done: int, total: int) -> None:
        now = time.monotonic()
        new_step = step != self.step
        if new_step and self.step and self.tty:
            click.echo("", err=True)
        if not (new_step or done >= total or now - self.last > 0.25):
            return
        self.step, self.last = step, now
        pct = f" {100 * done // total:3d}%" if total > 1 else ""
        line = f"{step:>10}: {done}/{total}{pct}" if total > 1 else f"{step:>10} ..."
        if self.tty:
            click.echo("\r" + line, nl=False, err=True)
        elif new_step or done >= total:
            click.echo(line, err=True)

    def close(self) -> None:
        if self.tty and self.step:
            click.echo("", err=True)


def audited(action: str, target: Callable[[dict[str, Any]], str | None] | None = None
            ) -> Callable[[F], F]:
    """Record a command in the audit log as ``cli:<os user>`` (an administrator), with its
    outcome: for every command that writes or shows personal data. ``target`` names the record
    from the command's parameters."""

    def wrap(func: F) -> F:
        @functools.wraps(func)
        def run(*args: Any, **kwargs: Any) -> Any:
            from gridsvc.access import cli_principal
            from gridsvc.services import audit

            where = target(kwargs) if target else None
            result = "failed"
            try:
                out = func(*args, **kwargs)
                result = "ok"
                return out
            except click.ClickException as exc:
                result = f"failed: {type(exc).__name__}"
                raise
            finally:
                audit.record(services(), cli_principal(), f"cli {action}", target=where,
                             result=result)

        return run  # type: ignore[return-value]  # functools.wraps keeps the signature

    return wrap

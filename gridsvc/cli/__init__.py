"""The ``gridsvc`` command line. Every command works on the database named by
``GRIDSVC_DATABASE_URL`` (default: the SpatiaLite file under the instance folder)."""

from __future__ import annotations

from gridsvc.cli import (
    accounts,
    boundaries,
    coverage,
    jobs,
    lookup,
    loop,
    maps,
    members,
    server,
)
from gridsvc.cli.common import cli


def main() -> None:
    cli(prog_name="gridsvc")


__all__ = [
    "accounts", "boundaries", "cli", "coverage", "jobs", "lookup", "loop", "main", "maps",
    "members", "server",
]

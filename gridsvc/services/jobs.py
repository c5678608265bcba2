"""Scheduled jobs: work that runs every so often, outside any request.

``gridsvc jobs run [--only NAME]`` (from cron or a systemd timer, on one host or many) runs
each job that is due, once; ``gridsvc jobs list`` shows every job with its last run and when it
is next due. Registering a job is one line at the bottom of this module::

    register("audit-purge", timedelta(days=1), _purge_audit)
register("points-month-end", timedelta(days=1), _remind_zero_points)  # once a month, see points
register("outbox-send", timedelta(minutes=5), _send_outbox)
register("loop-escalate", timedelta(hours=1), _escalate)

where the function takes the ``Services`` and the actor running the jobs (the command line's
system actor, ``gridsvc.access.cli_principal``, recorded in the audit log), does its work in
its own transactions and returns a one-line summary (ids and counts, never personal data),
stored as the job's last result.

Rules:

- **due**: the job's period has elapsed since the start of its last successful run, less a
  slack of a tenth of the period (at most five minutes) so that a cron line of the same period
  does not slip by one tick a day; a job that never succeeded is due;
- **idempotent**: a ``jobs run`` runs a due job once and records it (table ``jobs``, one row a
  job), so repeating the command at once runs nothing;
- **one host at a time**: a run claims the job with one conditional ``UPDATE`` of its row (set
  the lease owner and expiry where the job is due and no live lease is held): SQLite lets one
  writer in at a time and PostgreSQL re-checks the condition after the other transaction's row
  lock is released, so of two hosts (or processes) exactly one claims it and the other reports
  it busy. The lease lasts the job's ``lease`` (default one hour); a host that dies mid-run
  holds the job until its lease expires, so a job must finish within its lease;
- **failure**: an exception is recorded (``failed: <ExceptionClass>``) and releases the lease;
  the job stays due and the next run retries it; the command exits non-zero;
- ``force`` (``--force``) runs a job that is not due, still under the lease.
"""

from __future__ import annotations

import logging
import os
import socket
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, cast

from sqlalchemy import CursorResult, or_, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert

from gridsvc.access import Principal
from gridsvc.services import audit
from gridsvc.services.context import Services
from gridsvc.services.errors import NotFound
from gridsvc.storage.models import JobRun, utcnow

log = logging.getLogger(__name__)

DEFAULT_LEASE = timedelta(hours=1)
MAX_SLACK = timedelta(minutes=5)


@dataclass(frozen=True)
class Job:
    name: str
    every: timedelta
    run: Callable[[Services, Principal], str]
    lease: timedelta = DEFAULT_LEASE

    @property
    def slack(self) -> timedelta:
        return min(self.every / 10, MAX_SLACK)

    def due_at(self, last_ok: datetime | None) -> datetime | None:
        """When the job is next due (None: now, it never succeeded)."""
        return None if last_ok is None else last_ok + self.every - self.slack


@dataclass(frozen=True)
class Outcome:
    """What ``run_due`` did with one job: ``ran``, ``failed``, ``not-due`` or ``busy``."""

    name: str
    status: str
    result: str = ""


JOBS: dict[str, Job] = {}


def register(name: str, every: timedelta, run: Callable[[Services, Principal], str], *,
             lease: timedelta = DEFAULT_LEASE) -> Job:
    """Add a job (names are unique; ``every`` at least a minute)."""
    if name in JOBS:
        raise ValueError(f"a job named {name!r} is already registered")
    if every < timedelta(minutes=1) or lease <= timedelta(0):
        raise ValueError(f"job {name!r}: the period must be at least a minute, the lease > 0")
    JOBS[name] = job = Job(name, every, run, lease)
    return job


def run_due(services: Services, only: str | None = None, *, actor: Principal,
            force: bool = False, owner: str | None = None) -> list[Outcome]:
    """Run every due job (or only ``only``) once as ``actor``, each under its lease; their
    outcomes. ``owner`` names this host in the lease (default host:pid:random)."""
    if only is not None and only not in JOBS:
        raise NotFound(f"no job named {only!r}; there are: {', '.join(sorted(JOBS))}",
                       field="only")
    owner = owner or f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"
    return [_run_one(services, job, actor, owner, force)
            for job in JOBS.values() if only is None or job.name == only]


def _run_one(services: Services, job: Job, actor: Principal, owner: str,
             force: bool) -> Outcome:
    _ensure_row(services, job.name)
    started = utcnow()
    if not _claim(services, job, owner, started, force):
        with services.db.session() as session:
            row = session.get(JobRun, job.name)
            busy = (row is not None and row.lease_until is not None
                    and row.lease_until >= started)
        return Outcome(job.name, "busy" if busy else "not-due")
    try:
        summary, ok = str(job.run(services, actor)), True
    except Exception as exc:
        log.error("job %s failed: %s", job.name, type(exc).__name__)
        summary, ok = f"failed: {type(exc).__name__}", False
    values: dict[str, Any] = {"last_finished_at": utcnow(), "last_result": summary[:200],
                              "lease_owner": None, "lease_until": None}
    if ok:
        values["last_ok_at"] = started
    with services.db.session() as session:
        session.execute(update(JobRun).where(JobRun.name == job.name,
                                             JobRun.lease_owner == owner).values(**values))
    return Outcome(job.name, "ran" if ok else "failed", summary)


def _ensure_row(services: Services, name: str) -> None:
    """The job's row, made on its first run (INSERT ... ON CONFLICT DO NOTHING: no race)."""
    insert = pg_insert if services.db.engine.dialect.name == "postgresql" else sqlite_insert
    with services.db.session() as session:
        session.execute(insert(JobRun).values(name=name).on_conflict_do_nothing())


def _claim(services: Services, job: Job, owner: str, now: datetime, force: bool) -> bool:
    """Take the job's lease when it is due (or ``force``) and no live lease is held: one
    conditional UPDATE, so two claimants cannot both succeed."""
    claim = update(JobRun).where(
        JobRun.name == job.name,
        or_(JobRun.lease_until.is_(None), JobRun.lease_until < now))
    if not force:
        claim = claim.where(or_(JobRun.last_ok_at.is_(None),
                                JobRun.last_ok_at <= now - job.every + job.slack))
    claim = claim.values(lease_owner=owner, lease_until=now + job.lease, last_started_at=now)
    with services.db.session() as session:
        return cast(CursorResult[Any], session.execute(claim)).rowcount == 1  # an UPDATE


def describe(services: Services) -> list[dict[str, Any]]:
    """Every registered job: its period, last run and result, when it is next due, and who
    holds its lease (times ISO 8601, UTC)."""
    with services.db.session() as session:
        rows = {row.name: row for row in session.scalars(select(JobRun))}
    now = utcnow()
    listed = []
    for job in JOBS.values():
        row = rows.get(job.name)
        last_ok = row.last_ok_at if row else None
        due = job.due_at(last_ok)
        held = row is not None and row.lease_until is not None and row.lease_until >= now

        def iso(value: datetime | None) -> str | None:
            return value.isoformat(timespec="seconds") if value else None

        listed.append({
            "name": job.name, "every_s": int(job.every.total_seconds()),
            "last_started_at": iso(row.last_started_at if row else None),
            "last_ok_at": iso(last_ok), "last_result": row.last_result if row else None,
            "next_due": iso(due) if due and due > now else "now",
            "running_on": row.lease_owner if held and row else None,
        })
    return listed


def _purge_audit(services: Services, _actor: Principal) -> str:
    removed = audit.purge(services)
    return f"{removed} entries older than {services.settings.audit_retention_days} days removed"


def _remind_zero_points(services: Services, actor: Principal) -> str:
    from gridsvc.services.loop.points import remind_zero_points

    done = remind_zero_points(services, actor)
    if done["already"]:
        return f"{done['period']}: reminders already queued"
    return (f"{done['period']}: {done['members']} members and {done['work_orgs']} work-unit "
            "organisations with no points reminded")


def _send_outbox(services: Services, actor: Principal) -> str:
    from gridsvc.services.loop.outbox import send_pending

    return f"{send_pending(services, actor)} messages sent"


def _escalate(services: Services, actor: Principal) -> str:
    from gridsvc.services.loop.escalation import escalate

    done = escalate(services, actor)
    return f"{done['orders']} unanswered orders and {done['needs']} unclaimed needs escalated"


# --- the jobs: one line each ------------------------------------------------------------------

register("audit-purge", timedelta(days=1), _purge_audit)
register("points-month-end", timedelta(days=1), _remind_zero_points)  # once a month, see points
register("outbox-send", timedelta(minutes=5), _send_outbox)
register("loop-escalate", timedelta(hours=1), _escalate)

"""Scheduled jobs (gridsvc.services.jobs): due once per period, recorded, one host at a time
(two Services = two engines and connections, on SpatiaLite and PostGIS), and the CLI."""

from __future__ import annotations

import threading
from datetime import timedelta

import pytest
from click.testing import CliRunner
from sqlalchemy import update

from gridsvc.access import PUBLIC, cli_principal
from gridsvc.cli import cli
from gridsvc.services import audit, jobs
from gridsvc.services.context import Services
from gridsvc.services.errors import NotFound
from gridsvc.storage.models import AuditEntry, JobRun, utcnow

SYSTEM = cli_principal()


def run(host: Services, *args, **kwargs) -> list[jobs.Outcome]:
    """``jobs.run_due`` as the command line's system actor."""
    return jobs.run_due(host, *args, actor=SYSTEM, **kwargs)


@pytest.fixture
def svc(settings):
    services = Services.from_settings(settings)
    yield services
    services.close()


@pytest.fixture
def registry(monkeypatch):
    """An empty job registry for the test (the real jobs are put back afterwards)."""
    monkeypatch.setattr(jobs, "JOBS", {})
    return jobs.JOBS


def set_row(svc: Services, name: str, **values) -> None:
    with svc.db.session() as session:
        session.execute(update(JobRun).where(JobRun.name == name).values(**values))


def row(svc: Services, name: str) -> JobRun:
    with svc.db.session() as session:
        found = session.get(JobRun, name)
        session.expunge(found)
        return found


def test_a_due_job_runs_once_per_period(svc, registry):
    calls = []
    jobs.register("count", timedelta(days=1), lambda s, a: calls.append(1) or f"call {len(calls)}")
    assert run(svc) == [jobs.Outcome("count", "ran", "call 1")]
    assert run(svc) == [jobs.Outcome("count", "not-due")]  # idempotent
    first = row(svc, "count")
    assert first.last_ok_at == first.last_started_at and first.lease_owner is None
    assert first.last_result == "call 1"
    # a day less the slack later it is due again; a little earlier it is not
    set_row(svc, "count", last_ok_at=utcnow() - timedelta(hours=23, minutes=50))
    assert run(svc)[0].status == "not-due"
    set_row(svc, "count", last_ok_at=utcnow() - timedelta(hours=23, minutes=56))
    assert run(svc)[0].status == "ran" and calls == [1, 1]
    assert run(svc, force=True)[0].status == "ran" and len(calls) == 3
    listed = jobs.describe(svc)
    assert listed[0]["name"] == "count" and listed[0]["every_s"] == 86400
    assert listed[0]["next_due"] != "now" and listed[0]["running_on"] is None


def test_only_runs_the_named_job(svc, registry):
    ran = []
    jobs.register("a", timedelta(hours=1), lambda s, a: ran.append("a") or "")
    jobs.register("b", timedelta(hours=1), lambda s, a: ran.append("b") or "")
    assert [o.name for o in run(svc, "b")] == ["b"] and ran == ["b"]
    with pytest.raises(NotFound, match="no job named 'c'"):
        run(svc, "c")
    with pytest.raises(ValueError, match="already registered"):
        jobs.register("a", timedelta(hours=1), lambda s, a: "")


def test_a_failed_run_is_recorded_and_stays_due(svc, registry):
    attempts = []

    def flaky(_s: Services, _a) -> str:
        attempts.append(1)
        if len(attempts) == 1:
            raise RuntimeError("database hiccup")
        return "done"

    jobs.register("flaky", timedelta(days=1), flaky)
    assert run(svc) == [jobs.Outcome("flaky", "failed", "failed: RuntimeError")]
    failed = row(svc, "flaky")
    assert failed.last_ok_at is None and failed.lease_owner is None
    assert jobs.describe(svc)[0]["next_due"] == "now"
    assert run(svc)[0].status == "ran" and len(attempts) == 2


def test_two_hosts_never_run_the_same_job_at_once(settings, svc, registry):
    other = Services.from_settings(settings)  # a second host: its own engine and connections
    started, release = threading.Event(), threading.Event()
    ran: list[str] = []

    def slow(_s: Services, _a) -> str:
        ran.append("run")
        started.set()
        assert release.wait(60)
        return "slow done"

    jobs.register("slow", timedelta(hours=1), slow)
    outcomes: list = []
    first = threading.Thread(target=lambda: outcomes.extend(run(svc, owner="host-a")))
    try:
        first.start()
        assert started.wait(60)
        assert run(other, owner="host-b") == [jobs.Outcome("slow", "busy")]
        assert run(other, force=True, owner="host-b")[0].status == "busy"
        assert jobs.describe(other)[0]["running_on"] == "host-a"
    finally:
        release.set()
        first.join()
    assert outcomes == [jobs.Outcome("slow", "ran", "slow done")] and ran == ["run"]
    assert run(other, owner="host-b")[0].status == "not-due"
    # a host that died mid-run holds the job only until its lease expires
    set_row(svc, "slow", lease_owner="host-dead", lease_until=utcnow() + timedelta(minutes=5))
    assert run(other, force=True, owner="host-b")[0].status == "busy"
    set_row(svc, "slow", lease_until=utcnow() - timedelta(seconds=1))
    release.set()
    assert run(other, force=True, owner="host-b")[0].status == "ran"
    other.close()


def test_simultaneous_runs_claim_a_job_once(settings, svc, registry):
    hosts = [svc, Services.from_settings(settings)]
    counter: list[int] = []
    jobs.register("tick", timedelta(hours=1), lambda s, a: counter.append(1) or "tick")
    try:
        for attempt in range(4):
            counter.clear()
            if attempt:
                set_row(svc, "tick", last_ok_at=None)
            barrier = threading.Barrier(2)
            outcomes: list = []

            def go(host: Services, name: str, barrier=barrier, outcomes=outcomes) -> None:
                barrier.wait()
                outcomes.extend(run(host, owner=name))

            threads = [threading.Thread(target=go, args=(h, f"host-{i}"))
                       for i, h in enumerate(hosts)]
            for t in threads:
                t.start()
            for t in threads:
                t.join()
            assert counter == [1]
            assert sorted(o.status for o in outcomes)[1] == "ran"
            assert sorted(o.status for o in outcomes)[0] in ("busy", "not-due")
    finally:
        hosts[1].close()


def test_the_audit_purge_is_a_job_not_a_request_hook(svc):
    audit.record(svc, PUBLIC, "old thing", target="unit:1")
    with svc.db.session() as session:
        session.execute(update(AuditEntry).values(at=utcnow() - timedelta(days=181)))
    audit.record(svc, PUBLIC, "new thing", target="unit:2")  # recording purges nothing
    assert audit.query(svc, viewer=cli_principal())["total"] == 2
    assert "audit-purge" in jobs.JOBS
    assert run(svc, "audit-purge") == [
        jobs.Outcome("audit-purge", "ran", "1 entries older than 180 days removed")]
    assert [e["action"] for e in audit.query(svc, viewer=cli_principal())["items"]] == ["new thing"]


def test_the_cli_runs_and_lists_jobs(svc, settings, monkeypatch):
    monkeypatch.setenv("GRIDSVC_DATABASE_URL", settings.database_url)
    runner = CliRunner()
    listed = runner.invoke(cli, ["jobs", "list"])
    assert listed.exit_code == 0, listed.output
    assert "audit-purge" in listed.output and "never" in listed.output
    ran = runner.invoke(cli, ["jobs", "run"])
    assert ran.exit_code == 0, ran.output
    assert "audit-purge" in ran.output and "ran" in ran.output
    again = runner.invoke(cli, ["jobs", "run", "--only", "audit-purge"])
    assert again.exit_code == 0 and "not-due" in again.output
    assert runner.invoke(cli, ["jobs", "list", "--json"]).output.count('"audit-purge"') == 1
    unknown = runner.invoke(cli, ["jobs", "run", "--only", "nope"])
    assert unknown.exit_code != 0 and "no job named 'nope'" in unknown.output
    actions = [e["action"] for e in audit.query(svc, viewer=cli_principal())["items"]]
    assert actions.count("cli jobs run") == 3  # the command is audited, failed or not

"""An import killed half-way leaves the database exactly as it was, on both databases.

``gridsvc import-boundaries`` runs as a subprocess on the small demo city with every unit
renamed (so it updates all 1,981 stored units in one transaction). It is frozen mid-transaction
without guessing at timing: once it reports the validation step on stderr, the test fills the
pipe its stderr goes to, so the next progress line, which it writes after storing the first
level and before it commits, blocks. The test waits until the process is blocked in that write
and the database shows its uncommitted writes (PostgreSQL: a row lock on ``units``;
SpatiaLite: the write lock), kills it with SIGKILL, and compares the stored units, revisions
and history with before. The same import, run again, then works.
"""

from __future__ import annotations

import dataclasses
import hashlib
import os
import select
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest
from sqlalchemy import func, text
from sqlalchemy import select as sql_select
from sqlalchemy.engine import make_url

from gridsvc.access import cli_principal
from gridsvc.demo.city import generate_city
from gridsvc.io.boundaries import write_records
from gridsvc.services.boundaries import import_records
from gridsvc.services.context import Services
from gridsvc.settings import Settings
from gridsvc.storage.engine import Database, sqlite_module
from gridsvc.storage.models import AssignmentChange, Revision, Unit

pytestmark = pytest.mark.storage

ROOT = Path(__file__).resolve().parents[1]
DEADLINE_S = 120.0


def snapshot(db: Database) -> tuple[int, str, tuple, int]:
    """Unit count, a checksum of every unit's code, version and name, the revision counters
    and the number of history rows."""
    with db.engine.connect() as conn:
        units = conn.execute(sql_select(Unit.code, Unit.version, Unit.name)
                             .order_by(Unit.code)).all()
        revisions = tuple(conn.execute(sql_select(Revision.name, Revision.value)
                                       .order_by(Revision.name)).all())
        history = conn.execute(sql_select(func.count()).select_from(AssignmentChange)).scalar()
    digest = hashlib.sha256("\n".join(f"{c}\t{v}\t{n}" for c, v, n in units).encode())
    return len(units), digest.hexdigest(), revisions, history or 0


def read_until(fd: int, marker: bytes, proc: subprocess.Popen) -> bytes:
    """Read the child's stderr until ``marker`` shows (it must still be running)."""
    seen = b""
    deadline = time.monotonic() + DEADLINE_S
    while marker not in seen:
        assert proc.poll() is None, f"the import ended early: {seen.decode(errors='replace')}"
        assert time.monotonic() < deadline, f"no {marker!r} on stderr: {seen!r}"
        ready, _, _ = select.select([fd], [], [], 0.2)
        if ready:
            seen += os.read(fd, 65536)
    return seen


def fill(fd: int) -> None:
    """Write to a non-blocking pipe until it holds no more: the next write to it blocks."""
    for size in (65536, 4096, 512, 64, 8, 1):
        while True:
            try:
                os.write(fd, b"\0" * size)
            except BlockingIOError:
                break


def wait_for(condition: Callable[[], bool], what: str, proc: subprocess.Popen) -> None:
    deadline = time.monotonic() + DEADLINE_S
    while not condition():
        assert proc.poll() is None, f"the import ended (exit {proc.returncode}) before {what}"
        assert time.monotonic() < deadline, f"timed out waiting until {what}"
        time.sleep(0.02)


def blocked_writing(pid: int) -> bool:
    """Whether the process sleeps in a write to a full pipe (the kernel function it waits in
    is pipe_write, or anon_pipe_write on newer kernels)."""
    return Path(f"/proc/{pid}/wchan").read_text().strip().endswith("pipe_write")


def writing_in_open_transaction(db: Database) -> bool:
    """Whether another connection holds uncommitted writes to the units."""
    if db.backend == "postgis":
        with db.engine.connect() as conn:
            return bool(conn.execute(text(
                "SELECT count(*) FROM pg_locks l JOIN pg_class c ON c.oid = l.relation "
                "JOIN pg_stat_activity a ON a.pid = l.pid "
                "WHERE c.relname = 'units' AND l.mode = 'RowExclusiveLock' "
                "AND l.pid <> pg_backend_pid() AND a.state = 'idle in transaction'")).scalar())
    # The SQLite library the engine uses: two copies of SQLite in one process would drop each
    # other's file locks when one closes the file.
    sqlite = sqlite_module()
    conn = sqlite.connect(make_url(str(db.engine.url)).database, timeout=0,
                          isolation_level=None)
    try:
        conn.execute("BEGIN IMMEDIATE")
        conn.execute("ROLLBACK")
        return False
    except sqlite.OperationalError as exc:  # "database is locked": the import holds the lock
        return "locked" in str(exc)
    finally:
        conn.close()


def run_import(path: Path, database_url: str, stderr: int | None = None) -> subprocess.Popen:
    env = {**os.environ, "GRIDSVC_DATABASE_URL": database_url}
    return subprocess.Popen([sys.executable, "-m", "gridsvc", "import-boundaries", str(path)],
                            cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=stderr)


def test_an_import_killed_half_way_changes_nothing(db: Database, settings: Settings,
                                                   tmp_path: Path) -> None:
    city = generate_city(seed=1, scale="small")
    svc = Services.from_settings(settings)
    try:
        assert import_records(svc, city.records, viewer=cli_principal()).stored
    finally:
        svc.close()
    renamed = [dataclasses.replace(r, name=r.name + "(新)") for r in city.records]
    update = write_records(renamed, tmp_path / "renamed.geojson")
    before = snapshot(db)
    assert before[0] == len(city.records) == 1981

    read_end, write_end = os.pipe()
    # a second, non-blocking description of the pipe's write end, for the test's own filling
    filler = os.open(f"/proc/self/fd/{write_end}", os.O_WRONLY | os.O_NONBLOCK)
    proc = run_import(update, settings.database_url, stderr=write_end)
    os.close(write_end)
    try:
        read_until(read_end, b"validate", proc)  # the last line before it stores anything
        fill(filler)
        wait_for(lambda: blocked_writing(proc.pid), "it blocked on its progress output", proc)
        wait_for(lambda: writing_in_open_transaction(db), "its uncommitted writes show", proc)
        proc.send_signal(signal.SIGKILL)
        assert proc.wait(timeout=60) == -signal.SIGKILL
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        os.close(filler)
        os.close(read_end)

    assert snapshot(db) == before  # nothing of the killed import remains

    again = run_import(update, settings.database_url, stderr=subprocess.PIPE)
    _, err = again.communicate(timeout=DEADLINE_S)
    assert again.returncode == 0, err.decode(errors="replace")[-2000:]
    count, digest, revisions, _history = snapshot(db)
    assert count == before[0] and digest != before[1]
    assert dict(revisions)["boundaries"] == dict(before[2])["boundaries"] + 1
    with db.engine.connect() as conn:
        versions = conn.execute(sql_select(Unit.version).distinct()).scalars().all()
        names = conn.execute(sql_select(Unit.name)).scalars().all()
    assert versions == [2] and all(n.endswith("(新)") for n in names)

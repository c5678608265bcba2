"""Shared fixtures.

``db`` runs a test once on SpatiaLite and once on PostGIS. PostGIS is reached at
``GRIDSVC_TEST_PG_URL`` (default: the server on 127.0.0.1:5432, user postgres); when nothing
answers there, a throwaway cluster is started with Debian's ``initdb`` in a temporary folder
and removed at the end. Each run creates its own database and drops it afterwards.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import create_engine, delete, text
from sqlalchemy.engine import make_url

from gridsvc.settings import Settings
from gridsvc.storage.engine import Database
from gridsvc.storage.models import Base
from gridsvc.storage.schema import upgrade

DEFAULT_PG = "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"

# Browser fixtures (live server, headless Chromium) for every module; imported once, so the
# session's single Playwright driver is shared.
pytest_plugins = ["browser"]


def _pg_answers(url: str) -> bool:
    try:
        engine = create_engine(url, connect_args={"connect_timeout": 3})
        with engine.connect() as conn:
            conn.execute(text("select 1"))
        engine.dispose()
        return True
    except Exception:
        return False


def _start_throwaway_cluster(port: int = 55432) -> tuple[str, Path]:
    """Start a private PostgreSQL with Debian's binaries on ``port`` of 127.0.0.1 (socket in
    its folder); return its admin URL and folder."""
    bindirs = sorted(Path("/usr/lib/postgresql").glob("*/bin"), reverse=True)
    if not bindirs:
        pytest.exit("no PostgreSQL answers and no Debian PostgreSQL binaries to start one", 3)
    bindir = bindirs[0]
    folder = Path(tempfile.mkdtemp(prefix="gridsvc-pg-"))
    run_as: list[str] = []
    if os.geteuid() == 0:  # initdb refuses root
        shutil.chown(folder, "postgres", "postgres")
        run_as = ["runuser", "-u", "postgres", "--"]
    data = folder / "data"
    subprocess.run([*run_as, str(bindir / "initdb"), "-D", str(data), "-A", "trust",
                    "-U", "postgres"], check=True, capture_output=True)
    subprocess.run([*run_as, str(bindir / "pg_ctl"), "-D", str(data), "-l", str(folder / "log"),
                    "-o", f"-p {port} -k {folder} -c listen_addresses=127.0.0.1", "-w", "start"],
                   check=True, capture_output=True)
    return f"postgresql+psycopg://postgres@127.0.0.1:{port}/postgres", folder


@pytest.fixture(scope="session")
def pg_admin_url() -> Iterator[str]:
    url = os.environ.get("GRIDSVC_TEST_PG_URL", DEFAULT_PG)
    folder = None
    if not _pg_answers(url):
        url, folder = _start_throwaway_cluster()
    yield url
    if folder is not None:
        bindir = sorted(Path("/usr/lib/postgresql").glob("*/bin"), reverse=True)[0]
        run_as = ["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []
        subprocess.run([*run_as, str(bindir / "pg_ctl"), "-D", str(folder / "data"), "-m",
                        "immediate", "stop"], capture_output=True)
        shutil.rmtree(folder, ignore_errors=True)


@pytest.fixture(scope="session")
def pg_url(pg_admin_url: str) -> Iterator[str]:
    """A fresh database with PostGIS for this test run, dropped at the end."""
    name = f"gridsvc_test_{uuid.uuid4().hex[:10]}"
    admin = create_engine(pg_admin_url, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    url = make_url(pg_admin_url).set(database=name).render_as_string(hide_password=False)
    yield url
    with admin.connect() as conn:
        conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    admin.dispose()


@pytest.fixture(scope="session")
def _databases(tmp_path_factory: pytest.TempPathFactory, pg_url: str) -> Iterator[dict]:
    """One migrated database per backend for the whole run; tests empty it afterwards."""
    sqlite_file = tmp_path_factory.mktemp("spatialite") / "gridsvc.sqlite"
    dbs: dict[str, Database] = {}
    for backend, url in (("spatialite", f"sqlite:///{sqlite_file}"), ("postgis", pg_url)):
        db = Database.from_settings(Settings(database_url=url))
        upgrade(db)
        dbs[backend] = db
    yield dbs
    for db in dbs.values():
        db.dispose()


def empty_database(db: Database) -> None:
    """Delete every row the application wrote (children before parents)."""
    with db.engine.begin() as conn:
        for table in reversed(Base.metadata.sorted_tables):
            if table.name == "units":
                for level in range(9, 0, -1):
                    conn.execute(delete(table).where(table.c.level == level))
            conn.execute(delete(table))


@pytest.fixture(params=["spatialite", "postgis"])
def db(request: pytest.FixtureRequest, _databases: dict[str, Database]) -> Iterator[Database]:
    """An empty, migrated database; the test runs once per backend."""
    database = _databases[request.param]
    empty_database(database)
    yield database
    empty_database(database)


@pytest.fixture
def settings(db: Database, tmp_path: Path) -> Settings:
    """Settings pointing at the ``db`` fixture's database."""
    return Settings(database_url=db.engine.url.render_as_string(hide_password=False),
                    instance_dir=tmp_path)

"""Database engines for the two backends, and the session factory.

SpatiaLite: SQLAlchemy's pysqlite dialect needs a ``sqlite3`` module that can load extensions.
Python builds (pyenv's among them) often lack ``enable_load_extension``; then the
``pysqlite3`` module from the ``pysqlite3-binary`` wheel is used instead, which loads Debian's
``mod_spatialite`` (package libsqlite3-mod-spatialite). ``SPATIALITE_LIBRARY_PATH`` overrides
the module name. Each connection gets WAL journaling and foreign keys on.

PostGIS: any ``postgresql+psycopg://`` URL; the ``postgis`` extension is created by the first
migration if missing.
"""

from __future__ import annotations

import functools
import os
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from types import ModuleType
from typing import Any

# SQLite loads extensions with RTLD_GLOBAL, so mod_spatialite puts Debian's PROJ and GEOS in
# the global symbol namespace. A pyproj, shapely or pyogrio (with their own bundled PROJ, GEOS
# and GDAL) loaded *after* that binds to the wrong copies and the process dies at exit with
# "double free or corruption". Loading them first keeps each library with its own copy.
import pyogrio  # noqa: F401  (must load before mod_spatialite)
import pyproj  # noqa: F401
import shapely  # noqa: F401
from geoalchemy2.admin.dialects.sqlite import init_spatialite
from sqlalchemy import Engine, create_engine, event
from sqlalchemy.engine import make_url
from sqlalchemy.orm import Session, sessionmaker
from sqlalchemy.pool import NullPool

from gridsvc.settings import Settings

WRITE_OPTION = "gridsvc_write"  # execution option: begin an SQLite transaction IMMEDIATE


class StorageError(RuntimeError):
    """The database cannot be used (missing extension, unreachable server)."""


def sqlite_module() -> ModuleType:
    """The DB-API module for SQLite: the standard one if it can load extensions."""
    import sqlite3

    if hasattr(sqlite3.connect(":memory:"), "enable_load_extension"):
        return sqlite3
    try:
        import pysqlite3.dbapi2 as pysqlite3
    except ImportError as exc:  # pragma: no cover - depends on the platform
        raise StorageError(
            "this Python's sqlite3 cannot load extensions and pysqlite3-binary is not "
            "installed; install it or use a Python built with extension loading"
        ) from exc
    return pysqlite3


def _on_sqlite_connect(dbapi_conn: Any, _record: Any, lock_timeout_ms: int = 5000) -> None:
    dbapi_conn.isolation_level = None  # transactions are begun by the "begin" listener
    dbapi_conn.enable_load_extension(True)
    try:
        dbapi_conn.load_extension(os.environ.get("SPATIALITE_LIBRARY_PATH", "mod_spatialite"))
    except Exception as exc:
        raise StorageError(
            "cannot load SpatiaLite (Debian package libsqlite3-mod-spatialite): " + str(exc)
        ) from exc
    finally:
        dbapi_conn.enable_load_extension(False)
    dbapi_conn.execute("PRAGMA foreign_keys = ON")
    dbapi_conn.execute("PRAGMA journal_mode = WAL")
    dbapi_conn.execute(f"PRAGMA busy_timeout = {int(lock_timeout_ms)}")
    init_spatialite(dbapi_conn, transaction=True, init_mode="WGS84")


def make_engine(url: str, lock_timeout_s: float = 5.0, **kwargs: Any) -> Engine:
    """An engine for a SpatiaLite file or a PostGIS database. A statement waits at most
    ``lock_timeout_s`` for a lock (SQLite's ``busy_timeout``, PostgreSQL's ``lock_timeout``),
    then fails as ``is_unavailable`` (503 to retry), so no request holds a thread long."""
    lock_ms = max(1, round(lock_timeout_s * 1000))
    kwargs.setdefault("hide_parameters", True)  # statement values never reach logs or errors
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite":
        if parsed.database and parsed.database != ":memory:":
            os.makedirs(os.path.dirname(os.path.abspath(parsed.database)), exist_ok=True)
        engine = create_engine(
            parsed.set(drivername="sqlite+pysqlite"),
            module=sqlite_module(),
            poolclass=NullPool if parsed.database in (None, "", ":memory:") else None,
            **kwargs,
        )
        event.listen(engine, "connect", functools.partial(_on_sqlite_connect,
                                                          lock_timeout_ms=lock_ms))
        # Let SQLAlchemy, not pysqlite, manage transactions so BEGIN covers reads and DDL too.
        # A session opened by ``Database.write_session`` begins IMMEDIATE: it takes the write
        # lock first (waiting up to the busy timeout), so its reads are never stale and its
        # writes never fail with a lost race ("database is locked" on a snapshot upgrade).
        event.listen(engine, "begin", lambda conn: conn.exec_driver_sql(
            "BEGIN IMMEDIATE" if conn.get_execution_options().get(WRITE_OPTION) else "BEGIN"))
        return engine
    if parsed.get_backend_name() == "postgresql":
        if parsed.drivername == "postgresql":
            parsed = parsed.set(drivername="postgresql+psycopg")
        kwargs.setdefault("connect_args", {"options": f"-c lock_timeout={lock_ms}"})
        return create_engine(parsed, pool_pre_ping=True, **kwargs)
    raise StorageError(f"unsupported database URL {url!r}: use sqlite:/// or postgresql://")


@dataclass
class Database:
    """An engine plus its session factory. One per app or CLI run."""

    engine: Engine
    sessions: sessionmaker[Session]

    @classmethod
    def from_settings(cls, settings: Settings) -> Database:
        engine = make_engine(settings.database_url, settings.db_lock_timeout_seconds)
        return cls(engine, sessionmaker(engine, expire_on_commit=False))

    @property
    def backend(self) -> str:
        return "spatialite" if self.engine.dialect.name == "sqlite" else "postgis"

    @contextmanager
    def session(self) -> Iterator[Session]:
        """A session in one transaction: committed on success, rolled back on error."""
        with self.sessions() as session, session.begin():
            yield session

    @contextmanager
    def write_session(self) -> Iterator[Session]:
        """A session in one transaction for a read-check-write use case (a claim, an
        acceptance): on SQLite it holds the write lock from its first statement, so two such
        use cases run one after the other; on PostgreSQL lock the rows it changes with
        ``SELECT ... FOR UPDATE`` (``with_for_update()``)."""
        with self.sessions() as session, session.begin():
            session.connection(execution_options={WRITE_OPTION: True})
            yield session

    def dispose(self) -> None:
        self.engine.dispose()


SQLITE_UNAVAILABLE = ("database is locked", "database table is locked", "unable to open",
                      "disk i/o error", "database or disk is full")


def is_unavailable(exc: BaseException) -> bool:
    """Whether a database error means the database cannot be used *now* (server down or
    restarting, connection lost, too many connections, pool exhausted, SQLite file locked or
    unreadable), so a retry later may work; not a bug, bad data or a missing table."""
    from sqlalchemy import exc as sa

    if isinstance(exc, sa.TimeoutError):  # no pooled connection came free in time
        return True
    if not isinstance(exc, sa.DBAPIError):
        return False
    if exc.connection_invalidated:
        return True
    if type(exc.orig).__module__.startswith("psycopg"):
        return isinstance(exc, sa.OperationalError | sa.InterfaceError)
    return any(text in str(exc.orig).lower() for text in SQLITE_UNAVAILABLE)

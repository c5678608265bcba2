"""Process-local caches of derived data, rebuilt when a stored revision counter moves.

A ``Live`` object holds one built value (the spatial index, the gazetteer matcher). At most
once every ``check_seconds`` it reads the revision counters it watches; when one
differs from the one the value was built at, it builds a new value and replaces the old one in
a single reference assignment. Readers never see a half-built value (while one thread rebuilds,
the others go on answering from the old one), and every worker process notices changes made by
any other process within ``check_seconds`` (``GRIDSVC_INDEX_CHECK_SECONDS``).

When the database cannot be reached for the check (``storage.engine.is_unavailable``), a value
already built goes on answering (the public lookup stays up through a database outage, with
the boundaries as last read) and the check is tried again after ``check_seconds``.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Generic, TypeVar

from gridsvc.storage import units as q
from gridsvc.storage.engine import Database, is_unavailable

T = TypeVar("T")


class Live(Generic[T]):
    def __init__(self, db: Database, revisions: tuple[str, ...], build: Callable[[], T],
                 check_seconds: float = 1.0) -> None:
        self.db = db
        self.revisions = revisions
        self.build = build
        self.check_seconds = check_seconds
        self._value: T | None = None
        self._revision: tuple[int, ...] | None = None
        self._checked = float("-inf")
        self._lock = threading.Lock()

    def _stored_revision(self) -> tuple[int, ...]:
        with self.db.session() as session:
            return tuple(q.revision(session, name) for name in self.revisions)

    def current(self) -> T:
        """The current value, rebuilt first when a watched revision moved. While one thread
        checks or rebuilds, the others keep answering from the value they have."""
        value = self._value
        if value is not None and time.monotonic() - self._checked < self.check_seconds:
            return value
        if value is not None and not self._lock.acquire(blocking=False):
            return value
        if value is None:
            self._lock.acquire()
        try:
            if self._value is None or time.monotonic() - self._checked >= self.check_seconds:
                try:
                    stored = self._stored_revision()
                except Exception as exc:
                    if self._value is None or not is_unavailable(exc):
                        raise
                    self._checked = time.monotonic()
                    return self._value
                if self._value is None or stored != self._revision:
                    built = self.build()
                    self._value, self._revision = built, stored  # the atomic swap
                self._checked = time.monotonic()
            return self._value
        finally:
            self._lock.release()

    def refresh(self) -> T:
        """Rebuild now, e.g. right after this process changed the data."""
        with self._lock:
            stored = self._stored_revision()
            self._value, self._revision = self.build(), stored
            self._checked = time.monotonic()
            return self._value

    @property
    def revision(self) -> tuple[int, ...] | None:
        return self._revision

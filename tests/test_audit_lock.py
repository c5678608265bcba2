"""A personal read whose audit entry cannot be written is not served (issue 9, item 7): with
SQLite's write lock held by another process the read answers 503 with Retry-After once the
configured lock timeout passes, and writes no audit entry; without the lock it is served and
recorded. (The PostgreSQL outage is in tests/test_db_outage.py.)"""

from __future__ import annotations

import sqlite3
import subprocess
import sys

import pytest
from api_support import app_client, bearer, store_sample
from sqlalchemy import func, select

from gridsvc.settings import Settings
from gridsvc.storage.models import AuditEntry

HOLD_LOCK = """
import sqlite3, sys
conn = sqlite3.connect(sys.argv[1], isolation_level=None)
conn.execute("BEGIN IMMEDIATE")  # SQLite's write lock
print("locked", flush=True)
sys.stdin.read()  # until the test closes our stdin
conn.rollback()
"""


def audit_entries(client) -> int:
    svc = client.application.extensions["gridsvc"]
    with svc.db.session() as s:
        return s.scalar(select(func.count()).select_from(AuditEntry))


def test_a_personal_read_that_cannot_be_audited_is_503(tmp_path):
    db_file = tmp_path / "locked.sqlite"
    url = f"sqlite:///{db_file}"
    store_sample(url, tmp_path)
    settings = Settings(database_url=url, instance_dir=tmp_path, db_lock_timeout_seconds=0.2)
    with app_client(settings) as client:
        staff = bearer(settings, "staff")
        assert client.get("/api/v1/members", headers=staff).status_code == 200
        before = audit_entries(client)
        holder = subprocess.Popen([sys.executable, "-c", HOLD_LOCK, str(db_file)],
                                  stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        try:
            assert holder.stdout.readline().strip() == "locked"
            with pytest.raises(sqlite3.OperationalError):  # the lock is really held
                sqlite3.connect(db_file, timeout=0).execute("BEGIN IMMEDIATE")
            resp = client.get("/api/v1/members", headers=staff)
            assert resp.status_code == 503, resp.get_data()[:300]
            assert resp.get_json()["type"] == "/problems/database-unavailable"
            assert int(resp.headers["Retry-After"]) >= 1
            assert "items" not in resp.get_json()
        finally:
            holder.stdin.close()
            holder.wait(timeout=30)
        assert audit_entries(client) == before
        assert client.get("/api/v1/members", headers=staff).status_code == 200
        assert audit_entries(client) == before + 1

"""PostgreSQL going away: the API answers 503 database-unavailable (problem+json, Retry-After)
instead of 500 while it is down, and recovers by itself when it is back.

The test runs a private cluster of its own on a free port (Debian's initdb and pg_ctl, as the
test run's fallback cluster does), so stopping it disturbs nothing else.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from api_support import B1, app_client, bearer, store_sample
from conftest import _start_throwaway_cluster
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import DBAPIError

from gridsvc.settings import Settings
from gridsvc.storage.engine import is_unavailable

BINDIRS = sorted(Path("/usr/lib/postgresql").glob("*/bin"), reverse=True)
IN_B1 = "/api/v1/lookup?lon=120.9007&lat=32.0007&coordsys=wgs84"
PROBLEM = "application/problem+json"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass
class Cluster:
    """A private PostgreSQL cluster started by ``_start_throwaway_cluster``."""

    folder: Path
    port: int

    def pg_ctl(self, *args: str, check: bool = True) -> None:
        run_as = ["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []
        subprocess.run([*run_as, str(BINDIRS[0] / "pg_ctl"), "-D", str(self.folder / "data"),
                        *args], check=check, capture_output=True, timeout=120)

    def stop(self) -> None:
        self.pg_ctl("-m", "fast", "-w", "stop")

    def start(self) -> None:
        self.pg_ctl("-l", str(self.folder / "log"), "-o",
                    f"-p {self.port} -k {self.folder} -c listen_addresses=127.0.0.1", "-w",
                    "start")


@pytest.fixture
def private_pg(tmp_path: Path) -> Iterator[tuple[str, Cluster]]:
    """A migrated PostGIS database holding the sample tree, on a cluster of its own."""
    if not BINDIRS:
        pytest.fail("no Debian PostgreSQL binaries to start a private cluster (make test "
                    "installs postgresql-15)")
    port = free_port()
    admin_url, folder = _start_throwaway_cluster(port)
    cluster = Cluster(folder, port)
    try:
        admin = create_engine(admin_url, isolation_level="AUTOCOMMIT")
        with admin.connect() as conn:
            conn.execute(text('CREATE DATABASE "gridsvc_outage"'))
        admin.dispose()
        url = make_url(admin_url).set(database="gridsvc_outage").render_as_string(
            hide_password=False)
        store_sample(url, tmp_path)
        yield url, cluster
    finally:
        cluster.pg_ctl("-m", "immediate", "stop", check=False)
        shutil.rmtree(folder, ignore_errors=True)


def assert_unavailable(resp) -> None:  # type: ignore[no-untyped-def]
    assert resp.status_code == 503 and resp.mimetype == PROBLEM, resp.get_data()[:300]
    assert resp.get_json()["type"] == "/problems/database-unavailable"
    assert int(resp.headers["Retry-After"]) >= 1


def test_api_answers_503_while_postgres_is_down_and_recovers(private_pg, tmp_path) -> None:
    url, cluster = private_pg
    # index_check_seconds=0: every lookup tries to read the boundary revision
    settings = Settings(database_url=url, instance_dir=tmp_path, index_check_seconds=0)
    with app_client(settings) as client:
        assert client.get("/healthz").status_code == 200
        assert client.get(IN_B1).get_json()["chain"][-1]["code"] == B1
        svc = client.application.extensions["gridsvc"]
        with svc.db.engine.connect() as held:  # a connection checked out across the outage
            cluster.stop()
            with pytest.raises(DBAPIError) as lost:
                held.execute(text("select 1"))
            assert is_unavailable(lost.value)
        for _ in range(2):  # pooled connections are dead, new ones are refused
            assert_unavailable(client.get("/healthz"))
            assert_unavailable(client.post("/api/v1/members", json={
                "name": "张三", "phone": "13800000001", "lon": 120.9007, "lat": 32.0007,
                "coordsys": "wgs84"}))
            # the public lookup answers from the index it holds, boundaries as last read
            assert client.get(IN_B1).get_json()["chain"][-1]["code"] == B1
        cluster.start()
        # the same app, with no restart: the pool reconnects by itself
        assert client.get("/healthz").status_code == 200
        assert client.get(IN_B1).get_json()["chain"][-1]["code"] == B1


def test_token_requests_answer_503_not_500_once_the_token_cache_expires(private_pg,
                                                                       tmp_path) -> None:
    """The audit hook used to verify the token again after the view's 503 and raise (500)."""
    url, cluster = private_pg
    settings = Settings(database_url=url, instance_dir=tmp_path, index_check_seconds=0,
                        token_cache_seconds=0)
    with app_client(settings) as client:
        staff = bearer(settings, "staff")
        assert client.get("/api/v1/members", headers=staff).status_code == 200
        cluster.stop()
        client.application.extensions["gridsvc"].db.engine.dispose()
        for method, path in (("get", "/api/v1/members"), ("get", "/api/v1/members/1"),
                             ("get", "/api/v1/units"), ("put", "/api/v1/members/1"),
                             ("post", "/api/v1/rosters")):
            resp = getattr(client, method)(path, headers=staff, json={})
            assert_unavailable(resp)
        # a lookup with a token still answers from the index, as the public sees it
        looked = client.get(IN_B1, headers=staff).get_json()
        assert looked["chain"][-1]["code"] == B1 and looked["household"]["contact"] is None
        cluster.start()
        assert client.get("/api/v1/members", headers=staff).status_code == 200

"""``gridsvc serve``: its options, and gunicorn with the app preloaded in the master (index and
gazetteer warmed before the fork, pooled connections dropped after it) still following a
boundary import made by another process, in every worker. The server runs on a free port of
127.0.0.1 with a small SpatiaLite database and is stopped at the end whatever happens."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from api_support import B1, sample_records, store_sample, write_geojson
from click.testing import CliRunner

from gridsvc.cli import cli
from gridsvc.cli import server as server_cli
from gridsvc.cli.server import GunicornServer, ServeOptions

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "bench"))
import http_load

ROOT = Path(__file__).resolve().parents[1]
IN_B1 = "/api/v1/lookup?lon=120.9007&lat=32.0007&coordsys=wgs84"
STARTUP_S = 120.0


def test_serve_options_parse(monkeypatch: pytest.MonkeyPatch) -> None:
    seen: list[ServeOptions] = []
    monkeypatch.setattr(server_cli, "run_server", lambda options, make_app: seen.append(options))
    runner = CliRunner()
    result = runner.invoke(cli, ["serve", "--port", "5001", "--workers", "3", "--threads", "8",
                                 "--timeout", "60", "--access-log"])
    assert result.exit_code == 0, result.output
    assert seen[-1] == ServeOptions(host="127.0.0.1", port=5001, workers=3, threads=8,
                                    timeout=60, access_log=True)
    assert runner.invoke(cli, ["serve"]).exit_code == 0
    assert seen[-1] == ServeOptions(workers=os.cpu_count() or 1)
    assert seen[-1].access_log is False and seen[-1].threads > 1
    for bad in (["--workers", "0"], ["--threads", "many"], ["--port", "70000"],
                ["--timeout", "0"]):
        result = runner.invoke(cli, ["serve", *bad])
        assert result.exit_code == 2, bad
    assert len(seen) == 2


def test_gunicorn_takes_the_settings() -> None:
    quiet = GunicornServer(ServeOptions(port=5002, workers=3, threads=5, timeout=90), dict)
    cfg = quiet.cfg
    assert (cfg.address, cfg.workers, cfg.threads, cfg.timeout) == ([("127.0.0.1", 5002)], 3,
                                                                    5, 90)
    assert cfg.worker_class_str == "gridsvc.web.edge.ProblemThreadWorker"
    assert cfg.threads == 5 and cfg.preload_app and cfg.accesslog is None
    assert cfg.post_fork == quiet.post_fork
    assert GunicornServer(ServeOptions(access_log=True), dict).cfg.accesslog == "-"


# --- a real server -----------------------------------------------------------------------------


def get(port: int, path: str) -> tuple[int, bytes]:
    """One request on a connection of its own (so that either worker may take it)."""
    return http_load.get(f"http://127.0.0.1:{port}", path, timeout=30)


@pytest.fixture
def database(tmp_path: Path) -> str:
    url = f"sqlite:///{tmp_path / 'serve.sqlite'}"
    store_sample(url, tmp_path)
    return url


@pytest.fixture
def server(database: str, tmp_path: Path) -> Iterator[tuple[int, Path]]:
    """``gridsvc serve --workers 2`` on a free loopback port: (port, its log)."""
    port, log = http_load.free_port(), tmp_path / "server.log"
    env = {**os.environ, "GRIDSVC_DATABASE_URL": database,
           "GRIDSVC_INSTANCE_DIR": str(tmp_path), "GRIDSVC_INDEX_CHECK_SECONDS": "0"}
    with log.open("w") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "gridsvc", "serve", "--port", str(port), "--workers", "2",
             "--threads", "2"], cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT,
            start_new_session=True)
    try:
        deadline = time.monotonic() + STARTUP_S
        while True:
            assert proc.poll() is None, log.read_text()
            try:  # up, and both workers booted (the first may answer before the second)
                if get(port, "/healthz")[0] == 200 and log.read_text().count(
                        "Booting worker") == 2:
                    break
            except OSError:
                pass
            assert time.monotonic() < deadline, log.read_text()
            time.sleep(0.2)
        yield port, log
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()


def building_names(port: int, n: int) -> set[str]:
    names = set()
    for _ in range(n):
        status, body = get(port, IN_B1)
        assert status == 200, body
        names.add(json.loads(body)["chain"][-1]["name"])
    return names


def test_preloaded_workers_follow_a_boundary_import(server: tuple[int, Path], database: str,
                                                    tmp_path: Path) -> None:
    port, log = server
    started = log.read_text()
    assert "index and gazetteer ready" in started  # warmed in the master
    assert started.count("Booting worker") == 2
    assert building_names(port, 20) == {"阳光小区1栋"}
    records = sample_records()
    records[6].name = "阳光小区一号楼"
    assert records[6].code == B1
    done = subprocess.run(
        [sys.executable, "-m", "gridsvc", "import-boundaries",
         str(write_geojson(records, tmp_path / "renamed.geojson"))],
        cwd=ROOT, env={**os.environ, "GRIDSVC_DATABASE_URL": database},
        capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    # each request checks the stored revision (GRIDSVC_INDEX_CHECK_SECONDS=0): whichever
    # worker answers, the import shows at once
    assert building_names(port, 40) == {"阳光小区一号楼"}
    assert "could not build" not in log.read_text()


# --- answers gunicorn gives itself -------------------------------------------------------------

def raw_request(port: int, data: bytes) -> tuple[int, dict[str, str], bytes]:
    """Send ``data`` as it is on a new connection; the status, headers and body answered."""
    with socket.create_connection(("127.0.0.1", port), timeout=30) as sock:
        sock.sendall(data)
        answer = b""
        while chunk := sock.recv(65536):
            answer += chunk
    head, _, body = answer.partition(b"\r\n\r\n")
    status_line, *lines = head.decode("latin-1").split("\r\n")
    headers = {k.lower(): v.strip() for k, _, v in (line.partition(":") for line in lines)}
    return int(status_line.split()[1]), headers, body


EDGE_REQUESTS = [
    (414, b"GET /api/v1/units?q=" + b"a" * 5000 + b" HTTP/1.1\r\nHost: x\r\n\r\n"),
    (431, b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Big: " + b"a" * 9000 + b"\r\n\r\n"),
    (431, b"GET /healthz HTTP/1.1\r\nHost: x\r\n"
     + b"".join(b"X-%d: 1\r\n" % i for i in range(120)) + b"\r\n"),
    (400, b"GET /healthz HTTP/1.1\r\nHost: x\r\nBad Name: 1\r\n\r\n"),
    (400, b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Nul: a\x00b\r\n\r\n"),
    (400, b"NOT A REQUEST LINE AT ALL\r\n\r\n"),
    (400, b"GET /healthz HTTP/9.9\r\nHost: x\r\n\r\n"),
    (400, b"GET /api/v1/units/%00 HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"),
]


def test_every_answer_is_problem_json_even_from_gunicorn(server: tuple[int, Path]) -> None:
    port, _log = server
    for status, data in EDGE_REQUESTS:
        got, headers, body = raw_request(port, data)
        assert got == status, (data[:60], got, body[:200])
        assert headers["content-type"] == "application/problem+json", (data[:60], headers)
        problem = json.loads(body)
        assert problem["status"] == status and problem["type"].startswith("/problems/")
        assert problem["title"] and problem["detail"], problem
        assert "script-src 'self'" in headers["content-security-policy"]
        assert headers["x-content-type-options"] == "nosniff"

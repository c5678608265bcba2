"""HTTP figures: ``gridsvc serve`` (gunicorn) on loopback under load.

The server runs on a free port of 127.0.0.1 with ``GRIDSVC_DATABASE_URL`` pointing at a
SpatiaLite file holding the demo city, built once into bench/out/ and reused while it is newer
than the generator code (gridsvc/demo) and the migrations. Load comes from ``wrk`` (Debian
package) with ``wrk_paths.lua``, which requests a list of paths in turn so every request asks
for a different point; without wrk, a threaded Python client does the same, slower.

- single lookups: ``GET /api/v1/lookup?lon=..&lat=..&coordsys=wgs84`` on points inside
  buildings, against the same load on ``GET /api/v1/levels`` (the framework's floor: routing
  and a small JSON answer, no database read), both measured in this run. ``/healthz`` is no
  floor: it counts the units in the database (about 10 ms per request);
- batches: ``POST /api/v1/lookup/batch`` with 10,000 points per request from two clients (one
  per worker), in points per second, against the single lookups' requests per second; in the
  default form, with ``?compact=1`` and with ``?format=columns``.

``gridsvc serve`` builds the index and the gazetteer once in gunicorn's master before it forks
the workers, so the server takes a while to answer /healthz (its start time is a note) and
the first lookups are quick.

The server is stopped at the end whatever happens (its whole process group).
"""

from __future__ import annotations

import http.client
import json
import os
import shutil
import signal
import socket
import sqlite3
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import closing, contextmanager
from dataclasses import dataclass
from pathlib import Path

import memory
import numpy as np
from figures import Figure, Target

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "bench" / "out"
WRK_SCRIPT = Path(__file__).with_name("wrk_paths.lua")
GENERATOR_CODE = ("gridsvc/demo/*.py", "gridsvc/migrations/versions/*.py")
WORKERS = 2
CONNECTIONS = 4  # two per worker, kept alive (gthread workers)
FLOOR_PATH = "/api/v1/levels"  # a route with no database read: the framework's floor
BATCH_SIZE = 10_000
BATCH_PATH = "/api/v1/lookup/batch"
BATCH_FORMS = {"results": "", "compact": "?compact=1", "columns": "?format=columns"}
RPS_TARGET = Target(">=", 2000.0)
P99_TARGET = Target("<", 20.0)  # ms
BATCH_TARGET = Target(">=", 200_000.0)  # points/s
COLUMNS_TARGET = Target(">=", 400_000.0)  # points/s, ?format=columns
MASTER_TARGET = Target("<", 400.0)  # MB, the master's RSS for the city
SERVER_PIDS: dict[str, int] = {}  # base URL -> the running server's (gunicorn master's) pid


# --- the database and the server ------------------------------------------------------------


def demo_database(scale: str, seed: int) -> Path:
    """The SpatiaLite file with the demo city loaded; built (minutes for the city) only when
    missing or older than the code that generates it."""
    path = OUT / f"demo-{scale}-seed{seed}.sqlite"
    newest_code = max(p.stat().st_mtime for pattern in GENERATOR_CODE for p in ROOT.glob(pattern))
    if path.exists() and path.stat().st_mtime > newest_code:
        return path
    OUT.mkdir(parents=True, exist_ok=True)
    partial = path.with_suffix(".partial")
    partial.unlink(missing_ok=True)
    # the demo's token file goes to bench/out, not over the checkout's instance/demo-tokens.txt
    env = {**os.environ, "GRIDSVC_DATABASE_URL": f"sqlite:///{partial}",
           "GRIDSVC_INSTANCE_DIR": str(OUT)}
    done = subprocess.run([sys.executable, "-m", "gridsvc", "demo", "--seed", str(seed),
                           "--scale", scale], cwd=ROOT, env=env, capture_output=True, text=True)
    if done.returncode != 0:
        raise RuntimeError(f"loading the {scale} demo city into {partial} failed:\n"
                           f"{done.stderr[-2000:]}")
    with closing(sqlite3.connect(partial)) as conn:  # fold the WAL into the file
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    partial.replace(path)
    return path


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def get(base: str, path: str, timeout: float = 5.0,
        headers: dict[str, str] | None = None) -> tuple[int, bytes]:
    host, port = base.removeprefix("http://").split(":")
    conn = http.client.HTTPConnection(host, int(port), timeout=timeout)
    try:
        conn.request("GET", path, headers=headers or {})
        response = conn.getresponse()
        return response.status, response.read()
    finally:
        conn.close()


@contextmanager
def running_server(database: Path, log: Path, workers: int = WORKERS,
                   startup_s: float = 300.0) -> Iterator[str]:
    """``gridsvc serve`` on a free loopback port; yields its base URL once /healthz answers
    (the master builds the index and gazetteer first: 20 s for the city, more under load)."""
    port = free_port()
    # the load comes from one address: the lookup rate limit would measure itself
    env = {**os.environ, "GRIDSVC_DATABASE_URL": f"sqlite:///{database}",
           "GRIDSVC_LOOKUP_RATE_LIMIT": "0", "GRIDSVC_REGISTRATION_RATE_LIMIT": "0",
           "GRIDSVC_MEMBERS_RATE_LIMIT": "0"}
    with log.open("w") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "gridsvc", "serve", "--host", "127.0.0.1", "--port",
             str(port), "--workers", str(workers)],
            cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=out, start_new_session=True)
    base = f"http://127.0.0.1:{port}"
    SERVER_PIDS[base] = proc.pid
    try:
        deadline = time.monotonic() + startup_s
        while True:
            if proc.poll() is not None:
                raise RuntimeError(f"the server exited with {proc.returncode}; see {log}")
            try:
                if get(base, "/healthz")[0] == 200:
                    break
            except OSError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError(f"the server did not answer within {startup_s:.0f} s; "
                                   f"see {log}")
            time.sleep(0.2)
        yield base
    finally:
        stop(proc)


def stop(proc: subprocess.Popen) -> None:
    """SIGTERM to the server's process group (gunicorn and its workers), SIGKILL if stuck."""
    if proc.poll() is not None:
        return
    os.killpg(proc.pid, signal.SIGTERM)
    try:
        proc.wait(timeout=15)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()


# --- load -----------------------------------------------------------------------------------


@dataclass
class Load:
    requests: int
    seconds: float
    p50_ms: float
    p99_ms: float
    failed: int  # socket errors and non-2xx answers

    @property
    def per_second(self) -> float:
        return self.requests / self.seconds

    @classmethod
    def from_wrk(cls, r: dict) -> Load:
        """From the summary ``wrk_paths.lua`` and ``wrk_mix.lua`` print."""
        return cls(requests=r["requests"], seconds=r["duration_us"] / 1e6,
                   p50_ms=r["p50_us"] / 1000, p99_ms=r["p99_us"] / 1000,
                   failed=r["socket_errors"] + r["non_2xx"])


def lookup_paths(lon: np.ndarray, lat: np.ndarray) -> list[str]:
    return [f"/api/v1/lookup?lon={x!r}&lat={y!r}&coordsys=wgs84"
            for x, y in zip(lon.tolist(), lat.tolist(), strict=True)]


def load(base: str, paths: list[str], seconds: float,
         connections: int = CONNECTIONS) -> Load:
    """GET ``paths`` in turn for ``seconds`` with ``connections`` concurrent clients."""
    if shutil.which("wrk"):
        return wrk_load(base, paths, seconds, connections)
    return python_load(base, paths, seconds, connections)


def wrk_load(base: str, paths: list[str], seconds: float, connections: int) -> Load:
    with tempfile.NamedTemporaryFile("w", suffix=".txt") as listing:
        listing.write("\n".join(paths) + "\n")
        listing.flush()
        done = subprocess.run(
            ["wrk", "--threads", "1", "--connections", str(connections), "--duration",
             f"{max(1, round(seconds))}s", "--timeout", "10s", "--script", str(WRK_SCRIPT),
             base, "--", listing.name], capture_output=True, text=True, check=True)
    return Load.from_wrk(wrk_summary(done.stdout))


def wrk_summary(stdout: str) -> dict:
    """The JSON line a wrk script's ``done()`` printed (the last line starting with "{")."""
    return json.loads(next(x for x in reversed(stdout.splitlines()) if x.startswith("{")))


def python_load(base: str, paths: list[str], seconds: float, connections: int) -> Load:
    """The same as wrk with threads and http.client (the client itself may be the limit)."""
    latencies: list[list[float]] = [[] for _ in range(connections)]
    failed = [0] * connections
    stop_at = time.perf_counter() + seconds

    def client(k: int) -> None:
        n = k * len(paths) // connections
        while time.perf_counter() < stop_at:
            start = time.perf_counter()
            try:
                status, _ = get(base, paths[n % len(paths)])
            except OSError:
                status = 0
            latencies[k].append(time.perf_counter() - start)
            failed[k] += not 200 <= status < 300
            n += 1

    start = time.perf_counter()
    threads = [threading.Thread(target=client, args=(k,)) for k in range(connections)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    elapsed = time.perf_counter() - start
    times = np.concatenate([np.array(x) for x in latencies]) * 1000
    return Load(requests=len(times), seconds=elapsed, p50_ms=float(np.percentile(times, 50)),
                p99_ms=float(np.percentile(times, 99)), failed=sum(failed))


def post_json(base: str, path: str, body: bytes) -> tuple[int, bytes]:
    host, port = base.removeprefix("http://").split(":")
    conn = http.client.HTTPConnection(host, int(port), timeout=120)
    try:
        conn.request("POST", path, body, {"Content-Type": "application/json"})
        response = conn.getresponse()
        return response.status, response.read()
    finally:
        conn.close()


def batch_bodies(lon: np.ndarray, lat: np.ndarray, size: int) -> list[bytes]:
    """The points as JSON batches of ``size`` {lon, lat, coordsys} items."""
    items = [{"lon": x, "lat": y, "coordsys": "wgs84"}
             for x, y in zip(lon.tolist(), lat.tolist(), strict=True)]
    return [json.dumps(items[k:k + size]).encode() for k in range(0, len(items), size)]


def batch_load(base: str, bodies: list[bytes], path: str, clients: int = WORKERS
               ) -> tuple[float, int, list[str]]:
    """POST every body (``clients`` at a time): seconds, points answered, and problems
    (a status other than 200, or an answer that does not locate every point)."""
    def post(body: bytes) -> tuple[int, bytes]:
        return post_json(base, path, body)

    start = time.perf_counter()
    with ThreadPoolExecutor(clients) as pool:
        answers = list(pool.map(post, bodies))
    seconds = time.perf_counter() - start
    problems = [f"HTTP {status}: {data[:200]!r}" for status, data in answers if status != 200]
    sent = len(json.loads(bodies[0]))
    answered = located(json.loads(answers[0][1])) if answers[0][0] == 200 else 0
    if answers[0][0] == 200 and answered != sent:
        problems.append(f"the first batch answered {answered} of {sent} points")
    points = sum(len(json.loads(b)) for b, (s, _) in zip(bodies, answers, strict=True)
                 if s == 200)
    return seconds, points, problems


def located(answer: object) -> int:
    """How many items a batch answer located: entries with a "result" (in a list, or an object
    holding the list), or the positions of a ``format=columns`` answer."""
    if isinstance(answer, dict) and isinstance(answer.get("columns"), dict):
        return len(answer["columns"].get("index", []))
    if isinstance(answer, dict):
        answer = next((v for v in answer.values() if isinstance(v, list)), [])
    return sum(1 for r in answer if isinstance(r, dict) and "result" in r) if isinstance(
        answer, list) else 0


def warm_up(base: str, paths: list[str], tries: int = 10) -> float:
    """Load until lookups are quick, and return how long the first lookups took (one lookup
    per worker, all at once)."""
    start = time.perf_counter()
    with ThreadPoolExecutor(WORKERS) as pool:
        answers = list(pool.map(lambda path: get(base, path, timeout=300), paths[:WORKERS]))
    first = time.perf_counter() - start
    for path, (status, body) in zip(paths, answers, strict=False):
        if status != 200 or "chain" not in json.loads(body):
            raise RuntimeError(f"GET {path} answered {status}: {body[:300]!r}")
    for _ in range(tries):
        run = load(base, paths, 2.0)
        if run.requests >= 50 and run.failed == 0 and run.p99_ms < 50:
            return first
    raise RuntimeError(f"lookups still fail or are slow after warming up: {run}")


# --- figures --------------------------------------------------------------------------------


def http_figures(lon: np.ndarray, lat: np.ndarray, scale: str, seed: int, seconds: float,
                 batches: int) -> tuple[list[Figure], list[str]]:
    """Serve the demo city and measure it; ``lon``/``lat`` are wgs84 points inside buildings
    of that city (at least ``batches`` * 10,000 for the batch figure)."""
    notes = []
    started = time.perf_counter()
    database = demo_database(scale, seed)
    if time.perf_counter() - started > 5:
        notes.append(f"HTTP: built {database.relative_to(ROOT)} in "
                     f"{time.perf_counter() - started:.0f} s (reused by later runs)")
    paths = lookup_paths(lon[:20_000], lat[:20_000])
    bodies = batch_bodies(lon[:batches * BATCH_SIZE], lat[:batches * BATCH_SIZE], BATCH_SIZE)
    log = OUT / "server.log"
    started = time.perf_counter()
    with running_server(database, log) as base:
        start_s = time.perf_counter() - started
        first_s = warm_up(base, paths)
        floor = load(base, [FLOOR_PATH], seconds)
        lookups = load(base, paths, seconds)
        batches = {}
        for form, query in BATCH_FORMS.items():
            batch_load(base, bodies[:WORKERS], BATCH_PATH + query)  # warm up
            batches[form] = batch_load(base, bodies, BATCH_PATH + query)
        master_mb, workers_mb = memory.process_memory(SERVER_PIDS[base])
    parts = memory.breakdown(database)
    client = "wrk" if shutil.which("wrk") else "a threaded Python client (wrk not installed)"
    notes.append(f"HTTP: `gridsvc serve --workers {WORKERS}` (gunicorn, gthread workers) on "
                 f"{os.cpu_count()} cores, load from {client} with {CONNECTIONS} keep-alive "
                 f"connections on the same machine, {seconds:.0f} s per run; failed requests: "
                 f"lookups {lookups.failed}, {FLOOR_PATH} {floor.failed}")
    notes.append(f"HTTP: the server answered after {start_s:.0f} s (its master builds the "
                 f"index and gazetteer before forking the workers); the first lookups then "
                 f"took {first_s * 1000:.0f} ms")
    notes += [f"HTTP batch ({form}): {p}" for form, (_s, _n, problems) in batches.items()
              for p in problems]
    rate = lookups.per_second
    figures = [
        Figure("http", "single lookups", rate, "req/s", f"GET {FLOOR_PATH}",
               floor.per_second, higher_is_better=True, target=RPS_TARGET),
        Figure("http", "single lookups, p99 latency", lookups.p99_ms, "ms",
               f"GET {FLOOR_PATH} p99", floor.p99_ms, target=P99_TARGET),
        Figure("http", "single lookups, median latency", lookups.p50_ms, "ms",
               f"GET {FLOOR_PATH} median", floor.p50_ms),
    ]
    for form, (batch_s, batch_n, _problems) in batches.items():
        name = f"batch of {BATCH_SIZE:,} points" + ("" if form == "results" else f", {form}")
        figures.append(Figure("http", name, batch_n / batch_s, "points/s",
                              "single lookups (1 point/request)", rate,
                              higher_is_better=True,
                              target=COLUMNS_TARGET if form == "columns" else BATCH_TARGET))
    imports = parts["interpreter"] + parts["imports"]
    figures.append(Figure("memory", "serve: master RSS", master_mb, "MB",
                          "the app's imports alone (no data)", imports, target=MASTER_TARGET))
    for k, pss in enumerate(sorted(workers_mb.values())):
        figures.append(Figure("memory", f"serve: worker {k + 1} PSS (after the batches)", pss,
                              "MB", "the master's RSS", master_mb))
    notes.append("memory: the master's start in a fresh interpreter (MB added by each step): "
                 + ", ".join(f"{name} {mb:.0f}" for name, mb in parts.items()))
    return figures, notes


"""Memory of ``gridsvc serve`` (issue 13, item 6): the master's resident memory, each worker's
proportional share (PSS), and where the master's memory goes.

- ``process_memory(pid)``: the master's RSS (``/proc/<pid>/status``) and each child's PSS
  (``/proc/<child>/smaps_rollup``: pages shared copy-on-write with the master or the other
  worker count a share each, so the PSS of the workers and the master add up to what the
  server really holds).
- ``breakdown(database)``: in a fresh interpreter, what the master does before it forks
  (``GunicornServer.load``: the app, then ``Services.warm``), step by step, the RSS each step
  adds: imports (the app and its libraries, no data), index (the micro-grid polygon index,
  the unit arrays and names, the households), encoded answers (``EncodedUnits``), gazetteer.
  The polygon index's own arrays are given apart (``PolygonIndex.memory_bytes``).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _rss_mb(pid: int | str = "self") -> float:
    with open(f"/proc/{pid}/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return float("nan")


def _pss_mb(pid: int) -> float:
    with open(f"/proc/{pid}/smaps_rollup") as rollup:
        for line in rollup:
            if line.startswith("Pss:"):
                return int(line.split()[1]) / 1024
    return float("nan")


def _children(pid: int) -> list[int]:
    found: list[int] = []
    for task in Path(f"/proc/{pid}/task").iterdir():
        text = (task / "children").read_text().split()
        found += [int(c) for c in text]
    return found


def process_memory(pid: int) -> tuple[float, dict[int, float]]:
    """The master's RSS in MB and each worker's PSS in MB (by pid)."""
    return _rss_mb(pid), {child: _pss_mb(child) for child in _children(pid)}


def breakdown(database: Path) -> dict[str, float]:
    """MB each step of the master's start adds, measured in a fresh interpreter."""
    env = {**os.environ, "GRIDSVC_DATABASE_URL": f"sqlite:///{database}"}
    done = subprocess.run([sys.executable, __file__, "--child"], cwd=ROOT, env=env,
                          capture_output=True, text=True, check=True)
    return json.loads(done.stdout.strip().splitlines()[-1])


def _child() -> None:
    start = _rss_mb()
    from gridsvc.web import create_app

    app = create_app()
    svc = app.extensions["gridsvc"]
    imported = _rss_mb()
    index = svc.locator.current()
    indexed = _rss_mb()
    index.warm()
    encoded = _rss_mb()
    svc.geocoder.current()
    done = _rss_mb()
    print(json.dumps({
        "interpreter": start, "imports": imported - start, "index": indexed - imported,
        "polygon index arrays": index.polygons.memory_bytes() / 2**20,
        "encoded answers": encoded - indexed, "gazetteer": done - encoded, "total": done,
    }))


if __name__ == "__main__" and sys.argv[1:] == ["--child"]:
    _child()

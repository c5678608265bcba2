"""Map figures: a street's coverage map in headless Chromium (Debian's, driven by Playwright),
for the small and the city-scale demo, against the naive page of the same street in the same
run (every level's GeoJSON inlined into the HTML, ``inline=1``).

The measured page fetches ``/api/v1/layers/{level}`` per view, simplified for the zoom, with
micro-grids from zoom 15 only (``inline=0``). For each page: the HTML size, the data
transferred (document and every resource, from the Resource Timing API), and the time from
navigation until every shown layer is drawn (``gridsvcMaps.idle()`` and a first layer with
features), best of ``RUNS`` after one warm-up load per page (the server's caches are per
process). Base map ``none``: only gridsvc's own assets and data are counted. The pages need a
token that may read units: an admin token (valid one day) is made in the demo database and
sent as the Authorization header of every request of the page.

    python bench/bench_maps.py [--quick]
"""

from __future__ import annotations

import os
import sqlite3
import sys
import time
from contextlib import closing
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from figures import Figure, Report, table_lines
from http_load import OUT, demo_database, running_server

CHROMIUM = "/usr/bin/chromium"
RUNS = 3
STARTUP_S = 600.0  # the server builds the city index and gazetteer before it answers
BASELINE = "inlined GeoJSON page"
DRAWN = """() => window.gridsvcMaps && window.gridsvcMaps.idle() &&
    Object.values(window.gridsvcMaps.layers).some(s => s.count > 0)"""
TRANSFERRED = """() => {
    const nav = performance.getEntriesByType('navigation')[0];
    return [nav, ...performance.getEntriesByType('resource')]
        .reduce((sum, e) => sum + (e.transferSize || e.encodedBodySize || 0), 0);
}"""


def first_street(database: Path) -> str:
    with closing(sqlite3.connect(database)) as conn:
        return conn.execute("SELECT code FROM units WHERE level = 1 ORDER BY code").fetchone()[0]


def admin_token(database: Path) -> str:
    """A fresh admin token in the demo database (made with the service function)."""
    from gridsvc.services.accounts import create_token
    from gridsvc.services.context import Services
    from gridsvc.settings import Settings

    svc = Services.from_settings(Settings(database_url=f"sqlite:///{database}"))
    try:
        return create_token(svc, "bench maps", "admin", expires_days=1)[0]
    finally:
        svc.close()


def measure(browser, url: str, token: str) -> tuple[float, float, float]:  # type: ignore[no-untyped-def]
    """(HTML kB, transferred kB, ms until drawn) of one page load in a fresh context."""
    context = browser.new_context(viewport={"width": 1280, "height": 800},
                                  extra_http_headers={"Authorization": f"Bearer {token}"})
    try:
        page = context.new_page()
        started = time.perf_counter()
        response = page.goto(url, wait_until="commit")
        page.wait_for_function(DRAWN, timeout=120_000, polling=20)
        drawn_ms = (time.perf_counter() - started) * 1000
        page.wait_for_load_state("networkidle")
        html_kb = len(response.body()) / 1000
        transferred_kb = page.evaluate(TRANSFERRED) / 1000
        return html_kb, transferred_kb, drawn_ms
    finally:
        context.close()


def best(browser, url: str, token: str) -> tuple[float, float, float]:  # type: ignore[no-untyped-def]
    measure(browser, url, token)  # warm-up: each worker builds its caches on first use
    runs = [measure(browser, url, token) for _ in range(RUNS)]
    return runs[0][0], runs[0][1], min(r[2] for r in runs)


def map_figures(scales: tuple[str, ...] = ("small", "city"), seed: int = 1
                ) -> tuple[list[Figure], list[str]]:
    from playwright.sync_api import sync_playwright

    figures: list[Figure] = []
    notes: list[str] = []
    os.environ["GRIDSVC_BASEMAP"] = "none"  # the server inherits it: no tile requests
    with sync_playwright() as driver:
        browser = driver.chromium.launch(executable_path=CHROMIUM, headless=True,
                                         args=["--no-sandbox", "--disable-gpu"])
        try:
            for scale in scales:
                database = demo_database(scale, seed)
                street = first_street(database)
                token = admin_token(database)
                log = OUT / f"maps-{scale}.log"
                with running_server(database, log, startup_s=STARTUP_S) as base:
                    url = f"{base}/maps/coverage?unit={street}"
                    fast = best(browser, url + "&inline=0", token)
                    naive = best(browser, url + "&inline=1", token)
                for (name, unit), value, baseline in zip(
                        (("HTML size", "kB"), ("data transferred", "kB"),
                         ("time until drawn", "ms")), fast, naive, strict=True):
                    figures.append(Figure("maps", f"{scale} street map: {name}", value, unit,
                                          BASELINE, baseline))
                notes.append(f"maps: {scale} demo, street {street}, viewport 1280x800, "
                             f"best of {RUNS} loads after a warm-up")
        finally:
            browser.close()
    return figures, notes


def main() -> int:
    quick = "--quick" in sys.argv
    figures, notes = map_figures(("small",) if quick else ("small", "city"))
    report = Report(title="gridsvc map benchmarks", figures=figures, notes=notes)
    print("\n".join(table_lines(report)))
    return 0


if __name__ == "__main__":
    sys.exit(main())

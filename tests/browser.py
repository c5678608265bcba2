"""Browser-test fixtures: the app on a live 127.0.0.1 server, driven by Debian's headless Chromium.

Use them from a test module with ``from browser import chromium, live_app, live_server, page``
(or ``pytest_plugins = ["browser"]`` in tests/conftest.py) and mark the tests
``@pytest.mark.browser``.

- ``browser_settings``: the ``settings`` fixture (so the ``db`` fixture's two backends) with base
  map ``none``; override it in a test module to change settings.
- ``live_app``: ``create_app(browser_settings)``; a test may add routes before its first request.
- ``live_server``: serves ``live_app`` on 127.0.0.1 on a free port from a background thread;
  ``live_server.url("/path")`` gives the full URL.
- ``chromium``: one headless Chromium for the session (Python Playwright driving
  /usr/bin/chromium, no downloaded browser), with a fresh temporary profile.
- ``page``: a new browser context and page per test, recording console errors, page errors,
  Content-Security-Policy violations (as console errors: every test that checks the console
  checks the policy too), dialogs (dismissed) and every request URL. Requests to anything but
  the loopback are recorded and aborted, so a test can never reach the internet;
  ``assert_all_requests_local`` then fails the test.

Helpers: ``open_page`` (load and wait for network idle and the map container),
``assert_no_console_errors``, ``assert_all_requests_local``, ``screenshot`` (writes
tests/artifacts/<name>.png, git-ignored).
"""

from __future__ import annotations

import dataclasses
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

import pytest
from werkzeug.serving import make_server

from gridsvc.settings import Settings
from gridsvc.web import create_app

if TYPE_CHECKING:
    from playwright.sync_api import Browser, Page, Route

CHROMIUM = Path("/usr/bin/chromium")
ARTIFACTS = Path(__file__).parent / "artifacts"
LOOPBACK_HOSTS = {"127.0.0.1", "localhost", "::1", "[::1]"}
LOCAL_SCHEMES = {"data", "blob", "about", "file"}
TIMEOUT_MS = 15_000
LAUNCH_ARGS = [
    "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
    "--no-proxy-server", "--dns-prefetch-disable",
]


@dataclass
class PageLog:
    """What a page did: console errors and uncaught exceptions, and every request URL."""

    console_errors: list[str] = field(default_factory=list)
    requests: list[str] = field(default_factory=list)
    dialogs: list[str] = field(default_factory=list)


@dataclass
class LiveServer:
    """The running app: its base URL (http://127.0.0.1:<port>) and the app object."""

    base_url: str
    app: Any

    def url(self, path: str = "/") -> str:
        return self.base_url + path


def is_local(url: str) -> bool:
    """True for loopback HTTP URLs and for data:, blob:, about: and file: URLs."""
    parts = urlsplit(url)
    return parts.scheme in LOCAL_SCHEMES or (parts.hostname or "") in LOOPBACK_HOSTS


@pytest.fixture
def browser_settings(settings: Settings) -> Settings:
    """The test settings with no base map, so a page makes no request outside 127.0.0.1.

    The assets folder is the one ``make install`` filled (``GRIDSVC_ASSETS_DIR`` or the default).
    """
    return dataclasses.replace(settings, basemap="none",
                               assets_dir=Settings.from_env().assets_dir)


@pytest.fixture
def live_app(browser_settings: Settings) -> Any:
    return create_app(browser_settings)


@pytest.fixture
def live_server(live_app: Any) -> Iterator[LiveServer]:
    """``live_app`` served on 127.0.0.1 on a free port, stopped after the test."""
    server = make_server("127.0.0.1", 0, live_app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, name="live-server", daemon=True)
    thread.start()
    try:
        yield LiveServer(f"http://127.0.0.1:{server.server_port}", live_app)
    finally:
        server.shutdown()
        thread.join()
        server.server_close()


# One Playwright driver per process: test modules that import the ``chromium`` fixture each get
# their own copy of it, and a second sync_playwright() in the same thread would fail.
_shared: dict[str, Any] = {}


@pytest.fixture(scope="session")
def chromium() -> Iterator[Browser]:
    """Debian's Chromium, headless, driven by Playwright; fails clearly when it is missing."""
    if "browser" in _shared:
        yield _shared["browser"]
        return
    if not CHROMIUM.exists():
        pytest.fail(f"{CHROMIUM} not found: install the Debian package `chromium` "
                    "(`make test` installs it)", pytrace=False)
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        pytest.fail("Python Playwright is missing: `pip install -e '.[dev]'` (`make install`)",
                    pytrace=False)
    driver = sync_playwright().start()
    try:
        # launch() gives the browser a fresh temporary --user-data-dir, removed on close.
        browser = driver.chromium.launch(executable_path=str(CHROMIUM), headless=True,
                                         args=LAUNCH_ARGS)
        _shared["browser"] = browser
        yield browser
        browser.close()
    finally:
        _shared.clear()
        driver.stop()


REPORT_CSP_VIOLATIONS = """
document.addEventListener("securitypolicyviolation", (e) => console.error(
  "CSP violation: " + e.violatedDirective + " blocked " + (e.blockedURI || "inline") +
  " at " + e.sourceFile + ":" + e.lineNumber));
"""


def _abort_non_local(route: Route) -> None:
    if is_local(route.request.url):
        route.continue_()
    else:
        route.abort("blockedbyclient")


@pytest.fixture
def page(chromium: Browser) -> Iterator[Page]:
    """A fresh page whose console errors and requests are recorded in ``page.log``."""
    context = chromium.new_context(viewport={"width": 1280, "height": 800},
                                   service_workers="block")
    context.set_default_timeout(TIMEOUT_MS)
    context.route("**/*", _abort_non_local)
    context.add_init_script(REPORT_CSP_VIOLATIONS)
    new_page = context.new_page()
    log = PageLog()
    new_page.log = log  # type: ignore[attr-defined]
    new_page.on("console", lambda msg: msg.type == "error" and log.console_errors.append(
        f"{msg.text} ({msg.location.get('url', '')})"))
    new_page.on("pageerror", lambda exc: log.console_errors.append(f"uncaught: {exc}"))
    new_page.on("request", lambda request: log.requests.append(request.url))
    new_page.on("dialog", lambda dialog: (log.dialogs.append(dialog.message), dialog.dismiss()))
    yield new_page
    context.close()


def open_page(page: Page, url: str, selector: str = ".leaflet-container") -> None:
    """Load ``url``, wait until the network is idle and ``selector`` is visible."""
    response = page.goto(url, wait_until="networkidle")
    assert response is not None and response.ok, f"GET {url}: {response and response.status}"
    page.wait_for_selector(selector, state="visible")


def assert_no_console_errors(page: Page) -> None:
    errors = page.log.console_errors
    assert not errors, "console errors:\n" + "\n".join(errors)


def assert_all_requests_local(page: Page) -> None:
    outside = sorted({url for url in page.log.requests if not is_local(url)})
    assert not outside, "requests outside 127.0.0.1:\n" + "\n".join(outside)


def screenshot(page: Page, name: str) -> Path:
    """Save a full-page screenshot as tests/artifacts/<name>.png and return its path."""
    ARTIFACTS.mkdir(exist_ok=True)
    path = ARTIFACTS / f"{name}.png"
    page.screenshot(path=str(path), full_page=True)
    return path

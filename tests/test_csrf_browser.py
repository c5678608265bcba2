"""Cross-site form posts in headless Chromium: a page served from another origin (a second
server on another port of 127.0.0.1, so the same "site" for SameSite and cookies) posts a form
to gridsvc while the browser holds the gridsvc_token cookie. Without the CSRF token the post is
refused and nothing is stored; the same form with the token (which only gridsvc's own pages
hold) is accepted, which shows the cookie did travel and the token alone makes the difference."""

from __future__ import annotations

import html
import json
import threading
from collections.abc import Iterator

import pytest
from api_support import bearer, sample_records, write_geojson
from sqlalchemy import func, select
from werkzeug.serving import make_server
from werkzeug.wrappers import Request, Response

from gridsvc.storage.models import Unit
from gridsvc.web.auth import TOKEN_COOKIE
from gridsvc.web.csrf import token_for

pytestmark = pytest.mark.browser

FORM = """<!doctype html><html><meta charset="utf-8"><title>elsewhere</title>
<form id="f" method="post" enctype="multipart/form-data" action="{action}">
  <input type="file" name="file" id="file">{extra}
  <button type="submit">go</button>
</form>
<script>
  const dt = new DataTransfer();
  dt.items.add(new File([{geojson}], "tree.geojson", {{type: "application/geo+json"}}));
  document.getElementById("file").files = dt.files;
</script></html>"""


@pytest.fixture
def elsewhere() -> Iterator[dict]:
    """A second server on another 127.0.0.1 port serving whatever page ``pages["/"]`` is."""
    pages: dict[str, str] = {}

    @Request.application
    def app(request: Request) -> Response:
        return Response(pages.get(request.path, ""), mimetype="text/html")

    server = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, name="elsewhere", daemon=True)
    thread.start()
    try:
        yield {"pages": pages, "url": f"http://127.0.0.1:{server.server_port}"}
    finally:
        server.shutdown()
        thread.join()
        server.server_close()


def units(live_server) -> int:
    with live_server.app.extensions["gridsvc"].db.session() as session:
        return session.scalar(select(func.count()).select_from(Unit))


def post_from_elsewhere(page, elsewhere, action: str, extra: str = "") -> tuple[int, str]:
    elsewhere["pages"]["/"] = FORM.format(action=html.escape(action), extra=extra,
                                          geojson=json.dumps(elsewhere["geojson"]))
    page.goto(elsewhere["url"] + "/")
    with page.expect_response(lambda r: r.url.startswith(action)) as answer:
        page.click("button")
    response = answer.value
    return response.status, response.text()


def test_a_cross_site_form_cannot_write_with_the_cookie(live_server, elsewhere, page,
                                                         settings, tmp_path) -> None:
    token = bearer(settings, "admin")["Authorization"].removeprefix("Bearer ")
    page.context.add_cookies([{"name": TOKEN_COOKIE, "value": token,
                               "url": live_server.url("/"), "httpOnly": True,
                               "sameSite": "Strict"}])
    elsewhere["geojson"] = write_geojson(sample_records(), tmp_path / "t.geojson").read_text()
    action = live_server.url("/api/v1/boundaries/import")

    status, body = post_from_elsewhere(page, elsewhere, action)
    assert status == 403 and "CSRF" in body
    assert units(live_server) == 0  # nothing stored

    # the validation page's upload (stores nothing, not audited) is refused the same way
    check = live_server.url("/maps/validation")
    status, body = post_from_elsewhere(page, elsewhere, check)
    assert status == 403 and "CSRF token" in body

    # the same form with the session's CSRF token: the cookie was sent, and now authorises
    hidden = f'<input type="hidden" name="csrf_token" value="{token_for(token)}">'
    status, body = post_from_elsewhere(page, elsewhere, action, hidden)
    assert status == 201, body
    assert units(live_server) == len(sample_records())

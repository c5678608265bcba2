"""For tests/test_openapi.py: one call per edit route, sent there with an admin token: the
empty body is 400, the PUT without If-Match 428; tests/test_editing.py checks the rest."""

from __future__ import annotations

from api_support import C1

EDITOR_CALLS = [(method, url, {"json": {}}) for method, url in [
    ("post", f"/api/v1/units/{C1}/geometry/check"), ("put", f"/api/v1/units/{C1}/geometry")]]

"""For tests/test_openapi.py: one call per edit route. No staff token is configured there, so
both answer 403 (staff endpoints off); tests/test_editing.py checks their other responses."""

from __future__ import annotations

from api_support import C1

EDITOR_CALLS = [(method, url, {"json": {}}) for method, url in [
    ("post", f"/api/v1/units/{C1}/geometry/check"), ("put", f"/api/v1/units/{C1}/geometry")]]

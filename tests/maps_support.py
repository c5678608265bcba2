"""Calls of the map layer API for the OpenAPI conformance test (on api_support's sample tree)."""

from __future__ import annotations

from api_support import C1

MAP_CALLS: list[tuple[str, str, dict]] = [
    ("get", f"/api/v1/layers/grid?zoom=14&unit={C1}", {}),
    ("get", "/api/v1/layers/building?zoom=16&bbox=120.9,32.0,120.91,32.01&view=counts&points=1",
     {}),
    ("get", "/api/v1/layers/building?zoom=12", {}),
    ("get", "/api/v1/layers/nope?zoom=12", {}),
    ("get", "/api/v1/layers/grid?zoom=14&unit=999", {}),
]

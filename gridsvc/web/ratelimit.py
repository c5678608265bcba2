"""A rate limit on the public lookup (``GRIDSVC_LOOKUP_RATE_LIMIT``), with Flask-Limiter.

``GET /api/v1/lookup`` and ``POST /api/v1/lookup/batch`` are each counted per client address
(``request.remote_addr``; behind a reverse proxy set ``GRIDSVC_PROXY_HOPS``), a batch counting as
one request, in fixed windows. Counts are kept in memory, so each process counts on its own:
under gunicorn with N workers a client may get up to N times the limit, depending on which
worker takes its connections. That stops one client from flooding the service without
needing a shared store. Past the limit: 429 ``rate-limited`` with ``Retry-After`` (seconds
until the window ends). ``0`` or an empty value turns the limit off (the benchmarks do).
"""

from __future__ import annotations

import math
import time

from flask import Flask, Response, request
from flask_limiter import Limiter, RateLimitExceeded
from flask_limiter.util import get_remote_address

from gridsvc.settings import RATE_OFF, Settings, SettingsError, rate_problem
from gridsvc.web.problems import problem_response

LIMITED_ENDPOINTS = ("lookup.lookup_one", "lookup.lookup_batch")


def install(app: Flask, settings: Settings) -> Limiter | None:
    """Limit the lookup endpoints of ``app`` (registered before this) as configured."""
    rate = settings.lookup_rate_limit.strip()
    if rate.lower() in RATE_OFF:
        return None
    problem = rate_problem(rate)
    if problem:  # Settings built without from_env (which checks it at start)
        raise SettingsError(f"GRIDSVC_LOOKUP_RATE_LIMIT={rate!r} {problem}")
    limiter = Limiter(get_remote_address, app=app, storage_uri="memory://",
                      strategy="fixed-window", headers_enabled=False)
    for endpoint in LIMITED_ENDPOINTS:
        app.view_functions[endpoint] = limiter.limit(rate)(app.view_functions[endpoint])

    def too_many_requests(error: RateLimitExceeded) -> Response:
        current = limiter.current_limit
        reset = current.window.reset_time if current else time.time() + 60
        retry = max(1, math.ceil(reset - time.time()))
        response = problem_response(
            429, "rate-limited",
            f"more than {error.limit.limit} lookups from {request.remote_addr}; "
            f"retry in {retry} s", extra={"rate": str(error.limit.limit), "retry_after": retry})
        response.headers["Retry-After"] = str(retry)
        return response

    app.register_error_handler(RateLimitExceeded, too_many_requests)
    return limiter

"""A rate limit on the public lookup (``GRIDSVC_LOOKUP_RATE_LIMIT``), with Flask-Limiter.

``GET /api/v1/lookup`` and ``POST /api/v1/lookup/batch`` are each counted per client address
(``request.remote_addr``; behind a reverse proxy set ``GRIDSVC_PROXY_HOPS``), or per token
when one is sent, in fixed windows; a refused request counts too.
A public batch counts one lookup per item (its points), so a batch larger than the limit is
always refused and a city cannot be swept in a few requests; a batch with a token that may
read units (it reads the tree anyway) counts as one request. Counts are kept in memory, so
each process counts on its own: under gunicorn with N workers a client may get up to N times
the limit, depending on which worker takes its connections. That stops one client from
flooding the service without needing a shared store. Past the limit: 429 ``rate-limited``
with ``Retry-After`` (seconds until the window ends). ``0`` or an empty value turns the limit
off (the benchmarks do).
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable

from flask import Flask, Response, request
from flask_limiter import Limiter, RateLimitExceeded
from flask_limiter.util import get_remote_address

from gridsvc.access import Permission
from gridsvc.services.errors import ServiceError
from gridsvc.settings import RATE_OFF, Settings, SettingsError, rate_problem
from gridsvc.web.auth import caller_or_public
from gridsvc.web.lookup import batch_items
from gridsvc.web.problems import problem_response

BATCH = "lookup.lookup_batch"


def batch_cost() -> int:
    """What one batch counts against the limit: its items for the public, else 1. A body
    that does not decode counts 1 (the view answers 400)."""
    if caller_or_public().may(Permission.READ_UNITS):
        return 1
    try:
        items = batch_items()
    except ServiceError:
        return 1
    return max(1, len(items)) if isinstance(items, list) else 1


def client_key() -> str:
    """Whom a count belongs to: the token when one is sent, else the client address."""
    principal = caller_or_public()
    if principal.token_id is not None:
        return f"token:{principal.token_id}"
    return get_remote_address()


LIMITED_ENDPOINTS: dict[str, int | Callable[[], int]] = {"lookup.lookup_one": 1,
                                                         BATCH: batch_cost}


def install(app: Flask, settings: Settings) -> Limiter | None:
    """Limit the lookup endpoints of ``app`` (registered before this) as configured."""
    rate = settings.lookup_rate_limit.strip()
    if rate.lower() in RATE_OFF:
        return None
    problem = rate_problem(rate)
    if problem:  # Settings built without from_env (which checks it at start)
        raise SettingsError(f"GRIDSVC_LOOKUP_RATE_LIMIT={rate!r} {problem}")
    limiter = Limiter(client_key, app=app, storage_uri="memory://",
                      strategy="fixed-window", headers_enabled=False)
    for endpoint, cost in LIMITED_ENDPOINTS.items():
        # (the ignore below: flask-limiter types the result as async-or-sync)
        app.view_functions[endpoint] = limiter.limit(rate, cost=cost)(  # type: ignore[assignment]
            app.view_functions[endpoint])  # flask-limiter types the result as async-or-sync

    def too_many_requests(error: RateLimitExceeded) -> Response:
        current = limiter.current_limit
        reset = current.window.reset_time if current else time.time() + 60
        retry = max(1, math.ceil(reset - time.time()))
        per_item = " (a batch counts one lookup per item)" if request.endpoint == BATCH else ""
        response = problem_response(
            429, "rate-limited",
            f"more than {error.limit.limit} lookups from {request.remote_addr}{per_item}; "
            f"retry in {retry} s", extra={"rate": str(error.limit.limit), "retry_after": retry})
        response.headers["Retry-After"] = str(retry)
        return response

    app.register_error_handler(RateLimitExceeded, too_many_requests)
    return limiter

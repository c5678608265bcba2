"""Rate limits, with Flask-Limiter: the public lookup, self-registration and the staff
endpoints that compare personal data.

Three groups, each with its setting (``GROUPS``):

- ``GRIDSVC_LOOKUP_RATE_LIMIT``: ``GET /api/v1/lookup`` and ``POST /api/v1/lookup/batch``,
  each counted on its own. A public batch counts one lookup per item (its points), so a batch
  larger than the limit is always refused and a city cannot be swept in a few requests; a
  batch with a token that may read units (it reads the tree anyway) counts as one request.
- ``GRIDSVC_REGISTRATION_RATE_LIMIT``: ``POST /api/v1/members`` (public self-registration).
  It answers the same whether or not a phone is registered, so it is no oracle; the limit
  keeps anyone from flooding staff with requests.
- ``GRIDSVC_MEMBERS_RATE_LIMIT``: the staff endpoints that compare personal data someone
  types with the stored members: ``GET /api/v1/members`` (name search ``q``), ``PUT
  /api/v1/members/{id}`` (a phone that is taken is 409) and ``POST /api/v1/rosters`` (phones
  matched to members; one upload counts one), counted together per token, so a token cannot
  probe phones or names at speed.

Counts are per client address (``request.remote_addr``; behind a reverse proxy set
``GRIDSVC_PROXY_HOPS``), or per token when one is sent (the last two groups key by a digest
of the token as sent, so they need no database), in fixed windows; a refused request counts
too. They are kept in memory, so each process counts on its own: under gunicorn with
N workers a client may get up to N times the limit, depending on which worker takes its
connections. That stops one client from flooding the service without needing a shared store.
Past a limit: 429 ``rate-limited`` with ``Retry-After`` (seconds until the window ends) and
the ``setting`` at fault. ``0`` or an empty value turns a group off (the benchmarks do).
``gridsvc.web.openapi_edge.RATE_LIMITED`` lists the same operations (a test keeps them equal).
"""

from __future__ import annotations

import hashlib
import math
import time
from collections.abc import Callable
from dataclasses import dataclass

from flask import Flask, Response, request
from flask_limiter import Limiter, RateLimitExceeded
from flask_limiter.util import get_remote_address

from gridsvc.access import Permission
from gridsvc.services.errors import ServiceError
from gridsvc.settings import RATE_OFF, Settings, SettingsError, rate_problem
from gridsvc.web.auth import TOKEN_COOKIE, caller_or_public
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


def credential_key() -> str:
    """Whom a count belongs to, without asking the database: a digest of the token sent
    (header or cookie), else the client address. A request during an outage still answers
    503, not 401, and a token that is no live one is refused by the view anyway."""
    sent = (request.headers.get("Authorization", "").strip()
            or request.cookies.get(TOKEN_COOKIE, "").strip())
    if sent:
        return "credential:" + hashlib.sha256(sent.encode()).hexdigest()[:32]
    return get_remote_address()


@dataclass(frozen=True)
class Group:
    """Endpoints limited by one setting: ``field`` of ``Settings``; ``shared``: one count for
    all of them (else each endpoint counts on its own); ``what`` names a request in 429s."""

    field: str
    what: str
    endpoints: dict[str, int | Callable[[], int]]
    shared: bool = False
    key: Callable[[], str] = client_key

    @property
    def setting(self) -> str:
        return f"GRIDSVC_{self.field.upper()}"


GROUPS = (
    Group("lookup_rate_limit", "lookups", {"lookup.lookup_one": 1, BATCH: batch_cost}),
    Group("registration_rate_limit", "registrations", {"members.register_member": 1},
          key=credential_key),
    Group("members_rate_limit", "member searches and updates",
          {"members.list_members": 1, "members.update_member": 1, "members.upload_roster": 1},
          shared=True, key=credential_key),
)
LIMITED_ENDPOINTS: dict[str, int | Callable[[], int]] = {
    endpoint: cost for group in GROUPS for endpoint, cost in group.endpoints.items()}


def install(app: Flask, settings: Settings) -> Limiter | None:
    """Limit the endpoints of ``app`` (registered before this) as configured; None when
    every group is off."""
    rates: list[tuple[Group, str]] = []
    for group in GROUPS:
        rate = str(getattr(settings, group.field)).strip()
        if rate.lower() in RATE_OFF:
            continue
        problem = rate_problem(rate)
        if problem:  # Settings built without from_env (which checks it at start)
            raise SettingsError(f"{group.setting}={rate!r} {problem}")
        rates.append((group, rate))
    if not rates:
        return None
    limiter = Limiter(client_key, app=app, storage_uri="memory://",
                      strategy="fixed-window", headers_enabled=False)
    group_of: dict[str, Group] = {}
    for group, rate in rates:
        shared = (limiter.shared_limit(rate, scope=group.field, key_func=group.key)
                  if group.shared else None)
        for endpoint, cost in group.endpoints.items():
            group_of[endpoint] = group
            wrap = shared if shared is not None else limiter.limit(rate, cost=cost,
                                                                   key_func=group.key)
            # (the ignore below: flask-limiter types the result as async-or-sync)
            app.view_functions[endpoint] = wrap(  # type: ignore[assignment]
                app.view_functions[endpoint])

    def too_many_requests(error: RateLimitExceeded) -> Response:
        current = limiter.current_limit
        reset = current.window.reset_time if current else time.time() + 60
        retry = max(1, math.ceil(reset - time.time()))
        group = group_of.get(request.endpoint or "", GROUPS[0])
        per_item = " (a batch counts one lookup per item)" if request.endpoint == BATCH else ""
        response = problem_response(
            429, "rate-limited",
            f"more than {error.limit.limit} {group.what} from {request.remote_addr}"
            f"{per_item}; retry in {retry} s",
            extra={"rate": str(error.limit.limit), "retry_after": retry,
                   "setting": group.setting})
        response.headers["Retry-After"] = str(retry)
        return response

    app.register_error_handler(RateLimitExceeded, too_many_requests)
    return limiter

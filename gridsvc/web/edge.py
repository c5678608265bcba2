"""Answers given at the edge, before the app runs: gunicorn's own refusals, as problem+json.

gunicorn refuses a request it cannot parse or that passes its limits without calling the app:
a request line longer than ``limit_request_line`` (4094 bytes: 414), more than
``limit_request_fields`` headers (100) or one longer than ``limit_request_field_size`` (8190
bytes: 431), a malformed request line, method, version, header name or value, chunked body or
proxy line (400), an ``Expect`` it does not support (417), a transfer coding it does not know
(501), an exception the app let escape or a response header it could not send (500). It
writes those answers itself, as HTML, through ``gunicorn.util.write_error``; the
``ProblemThreadWorker`` (``gridsvc serve``'s worker class) replaces that function in each
worker with ``write_problem``: the same status, an ``application/problem+json`` body in the
service's one shape (``type`` ``/problems/<slug>``, ``title``, ``status``, ``detail``,
``instance``) and the security headers every answer carries. The limits stay gunicorn's
defaults: nothing the service accepts comes near them.
"""

from __future__ import annotations

import json
import threading
from typing import Any

from gunicorn import util
from gunicorn.workers.gthread import ThreadWorker

from gridsvc.web.problems import PROBLEM_MIMETYPE, PROBLEM_TYPES
from gridsvc.web.security_headers import edge_headers

# status -> slug of the answers gunicorn gives itself (each slug is in PROBLEM_TYPES).
EDGE_SLUGS = {400: "malformed-request", 403: "forbidden", 414: "uri-too-long",
              417: "http-error", 431: "headers-too-large", 500: "internal-error",
              501: "http-error"}
_current = threading.local()  # the request (if parsed) whose error is being written


def problem_bytes(status: int, reason: str, detail: str, instance: str = "") -> bytes:
    """A whole HTTP/1.1 answer: ``status`` with a problem+json body; the connection closes."""
    slug = EDGE_SLUGS.get(status, "http-error")
    title = reason if slug == "http-error" else PROBLEM_TYPES[slug][0]
    body = json.dumps({"type": f"/problems/{slug}", "title": title, "status": status,
                       "detail": detail, "instance": instance}).encode()
    headers = [("Content-Type", PROBLEM_MIMETYPE), ("Content-Length", str(len(body))),
               ("Connection", "close"), *edge_headers()]
    head = f"HTTP/1.1 {status} {reason}\r\n" + "".join(f"{k}: {v}\r\n" for k, v in headers)
    return head.encode("latin-1") + b"\r\n" + body


def write_problem(sock: Any, status_int: int, reason: str, mesg: str) -> None:
    """``gunicorn.util.write_error`` answering problem+json instead of an HTML page."""
    detail = mesg or ("the server failed to handle the request; the error was logged"
                      if status_int >= 500 else reason)
    request = getattr(_current, "request", None)
    instance = getattr(request, "path", None) or ""
    util.write_nonblock(sock, problem_bytes(status_int, reason, detail, instance))


class ProblemThreadWorker(ThreadWorker):
    """gunicorn's gthread worker whose own error answers are problem+json (``write_problem``)."""

    def init_process(self) -> None:
        util.write_error = write_problem
        super().init_process()

    def handle_error(self, req: Any, client: Any, addr: Any, exc: BaseException) -> None:
        _current.request = req or getattr(exc, "req", None)
        try:
            super().handle_error(req, client, addr, exc)
        finally:
            _current.request = None

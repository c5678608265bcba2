"""Request body limits, and which address a request comes from.

A multipart upload may be up to ``GRIDSVC_MAX_UPLOAD_MB``; any other body (JSON: batch
lookups, registrations, geometry edits) up to ``GRIDSVC_MAX_JSON_MB``, usually much smaller.
The limit is checked against ``Content-Length`` before the view runs; a JSON body without one
(chunked) is read before the view runs, up to the limit. Past it the answer is 413
``payload-too-large`` naming the limit and its setting.

``GRIDSVC_PROXY_HOPS`` trusts that many reverse proxies' X-Forwarded-For and X-Forwarded-Proto,
so that ``request.remote_addr`` (the key of the lookup rate limit) is the client's, not the
proxy's.
"""

from __future__ import annotations

from flask import Flask, Response, current_app, request
from werkzeug.exceptions import RequestEntityTooLarge
from werkzeug.middleware.proxy_fix import ProxyFix

from gridsvc.settings import Settings
from gridsvc.web.problems import problem_response

MB = 1024 * 1024
MULTIPART = "multipart/form-data"
BODY_METHODS = ("POST", "PUT", "PATCH")


def install(app: Flask, settings: Settings) -> None:
    """Apply the body limits and the proxy setting to ``app``."""
    app.config["MAX_CONTENT_LENGTH"] = settings.max_upload_mb * MB
    app.config["GRIDSVC_BODY_LIMITS"] = {
        "upload": (settings.max_upload_mb * MB, "GRIDSVC_MAX_UPLOAD_MB"),
        "json": (settings.max_json_mb * MB, "GRIDSVC_MAX_JSON_MB"),
    }
    app.before_request(_limit_body)
    app.register_error_handler(RequestEntityTooLarge, _too_large)
    if settings.proxy_hops > 0:
        app.wsgi_app = ProxyFix(  # type: ignore[method-assign]  # Flask's documented way to wrap it
            app.wsgi_app, x_for=settings.proxy_hops, x_proto=settings.proxy_hops)


def body_limit() -> tuple[int, str]:
    """This request's body limit in bytes and the setting that sets it."""
    limits = current_app.config["GRIDSVC_BODY_LIMITS"]
    upload = limits["upload"]
    if request.mimetype == MULTIPART:
        return upload
    return min(limits["json"], upload)


def _limit_body() -> None:
    limit, _setting = body_limit()
    request.max_content_length = limit
    if request.content_length is not None:
        if request.content_length > limit:
            raise RequestEntityTooLarge()
    elif request.method in BODY_METHODS and request.mimetype != MULTIPART:
        # A body of unknown length (chunked): werkzeug stops reading it at the limit without
        # a word, which would hand the view a truncated body. Read it now (cached for the
        # view) and ask for one byte more, which raises 413 when the limit cut it off.
        request.get_data(cache=True)
        request.stream.read(1)


def _too_large(_error: RequestEntityTooLarge) -> Response:
    limit, setting = body_limit()
    what = "upload" if request.mimetype == MULTIPART else "request body"
    if request.content_length is not None and request.content_length <= limit:
        # the whole body fits: werkzeug refused a form field or the number of parts
        detail = (f"a form field other than the file is larger than "
                  f"{current_app.config['MAX_FORM_MEMORY_SIZE']:,} bytes, or the form has "
                  f"more than {current_app.config['MAX_FORM_PARTS']:,} parts")
    else:
        detail = f"the {what} is larger than the limit of {limit / MB:,.0f} MB ({setting})"
    return problem_response(413, "payload-too-large", detail,
                            extra={"limit_bytes": limit, "setting": setting})

"""Errors the service layer raises. Each has a stable ``slug`` that the web layer turns into
an application/problem+json ``type`` (``/problems/<slug>``) and the CLI prints."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any


class ServiceError(Exception):
    slug = "service-error"
    title = "Request failed"
    status = 400

    def __init__(self, detail: str, **extra: Any) -> None:
        super().__init__(detail)
        self.detail = detail
        self.extra = extra


class NotFound(ServiceError):
    slug = "not-found"
    title = "Not found"
    status = 404


class InvalidInput(ServiceError):
    slug = "invalid-input"
    title = "Invalid input"
    status = 400


class ValidationFailed(ServiceError):
    """A boundary file or edit broke validation rules; ``extra["report"]`` holds the report."""

    slug = "validation-failed"
    title = "Validation failed"
    status = 422


class Conflict(ServiceError):
    slug = "conflict"
    title = "Conflict"
    status = 409


class VersionConflict(ServiceError):
    """A unit or member is no longer at the version the caller expected (someone else saved
    first)."""

    slug = "precondition-failed"
    title = "Precondition failed"
    status = 412


class PreconditionRequired(ServiceError):
    """A change came without the version it was read at (If-Match), where one is required."""

    slug = "precondition-required"
    title = "Precondition required"
    status = 428


class Forbidden(ServiceError):
    """The caller's role or subtree does not allow this (e.g. a planner editing outside it)."""

    slug = "forbidden"
    title = "Forbidden"
    status = 403


class ArchiveTooLarge(ServiceError):
    """An uploaded zip would unpack past a limit (entries, total size, expansion ratio);
    ``extra`` names the ``entry`` at fault, the ``setting`` and its ``limit``."""

    slug = "archive-too-large"
    title = "Archive too large to unpack"
    status = 413


def refuse_unknown(given: object, known: Iterable[str], noun: str) -> None:
    """InvalidInput naming the first key of ``given`` that is not in ``known``."""
    allowed = list(known)
    # (the ignore below: given and allowed are both iterables of str)
    unknown = sorted(set(given) - set(allowed))  # type: ignore[call-overload]
    if unknown:
        raise InvalidInput(f"unknown {noun} {', '.join(unknown)}; the {noun} are "
                           f"{', '.join(allowed)}", field=unknown[0])

"""Errors about an input file as a whole (as opposed to problems in its rows)."""

from __future__ import annotations


class BoundaryFileError(ValueError):
    """The file as a whole cannot be read: missing, unreadable, unsafe, or a bad option."""


class ZipLimitExceeded(BoundaryFileError):
    """Unpacking a zip would pass a limit: too many entries, too many bytes in all, or an entry
    that expands too much (a zip bomb). ``entry`` names the entry at fault (None when the
    archive as a whole is), ``setting`` the variable that sets the limit, ``limit`` its value."""

    def __init__(self, message: str, *, entry: str | None, setting: str, limit: int) -> None:
        super().__init__(message)
        self.entry = entry
        self.setting = setting
        self.limit = limit

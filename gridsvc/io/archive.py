"""Unpacking an uploaded zip archive without trusting it.

Before anything is written, every entry must stay inside the target folder (no absolute path,
no '..', no link), there may be at most ``max_entries`` entries, and the sizes the headers
declare must keep within the limits. The headers are then not trusted: bytes are counted as
they come out of the decompressor, and unpacking stops at once when the total passes
``max_bytes``, when an entry gives more than its header declared, or when an entry past
``RATIO_FLOOR_BYTES`` has expanded more than ``max_ratio`` times its packed size. Callers
unpack into a temporary folder that they remove whatever happens, so a refused archive leaves
nothing behind.
"""

from __future__ import annotations

import zipfile
import zlib
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from gridsvc.io.errors import BoundaryFileError, ZipLimitExceeded

MB = 1024 * 1024
RATIO_FLOOR_BYTES = MB  # smaller entries (.prj, .cpg, a small .dbf) may expand any amount
CHUNK = 256 * 1024


@dataclass(frozen=True)
class ZipLimits:
    """How far an archive may unpack; the defaults are those of the settings."""

    max_bytes: int = 1024 * MB  # GRIDSVC_ZIP_MAX_MB
    max_ratio: int = 200  # GRIDSVC_ZIP_MAX_RATIO
    max_entries: int = 1000  # GRIDSVC_ZIP_MAX_ENTRIES


def extract_zip(archive: Path, folder: Path, limits: ZipLimits) -> None:
    """Unpack ``archive`` into ``folder`` within ``limits``. Raises ``ZipLimitExceeded`` past a
    limit and ``BoundaryFileError`` for an unsafe or broken archive; what was unpacked before
    the error stays in ``folder`` for the caller to remove."""
    name = archive.name
    try:
        with zipfile.ZipFile(archive) as zf:
            members = zf.infolist()
            _check_declared(name, members, limits)
            total = 0
            for member in members:
                total = _unpack(name, zf, member, folder, limits, total)
    except (zipfile.BadZipFile, zlib.error, EOFError, NotImplementedError, RuntimeError) as exc:
        raise BoundaryFileError(f"{name}: not a valid zip file ({exc})") from exc


def _check_declared(name: str, members: list[zipfile.ZipInfo], limits: ZipLimits) -> None:
    """Refuse before unpacking what the headers already show: unsafe paths, too many entries,
    declared sizes past the limits."""
    for member in members:
        if _relative_parts(member) is None:
            raise BoundaryFileError(
                f"{name}: member {member.filename!r} points outside the archive "
                "(absolute path, '..' or a link); refusing to read this zip")
    if len(members) > limits.max_entries:
        raise ZipLimitExceeded(
            f"{name}: holds {len(members):,} entries, more than the limit of "
            f"{limits.max_entries:,} (GRIDSVC_ZIP_MAX_ENTRIES); refusing to unpack it",
            entry=None, setting="GRIDSVC_ZIP_MAX_ENTRIES", limit=limits.max_entries)
    declared = 0
    for member in members:
        _check_ratio(name, member, member.file_size, limits)
        declared += member.file_size
        if declared > limits.max_bytes:
            raise _too_big(name, member.filename, limits)


def _relative_parts(member: zipfile.ZipInfo) -> tuple[str, ...] | None:
    """The entry's path inside the archive, or None when it would land outside it."""
    name = member.filename.replace("\\", "/")
    parts = PurePosixPath(name).parts
    absolute = name.startswith("/") or (len(name) > 1 and name[1] == ":")
    symlink = (member.external_attr >> 16) & 0o170000 == 0o120000
    if absolute or ".." in parts or symlink or "\0" in name:
        return None
    return parts


def _unpack(name: str, zf: zipfile.ZipFile, member: zipfile.ZipInfo, folder: Path,
            limits: ZipLimits, total: int) -> int:
    """Unpack one entry, counting its bytes; returns the running total."""
    parts = _relative_parts(member)
    if not parts:
        return total
    target = folder.joinpath(*parts)
    if not target.resolve().is_relative_to(folder.resolve()):
        raise BoundaryFileError(f"{name}: member {member.filename!r} points outside the archive")
    if member.is_dir():
        target.mkdir(parents=True, exist_ok=True)
        return total
    target.parent.mkdir(parents=True, exist_ok=True)
    written = 0
    with zf.open(member) as source, target.open("wb") as out:
        while chunk := source.read(CHUNK):
            written += len(chunk)
            total += len(chunk)
            if written > member.file_size:
                raise BoundaryFileError(
                    f"{name}: entry {member.filename!r} holds more than the "
                    f"{member.file_size:,} bytes its header declares; refusing this zip")
            _check_ratio(name, member, written, limits)
            if total > limits.max_bytes:
                raise _too_big(name, member.filename, limits)
            out.write(chunk)
    return total


def _too_big(name: str, entry: str, limits: ZipLimits) -> ZipLimitExceeded:
    mb = limits.max_bytes / MB
    return ZipLimitExceeded(
        f"{name}: unpacks to more than the limit of {mb:,.0f} MB (GRIDSVC_ZIP_MAX_MB) by "
        f"entry {entry!r}; refusing to unpack it",
        entry=entry, setting="GRIDSVC_ZIP_MAX_MB", limit=round(mb))


def _check_ratio(name: str, member: zipfile.ZipInfo, unpacked: int, limits: ZipLimits) -> None:
    packed = max(member.compress_size, 1)
    if unpacked > RATIO_FLOOR_BYTES and unpacked > limits.max_ratio * packed:
        raise ZipLimitExceeded(
            f"{name}: entry {member.filename!r} expands more than {limits.max_ratio} times "
            f"({member.compress_size:,} packed bytes unpack to {unpacked:,} or more), past the "
            "limit GRIDSVC_ZIP_MAX_RATIO (a zip bomb?); refusing to unpack it",
            entry=member.filename, setting="GRIDSVC_ZIP_MAX_RATIO", limit=limits.max_ratio)

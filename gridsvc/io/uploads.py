"""Where uploaded files wait while they are read: a folder the service owns.

Uploads (rosters with names, phones and addresses; boundary files with leaders' contacts;
gazetteers) are written to ``GRIDSVC_UPLOAD_DIR`` (default ``<instance>/uploads``, mode
0700), one sub-folder per upload, removed when the request ends. A process killed in between
leaves its folder behind: ``remove_stale`` (called when the app starts) removes every upload
folder older than ``STALE_AFTER_S``, there and, for what older versions or a crashed zip
extraction left, the folders of the system's temporary directory named as the service names
its scratch folders (``SCRATCH_KINDS``: ``gridsvc-roster-*``, ``gridsvc-zip-*``, ...). A full disk
surfaces as ``OSError`` ``ENOSPC``/``EDQUOT`` (``is_disk_full``), which the web layer answers
with 503.
"""

from __future__ import annotations

import errno
import shutil
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

PREFIX = "gridsvc-"
STALE_AFTER_S = 600.0  # far past any request's timeout (gridsvc serve --timeout 120)
DISK_FULL = (errno.ENOSPC, errno.EDQUOT)
# The scratch folders that hold uploaded or exported data (``gridsvc-<kind>-...``).
SCRATCH_KINDS = ("roster", "upload", "gazetteer", "zip", "export", "shp")


def is_disk_full(error: BaseException) -> bool:
    return isinstance(error, OSError) and error.errno in DISK_FULL


@contextmanager
def upload_folder(root: Path, kind: str) -> Iterator[Path]:
    """A fresh private folder under ``root`` for one upload, removed afterwards."""
    root.mkdir(parents=True, exist_ok=True, mode=0o700)
    folder = Path(tempfile.mkdtemp(prefix=f"{PREFIX}{kind}-", dir=root))
    try:
        yield folder
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def remove_stale(root: Path, older_than_s: float = STALE_AFTER_S) -> int:
    """Remove the scratch folders (``SCRATCH_KINDS``) under ``root`` and in the system's
    temporary directory older than ``older_than_s``; how many were removed."""
    cutoff = time.time() - older_than_s
    removed = 0
    for parent in (root, Path(tempfile.gettempdir())):
        try:
            entries = [e for kind in SCRATCH_KINDS for e in parent.glob(f"{PREFIX}{kind}-*")]
        except OSError:
            continue
        for entry in entries:
            try:
                if not entry.is_dir() or entry.is_symlink() or entry.stat().st_mtime > cutoff:
                    continue
            except OSError:
                continue
            shutil.rmtree(entry, ignore_errors=True)
            removed += not entry.exists()
    return removed

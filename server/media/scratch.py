"""The temporary files of exports: named after the process that writes them, and removed at start once that process
is gone (a server killed while it built an export left its file behind for good before).

An export (npz, Parquet, NWB, CSV) is written whole to a temporary file, whose name is removed as soon as its answer
starts (``exports.read_and_remove``): only a process killed while it builds one leaves a file. NWB needs the file
(HDF5 seeks back and forth), the others could stream; images.zip streams (``archive.py``).
"""

from __future__ import annotations

import logging
import os
import re
import tempfile
import time
from pathlib import Path

__all__ = ["LEGACY_AGE_S", "remove_stale", "temporary_prefix"]

_LOG = logging.getLogger("evostim")
_OURS = re.compile(r"evostim-export-(?P<pid>\d+)-")
# Before files carried their writer's process id: 'evostim-<random>.<format>'. One untouched for an hour is abandoned
# (a file being written is touched as it grows).
_LEGACY = re.compile(r"evostim-[a-z0-9_]{8}\.(zip|npz|parquet|nwb|csv)")
LEGACY_AGE_S = 3600.0


def temporary_prefix() -> str:
    """The name every temporary file of this process starts with: it says which process may still need it."""
    return f"evostim-export-{os.getpid()}-"


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's process: alive
        return True
    return True


def _stale(path: Path, now: float) -> bool:
    ours = _OURS.match(path.name)
    if ours is not None:
        pid = int(ours["pid"])
        return pid != os.getpid() and not _alive(pid)
    return _LEGACY.fullmatch(path.name) is not None and now - path.stat().st_mtime > LEGACY_AGE_S


def remove_stale(folder: Path | None = None) -> list[Path]:
    """Remove the temporary files of exports whose process is gone from ``folder`` (default: the temporary folder
    exports write to), and return them."""
    folder = Path(tempfile.gettempdir()) if folder is None else folder
    removed = []
    now = time.time()
    for path in folder.glob("evostim-*"):
        try:
            if path.is_file() and _stale(path, now):
                path.unlink()
                removed.append(path)
        except OSError:  # gone already, or not ours to remove
            continue
    if removed:
        _LOG.info("removed %d stale temporary export file(s) from %s", len(removed), folder)
    return removed

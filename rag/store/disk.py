"""What a failed write to the index directory means for the user: a full disk or a read-only one.

The OS says ENOSPC or EROFS, SQLite says "database or disk is full" or "attempt to write a
readonly database"; the user needs to hear which disk, that the last commit stands, and what
to do. Anything else is not ours to translate and propagates as it was.
"""

from __future__ import annotations

import errno
import os
import shutil
import sqlite3
from pathlib import Path

from rag.errors import IndexDiskFullError, IndexReadOnlyError, IndexStateError

_FULL = (errno.ENOSPC, errno.EDQUOT)
_READ_ONLY = (errno.EROFS, errno.EACCES, errno.EPERM)


def _free(directory: Path) -> str:
    try:
        free = shutil.disk_usage(directory).free
    except OSError:
        return "free space unknown"
    if free < 10 * 1024**2:
        return f"{free / 1024:,.0f} KB free"
    return f"{free / 1024**2:,.0f} MB free"


def disk_problem(exc: BaseException, directory: Path) -> IndexStateError | None:
    """The index error ``exc`` amounts to when writing under ``directory``, or None."""
    if not isinstance(exc, OSError | sqlite3.Error):
        return None
    directory = directory.resolve()
    filename = getattr(exc, "filename", None)
    where = Path(os.fsdecode(filename)).resolve() if isinstance(filename, str | bytes) else None
    if where is not None and not where.is_relative_to(directory):
        return None  # about another file (an input the user named), not the index
    code = getattr(exc, "errno", None)
    text = str(exc).lower()
    if code in _FULL or "disk is full" in text or "no space left" in text:
        return IndexDiskFullError(
            f"no space left on the disk that holds the index {directory} ({_free(directory)}): "
            "the documents of this run after its last commit were not added, and the index "
            "keeps its last committed state (it still answers). Free some space and run the "
            "same command again: what was added is skipped as unchanged."
        )
    if code in _READ_ONLY or "readonly database" in text or "read-only file system" in text:
        return IndexReadOnlyError(
            f"the index directory {directory} cannot be written ({exc.__class__.__name__}: "
            f"{exc}): search and answers still work from it; adding or removing documents "
            "needs a writable directory (or another --index)."
        )
    return None

"""Rebuild an index with the current embedder/chunker settings from its stored documents."""

from __future__ import annotations

import os
import shutil

from filelock import FileLock

from rag.errors import ConfigError
from rag.indexer import Progress
from rag.schemas import IngestReport
from rag.settings import Settings
from rag.store.index import LOCK_NAME, CorpusIndex


def rebuild_index(settings: Settings, progress: Progress | None = None) -> IngestReport:
    """Build beside the old index, then swap directories; the old one serves until the swap."""
    from rag.assistant import Assistant

    source = settings.index.dir
    if not CorpusIndex.exists(source):
        raise ConfigError(f"no index in {source} to rebuild; use `rag index add` to create one")
    staging = source.with_name(source.name + ".rebuild")
    retired = source.with_name(source.name + ".old")
    shutil.rmtree(staging, ignore_errors=True)
    with FileLock(str(source / LOCK_NAME), timeout=settings.index.lock_timeout_s):
        staged = settings.model_copy(deep=True)
        staged.index.dir = staging
        builder = Assistant(staged)
        report = builder.indexer.copy_from(source, progress)
        builder.index.close()
        shutil.rmtree(retired, ignore_errors=True)
        os.replace(source, retired)
        os.replace(staging, source)
    shutil.rmtree(retired, ignore_errors=True)
    return report

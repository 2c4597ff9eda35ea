"""Ingest orchestration: files -> documents -> chunks -> vectors -> one commit per batch.

A file that fails is reported with its reason and skipped; the batch it belonged to still
commits, and nothing already indexed is touched unless the same source is being replaced.
"""

from __future__ import annotations

import hashlib
import os
import time
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from rag.chunk import Chunker, embedding_text
from rag.embed import Embedder
from rag.errors import DocumentNotFoundError, IngestError, UnsupportedFormatError
from rag.ingest import LoaderProcess, content_hash, expand_paths, format_for, slug
from rag.ingest.ocr import page_progress
from rag.ingest.registry import parse_file, read_checked, read_sidecar, run_loader
from rag.retrieve.expand import extract_aliases
from rag.schemas import IngestReport, IngestResult
from rag.settings import IngestSettings
from rag.store.index import CorpusIndex, IndexWriter
from rag.types import Chunk, Document

Progress = Callable[[int, int, str], None]  # done, total, current item
OnCommit = Callable[[list[IngestResult]], None]  # documents that just became searchable


def shown_path(path: Path) -> str:
    """The path as text; bytes that are not UTF-8 (surrogate escapes) shown as ``\\xNN``."""
    text = str(path)
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return os.fsencode(path).decode("utf-8", "backslashreplace")
    return text


@dataclass
class _Pending:
    doc: Document
    chunks: list[Chunk]
    result: IngestResult
    replaces: str | None  # doc_id being replaced


@contextmanager
def _pages_reported(progress: Progress | None, done: int, total: int, name: str) -> Iterator[None]:
    """While one file parses, a scan's OCR pages show as "<file>: OCR page 3 of 12"."""
    if progress is None:
        yield
        return
    token = page_progress.set(
        lambda read, pages: progress(done, total, f"{name}: OCR page {read} of {pages}")
    )
    try:
        yield
    finally:
        page_progress.reset(token)


class Indexer:
    def __init__(
        self,
        index: CorpusIndex,
        embedder: Embedder,
        chunker: Chunker,
        settings: IngestSettings,
        on_commit: OnCommit | None = None,
    ) -> None:
        self.index = index
        self.embedder = embedder
        self.chunker = chunker
        self.settings = settings
        self.on_commit = on_commit

    # -- adding -------------------------------------------------------------------------------

    def add_paths(self, paths: Iterable[Path], progress: Progress | None = None) -> IngestReport:
        started = time.perf_counter()
        files = list(expand_paths([Path(p) for p in paths]))
        report = IngestReport()
        loader = LoaderProcess(self.settings.timeout_s, self.settings.max_memory_mb)
        try:
            with self.index.writer() as writer:
                pending: list[_Pending] = []
                claimed: dict[str, str] = {}  # doc ids and content hashes taken in this run
                for done, (path, explicit) in enumerate(files):
                    if progress:
                        progress(done, len(files), shown_path(path))
                    with _pages_reported(progress, done, len(files), shown_path(path)):
                        item = self._prepare_file(writer, path, explicit, loader, claimed)
                    if isinstance(item, IngestResult):
                        report.results.append(item)
                        continue
                    pending.append(item)
                    if len(pending) >= self.settings.commit_every:
                        self._commit(writer, pending, report)
                        pending = []
                self._commit(writer, pending, report)
                if progress:
                    progress(len(files), len(files), "")
        finally:
            loader.close()
        order = {shown_path(path): i for i, (path, _) in enumerate(files)}
        report.results.sort(key=lambda r: order.get(r.path, len(order)))
        report.seconds = time.perf_counter() - started
        return report

    def add_documents(
        self, docs: Iterable[Document], progress: Progress | None = None, total: int | None = None
    ) -> IngestReport:
        """Index documents built in memory (benchmark corpora, API records)."""
        started = time.perf_counter()
        report = IngestReport()
        with self.index.writer() as writer:
            pending: list[_Pending] = []
            for done, doc in enumerate(docs):
                if progress:
                    progress(done, total or 0, doc.doc_id)
                existing = writer.store.get_document(doc.doc_id)
                if existing and existing.content_hash == doc.content_hash:
                    report.results.append(
                        IngestResult(path=doc.source, status="unchanged", doc_id=doc.doc_id)
                    )
                    continue
                status = "replaced" if existing else "added"
                result = IngestResult(
                    path=doc.source, status=status, doc_id=doc.doc_id, title=doc.title
                )
                pending.append(
                    _Pending(doc, self.chunker.run(doc), result, doc.doc_id if existing else None)
                )
                if len(pending) >= self.settings.commit_every:
                    self._commit(writer, pending, report)
                    pending = []
            self._commit(writer, pending, report)
        report.seconds = time.perf_counter() - started
        return report

    def _prepare_file(
        self,
        writer: IndexWriter,
        path: Path,
        explicit: bool,
        loader: LoaderProcess,
        claimed: dict[str, str],
    ) -> _Pending | IngestResult:
        shown = shown_path(path)
        if shown != str(path):
            # The chunk store, JSON output and terminals all need text: refuse, don't crash.
            return IngestResult(
                path=shown,
                status="failed",
                reason="file name is not valid UTF-8; rename the file",
                error="UnreadablePathError",
            )
        if not explicit and path.is_symlink():
            # A folder may hold links to anything (/etc/passwd, ~/.ssh): only named files are
            # followed, as os.walk does not follow linked folders either.
            return IngestResult(
                path=shown,
                status="skipped",
                reason="symbolic link: not followed in a folder walk (name the file to add it)",
                error="UnreadablePathError",
            )
        try:
            fmt = format_for(path)
        except UnsupportedFormatError as exc:
            status = "failed" if explicit else "skipped"
            return IngestResult(
                path=shown, status=status, reason=str(exc), error=type(exc).__name__
            )
        source = str(path.resolve())
        try:
            data = read_checked(path, self.settings)
            meta, sidecar = read_sidecar(path)
            digest = content_hash(data, sidecar)
            existing = writer.store.find_by_source(source)
            if existing and existing.content_hash == digest:
                return IngestResult(
                    path=shown, status="unchanged", doc_id=existing.doc_id, title=existing.title
                )
            twin = writer.store.find_by_hash(digest)
            if twin and twin.source != source:
                return IngestResult(
                    path=shown,
                    status="duplicate",
                    doc_id=twin.doc_id,
                    title=twin.title,
                    reason=f"same content as {twin.doc_id} ({twin.source})",
                )
            if digest in claimed:
                return IngestResult(
                    path=shown,
                    status="duplicate",
                    doc_id=claimed[digest],
                    reason=f"same content as {claimed[digest]}, added in this run",
                )
            doc_id = (
                existing.doc_id if existing else self._new_doc_id(writer, path, source, claimed)
            )
            parse = loader.load if (fmt.sandboxed and self.settings.sandbox) else run_loader
            doc = parse_file(path, data, meta, doc_id=doc_id, digest=digest, parse=parse)
            doc.source = source
            chunks = self.chunker.run(doc)
        except IngestError as exc:
            return IngestResult(
                path=shown, status="failed", reason=str(exc), error=type(exc).__name__
            )
        claimed[doc_id] = doc_id
        claimed[digest] = doc_id
        status = "replaced" if existing else "added"
        result = IngestResult(path=shown, status=status, doc_id=doc_id, title=doc.title)
        return _Pending(doc, chunks, result, existing.doc_id if existing else None)

    @staticmethod
    def _new_doc_id(writer: IndexWriter, path: Path, source: str, claimed: dict[str, str]) -> str:
        base = slug(path.stem) if path.suffix else slug(path.name)
        if not writer.store.has_doc_id(base) and base not in claimed:
            return base
        return f"{base}-{hashlib.sha1(source.encode()).hexdigest()[:6]}"

    def _commit(self, writer: IndexWriter, pending: list[_Pending], report: IngestReport) -> None:
        if not pending:
            return
        texts = [embedding_text(p.doc.title, c.section, c.text) for p in pending for c in p.chunks]
        vectors = self.embedder.embed(texts) if texts else np.zeros((0, self.embedder.dim))
        offset = 0
        with writer.transaction():
            for item in pending:
                n = len(item.chunks)
                if item.replaces:
                    writer.remove(item.replaces)
                aliases = sorted(set(extract_aliases(item.doc.text)))
                writer.add(item.doc, item.chunks, vectors[offset : offset + n], aliases)
                item.result.chunks = n
                offset += n
        committed = [p.result for p in pending]
        report.results.extend(committed)
        if self.on_commit:
            self.on_commit(committed)

    # -- removing / rebuilding ----------------------------------------------------------------

    def remove(self, ref: str) -> IngestResult:
        """Remove by doc id or by the path it was added from."""
        with self.index.writer() as writer:
            row = writer.store.get_document(ref) or writer.store.find_by_source(
                str(Path(ref).resolve())
            )
            if row is None:
                raise DocumentNotFoundError(
                    f"no document {ref!r} in {self.index.dir}; `rag index list` shows the ids"
                )
            with writer.transaction():
                n = writer.remove(row.doc_id)
        return IngestResult(
            path=row.source, status="removed", doc_id=row.doc_id, title=row.title, chunks=n
        )

    def copy_from(self, other: Path, progress: Progress | None = None) -> IngestReport:
        """Re-chunk and re-embed every document stored in another index directory.

        Reads the old index's database directly, so it works even when the old index was built
        with an embedder or chunker the current settings refuse to open.
        """
        from rag.store.chunks import ChunkStore
        from rag.store.index import DB_NAME

        old = ChunkStore(Path(other) / DB_NAME, readonly=True)
        try:
            rows = old.documents()
            docs = (old.load_document(r.doc_id) for r in rows)
            return self.add_documents((d for d in docs if d is not None), progress, total=len(rows))
        finally:
            old.close()

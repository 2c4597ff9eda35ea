"""The persistent corpus index: chunk store + dense store + BM25, kept consistent on disk.

Commit point = one SQLite transaction (documents, chunks, vectors, generation). The FAISS and
BM25 files are named after the generation they were derived from; a reader that finds none for
the current generation (a writer crashed, or is still writing) rebuilds them in memory from
the same database snapshot. So a kill at any moment leaves the last committed state loadable,
and a reader never mixes two generations. ``rag.store.derived`` builds and loads them.

With ``index.store = "milvus"`` the dense side is a Milvus collection that persists itself:
it records the generation it reflects, every change to it happens under the write lock after
the SQLite commit, and whoever holds the lock rebuilds it from the chunk store when the
recorded generation is not the committed one (a writer died between commit and mirror).
"""

from __future__ import annotations

import contextlib
import os
import sqlite3
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from filelock import FileLock, Timeout

from rag.errors import IndexCorruptError, IndexLockedError, IndexMismatchError
from rag.ingest.normalize import year_from
from rag.paths import write_json_atomic
from rag.settings import IndexSettings
from rag.store.chunks import SCHEMA_VERSION, ChunkStore, DocumentRow
from rag.store.derived import Derived, DerivedBuilder, build_lexical, milvus_type
from rag.store.disk import disk_problem
from rag.store.faiss_store import choose_kind
from rag.store.lexical import LexicalIndex
from rag.types import Chunk, Document, Filters, StoredChunk

DB_NAME = "chunks.sqlite3"
LOCK_NAME = ".write.lock"
MANIFEST_NAME = "manifest.json"
# Per-document metadata a Milvus store keeps beside each vector: doc_id, format, kind, year.
DocMetaRow = tuple[str, str, str, int | None]


@dataclass(frozen=True)
class IndexSpec:
    """What the vectors in an index depend on; a mismatch means the index must be rebuilt."""

    embedder: str
    embedder_fingerprint: str
    dim: int
    chunker: dict[str, Any]

    def as_manifest(self) -> dict[str, Any]:
        return {
            "schema_version": SCHEMA_VERSION,
            "embedder": {
                "name": self.embedder,
                "fingerprint": self.embedder_fingerprint,
                "dim": self.dim,
            },
            "chunker": self.chunker,
        }


@dataclass
class IndexStats:
    documents: int
    chunks: int
    generation: int
    vector_index: str
    dim: int
    embedder: str
    embedder_fingerprint: str
    chunker: dict[str, Any]
    disk_bytes: int
    formats: dict[str, int] = field(default_factory=dict)


class CorpusIndex:
    """Open an index directory for reading; ``writer()`` for changes (one writer at a time)."""

    def __init__(self, directory: Path, spec: IndexSpec, settings: IndexSettings) -> None:
        self.dir = Path(directory)
        self.spec = spec
        self.settings = settings
        self.dir.mkdir(parents=True, exist_ok=True)
        self._read_lock = threading.RLock()
        # A read-only disk (or directory) still answers: the store opens read-only there.
        writable = os.access(self.dir, os.W_OK)
        self.store = ChunkStore(self.dir / DB_NAME, readonly=not writable)
        self._check_manifest()
        self._derived: Derived | None = None
        self.builder = DerivedBuilder(self.dir, spec.dim, settings, self.dir / LOCK_NAME)

    @staticmethod
    def exists(directory: Path) -> bool:
        return (Path(directory) / DB_NAME).is_file()

    def close(self) -> None:
        self.store.close()
        self.builder.close()

    @property
    def uses_milvus(self) -> bool:
        return self.settings.store == "milvus"

    # -- manifest -----------------------------------------------------------------------------

    def _check_manifest(self) -> None:
        wanted = self.spec.as_manifest()
        have = self.store.get_meta("manifest")
        if have is None:
            with self._lock(), self.store.write():
                if self.store.get_meta("manifest") is None:
                    self.store.set_meta("manifest", wanted | {"created_at": time.time()})
            write_json_atomic(self.dir / MANIFEST_NAME, self.store.get_meta("manifest"))
            return
        problems = []
        if have.get("schema_version") != SCHEMA_VERSION:
            problems.append(
                f"schema version {have.get('schema_version')} (this program reads {SCHEMA_VERSION})"
            )
        if have["embedder"] != wanted["embedder"]:
            e = have["embedder"]
            problems.append(
                f"embedder {e['name']} ({e['dim']}-d, fingerprint {e['fingerprint']}) but the "
                f"settings load {self.spec.embedder} ({self.spec.dim}-d, fingerprint "
                f"{self.spec.embedder_fingerprint})"
            )
        if have["chunker"] != wanted["chunker"]:
            problems.append(
                f"chunker {have['chunker']} but the settings ask for {wanted['chunker']}"
            )
        if problems:
            raise IndexMismatchError(
                f"the index in {self.dir} was built with " + "; ".join(problems) + ". "
                "Rebuild it from its stored documents with "
                f"`rag index rebuild --index {self.dir}`, or use the settings it was built "
                "with, or choose another --index directory."
            )

    def manifest(self) -> dict[str, Any]:
        return self.store.get_meta("manifest") or {}

    # -- locking ------------------------------------------------------------------------------

    @contextmanager
    def _lock(self) -> Iterator[None]:
        lock = FileLock(str(self.dir / LOCK_NAME), timeout=self.settings.lock_timeout_s)
        try:
            with lock:
                yield
        except Timeout as exc:
            raise IndexLockedError(
                f"another process is writing to {self.dir} (lock {LOCK_NAME}); waited "
                f"{self.settings.lock_timeout_s:.0f} s (index.lock_timeout_s); "
                "try again when it ends."
            ) from exc

    @contextmanager
    def writer(self) -> Iterator[IndexWriter]:
        """Exclusive write session; derived files are synced when it ends (also on error).

        A full or read-only disk surfaces as IndexDiskFullError / IndexReadOnlyError naming
        the directory; the batches committed before it stand, the one in flight rolls back.
        """
        try:
            with self._lock():
                store = ChunkStore(self.dir / DB_NAME)
                writer = IndexWriter(self, store)
                try:
                    yield writer
                except BaseException:
                    # Batches committed before the error still get their derived files; a
                    # failure to write those (the same full disk) must not hide the error.
                    with contextlib.suppress(Exception):
                        writer.sync_derived()
                    raise
                else:
                    writer.sync_derived()
                finally:
                    store.close()
        except (OSError, sqlite3.Error) as exc:
            problem = disk_problem(exc, self.dir)
            if problem is None:
                raise
            raise problem from exc

    def refresh(self) -> bool:
        """Pick up the latest committed generation; True if anything changed."""
        with self._read_lock, self.store.snapshot():
            generation = self.store.generation()
            if self._derived is not None and self._derived.generation == generation:
                return False
            self._derived = self.builder.load(self.store, generation)
            return True

    @property
    def derived(self) -> Derived:
        if self._derived is None:
            self.refresh()
        assert self._derived is not None
        return self._derived

    def adopt(self, derived: Derived) -> None:
        """Take over structures a writer in this process just built (saves a reload)."""
        with self._read_lock:
            if self._derived is None or derived.generation >= self._derived.generation:
                self._derived = derived

    # -- queries ------------------------------------------------------------------------------

    def dense_search(
        self, query: np.ndarray, k: int, allowed: np.ndarray | None = None
    ) -> tuple[np.ndarray, np.ndarray]:
        scores, ids = self.derived.dense.search(query[None, :], k, allowed)
        keep = ids[0] >= 0
        return scores[0][keep], ids[0][keep]

    def lexical_search(
        self, query: str, k: int, allowed: np.ndarray | None = None, field: str = "chunk"
    ) -> tuple[np.ndarray, np.ndarray]:
        """BM25 over the chunks' own text, or (``field="context"``) the text around them."""
        return self.derived.lexical.search(query, k, allowed, field)

    def chunks(self, ids: list[int]) -> dict[int, StoredChunk]:
        with self._read_lock:
            return self.store.get_chunks(ids)

    def vectors_for(self, ids: list[int]) -> dict[int, np.ndarray]:
        with self._read_lock:
            return self.store.vectors_for(ids)

    def first_chunk(self, doc_id: str) -> StoredChunk | None:
        """A document's opening chunk: where its title, authors and journal line live."""
        with self._read_lock:
            first = self.store.first_chunk_id(doc_id)
            return None if first is None else self.store.get_chunks([first]).get(first)

    def neighbours(self, chunk: StoredChunk) -> list[StoredChunk]:
        with self._read_lock:
            return self.store.neighbours(chunk.doc_id, chunk.ordinal)

    def filter_ids(self, filters: Filters) -> np.ndarray | None:
        if filters.is_empty():
            return None
        with self._read_lock:
            return self.store.filter_ids(filters)

    def documents(self) -> list[DocumentRow]:
        with self._read_lock:
            return self.store.documents()

    def document(self, doc_id: str) -> DocumentRow | None:
        with self._read_lock:
            return self.store.get_document(doc_id)

    def load_document(self, doc_id: str) -> Document | None:
        with self._read_lock:
            return self.store.load_document(doc_id)

    def generation(self) -> int:
        with self._read_lock:
            return self.store.generation()

    def stats(self) -> IndexStats:
        derived = self.derived
        with self._read_lock:
            docs = self.store.documents()
            formats: dict[str, int] = {}
            for d in docs:
                formats[d.format] = formats.get(d.format, 0) + 1
            disk = _disk_bytes(self.dir)
            return IndexStats(
                documents=len(docs),
                chunks=self.store.chunk_count(),
                generation=derived.generation,
                vector_index=derived.dense.kind,
                dim=self.spec.dim,
                embedder=self.spec.embedder,
                embedder_fingerprint=self.spec.embedder_fingerprint,
                chunker=self.spec.chunker,
                disk_bytes=disk,
                formats=formats,
            )

    def check(self) -> list[str]:
        """Consistency problems between chunk store, dense ids and BM25 ids (empty = healthy)."""
        problems: list[str] = []
        with self._read_lock, self.store.snapshot():
            generation = self.store.generation()
            derived = self.builder.load(self.store, generation)
            db_ids, _ = self.store.all_vectors()
            db = set(db_ids.tolist())
            docs = {d.doc_id: d for d in self.store.documents()}
            counted = sum(d.n_chunks for d in docs.values())
            for doc in docs.values():
                full = self.store.load_document(doc.doc_id)
                ids = self.store.chunk_ids_for_doc(doc.doc_id)
                for chunk in self.store.get_chunks(ids).values():
                    if full is None or full.text[chunk.start : chunk.end] != chunk.text:
                        problems.append(
                            f"chunk {chunk.chunk_id} is not an exact span of its document"
                        )
        dense = set(derived.dense.ids().tolist())
        lexical = set(derived.lexical._ids.tolist())
        if dense != db:
            backend = "Milvus" if self.uses_milvus else "FAISS"
            problems.append(
                f"{backend} holds {len(dense)} ids, chunk store {len(db)} "
                f"({len(dense ^ db)} differ)"
            )
        if lexical != db:
            problems.append(
                f"BM25 holds {len(lexical)} ids, chunk store {len(db)} ({len(lexical ^ db)} differ)"
            )
        if counted != len(db):
            problems.append(f"documents list {counted} chunks, chunk store holds {len(db)}")
        return problems


class IndexWriter:
    """Changes to the index; each ``transaction()`` is one atomic commit."""

    def __init__(self, index: CorpusIndex, store: ChunkStore) -> None:
        self.index = index
        self.store = store
        with store.snapshot():
            generation = store.generation()
            self._derived = index.builder.load(store, generation, locked=True)
        self._dirty = False

    @contextmanager
    def transaction(self) -> Iterator[None]:
        added: list[tuple[np.ndarray, np.ndarray, DocMetaRow]] = []
        removed: list[int] = []
        self._pending_add = added
        self._pending_remove = removed
        with self.store.write():
            yield
        # Committed: mirror the change into the dense store (in memory, or Milvus).
        dense = self._derived.dense
        if removed:
            dense.remove(np.asarray(removed, dtype=np.int64))
        if self.index.uses_milvus:
            from rag.store.milvus_store import VectorMeta

            for ids, vectors, meta in added:
                dense.add(ids, vectors, VectorMeta(*meta))  # type: ignore[call-arg]
        else:
            for ids, vectors, _meta in added:
                dense.add(ids, vectors)
        self._derived.generation = self.store.generation()
        if self.index.uses_milvus:
            # Only now does the collection reflect this generation; a crash before this line
            # leaves the old number, so the next opener rebuilds from the chunk store.
            dense.set_generation(self._derived.generation)  # type: ignore[attr-defined]
        self._dirty = self._dirty or bool(added or removed)

    def add(
        self,
        doc: Document,
        chunks: list[Chunk],
        vectors: np.ndarray,
        aliases: list[tuple[str, str, str]] | None = None,
    ) -> None:
        ids = self.store.insert_document(doc, chunks, vectors, aliases or [])
        meta = (doc.doc_id, doc.format, doc.meta.kind or "", year_from(doc.meta))
        self._pending_add.append((np.asarray(ids, dtype=np.int64), vectors, meta))

    def remove(self, doc_id: str) -> int:
        ids = self.store.delete_document(doc_id)
        self._pending_remove.extend(ids)
        return len(ids)

    def sync_derived(self) -> None:
        """Persist FAISS + BM25 for the committed generation and drop older ones."""
        milvus = self.index.uses_milvus
        with self.store.snapshot():
            generation = self.store.generation()
            n = self.store.chunk_count()
            needs_lexical = self._dirty or not LexicalIndex.current(
                self.index.builder.paths(generation)[1]
            )
            wanted_kind = choose_kind(self.index.settings, n)
            if milvus:
                wanted_kind = f"milvus-{milvus_type(wanted_kind, self.index.settings)}"
            if wanted_kind != self._derived.dense.kind or self._derived.generation != generation:
                self._derived = self.index.builder.build(self.store, generation, locked=True)
            elif needs_lexical:
                self._derived.lexical = build_lexical(self.store)
                self._derived.aliases = self.store.aliases()
            if milvus:  # the collection persists itself; make sure it says which generation
                self._derived.dense = self.index.builder.milvus_dense(
                    self.store, generation, locked=True
                )
        dense_path, lexical_path = self.index.builder.paths(generation)
        if not milvus and (not dense_path.exists() or self._dirty):
            self._derived.dense.save(dense_path)
        if not LexicalIndex.current(lexical_path) or self._dirty:
            self._derived.lexical.save(lexical_path)
        self._dirty = False
        self.index.builder.remove_other_generations(generation)
        self.index.adopt(self._derived)
        write_json_atomic(
            self.index.dir / MANIFEST_NAME,
            (self.store.get_meta("manifest") or {})
            | {
                "generation": generation,
                "documents": len(self.store.documents()),
                "chunks": n,
                "vector_index": self._derived.dense.kind,
            },
        )


def ensure_consistent(index: CorpusIndex) -> None:
    problems = index.check()
    if problems:
        raise IndexCorruptError("; ".join(problems))


def _disk_bytes(directory: Path) -> int:
    """Bytes under ``directory``; a writer may delete an old generation's files meanwhile.

    os.walk skips a folder that vanishes under it; a file that vanishes counts as 0.
    """
    total = 0
    for root, _, files in os.walk(directory):
        for name in files:
            try:
                total += os.stat(os.path.join(root, name)).st_size
            except FileNotFoundError:
                continue
    return total

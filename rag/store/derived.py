"""What an index derives from its chunk store: the dense store and BM25 of one generation.

SQLite is the commit point; these are rebuilt from one snapshot of it whenever they are missing
or stale, so they need no commit of their own. FAISS and BM25 are saved as files named after
the generation they reflect (``dense.<gen>.faiss``, ``lexical.<gen>``); a Milvus collection
persists itself and records its generation. ``rag.store.index`` decides when each is built,
loaded or saved; this module knows how.
"""

from __future__ import annotations

import re
import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from filelock import FileLock, Timeout

from rag.settings import IndexSettings
from rag.store.base import VectorStore
from rag.store.chunks import ChunkStore
from rag.store.faiss_store import FaissStore, choose_kind
from rag.store.lexical import LexicalIndex

_DERIVED = re.compile(r"^(dense|lexical)\.(\d+)(\.faiss)?$")


def build_lexical(store: ChunkStore) -> LexicalIndex:
    """BM25 over every chunk's text and over the text around it (``LexicalIndex``'s fields)."""
    return LexicalIndex.build(store.lexical_rows(), store.context_rows())


def make_store(
    settings: IndexSettings, dim: int, directory: Path, n_vectors: int = 0
) -> VectorStore:
    """An empty dense store of the configured backend (``index.store``) sized for n vectors."""
    kind = choose_kind(settings, n_vectors)
    if settings.store == "milvus":
        from rag.store.milvus_store import store_for_index  # pymilvus only when asked for

        return store_for_index(settings, dim, directory, kind)
    return FaissStore(dim, kind, settings)


@dataclass
class Derived:
    """The dense store, BM25 and aliases of one committed generation."""

    generation: int
    dense: VectorStore
    lexical: LexicalIndex
    aliases: list[tuple[str, str, str]] = field(default_factory=list)


class DerivedBuilder:
    """Builds, loads and prunes the derived structures of one index directory.

    Holds the index's Milvus store (opened on first use), shared by its readers and writers so
    one process keeps one connection to the collection.
    """

    def __init__(self, directory: Path, dim: int, settings: IndexSettings, lock_path: Path) -> None:
        self.dir = directory
        self.dim = dim
        self.settings = settings
        self.lock_path = lock_path
        self._milvus: Any = None  # MilvusStore

    @property
    def uses_milvus(self) -> bool:
        return self.settings.store == "milvus"

    def close(self) -> None:
        if self._milvus is not None:
            self._milvus.close()
            self._milvus = None

    def paths(self, generation: int) -> tuple[Path, Path]:
        return self.dir / f"dense.{generation}.faiss", self.dir / f"lexical.{generation}"

    def build(self, store: ChunkStore, generation: int, *, locked: bool = False) -> Derived:
        if self.uses_milvus:
            dense = self.milvus_dense(store, generation, locked=locked)
        else:
            ids, vectors = store.all_vectors()
            dense = make_store(self.settings, self.dim, self.dir, len(ids))
            dense.add(ids, vectors)
        lexical = build_lexical(store)
        return Derived(generation, dense, lexical, store.aliases())

    def load(self, store: ChunkStore, generation: int, *, locked: bool = False) -> Derived:
        dense_path, lexical_path = self.paths(generation)
        if self.uses_milvus:
            dense = self.milvus_dense(store, generation, locked=locked)
            try:
                lexical = LexicalIndex.load(lexical_path)
            except (FileNotFoundError, RuntimeError, OSError, ValueError):
                lexical = build_lexical(store)
            return Derived(generation, dense, lexical, store.aliases())
        try:
            dense = FaissStore.load(dense_path, self.settings)
        except (FileNotFoundError, RuntimeError, OSError, ValueError):
            return self.build(store, generation)
        try:
            lexical = LexicalIndex.load(lexical_path)
        except (FileNotFoundError, RuntimeError, OSError, ValueError):
            lexical = build_lexical(store)  # missing, or saved in an older format
        return Derived(generation, dense, lexical, store.aliases())

    def milvus_dense(self, store: ChunkStore, generation: int, *, locked: bool) -> Any:
        """The Milvus store, rebuilt from ``store``'s snapshot if it reflects another generation.

        Only the write-lock holder changes the collection. A reader that finds it stale takes
        the lock if it is free; if a writer holds it, the reader serves the live collection
        (chunk ids it returns that the snapshot lacks are dropped by the retriever) and the
        writer brings it up to date when its session ends.
        """
        n = store.chunk_count()
        kind = choose_kind(self.settings, n)
        if self._milvus is None:
            self._milvus = make_store(self.settings, self.dim, self.dir, n)
        dense = self._milvus
        wanted = f"milvus-{milvus_type(kind, self.settings)}"
        if dense.generation == generation and (not locked or dense.kind == wanted):
            return dense
        if locked:
            self._rebuild_milvus(dense, store, generation, kind)
            return dense
        try:
            with FileLock(str(self.lock_path), timeout=0):
                if dense.generation != generation:
                    self._rebuild_milvus(dense, store, generation, kind)
        except Timeout:
            pass
        return dense

    def _rebuild_milvus(self, dense: Any, store: ChunkStore, generation: int, kind: str) -> None:
        from rag.store.milvus_store import VectorMeta, milvus_index

        ids, vectors = store.all_vectors()
        meta = {
            row[0]: VectorMeta(row[1], row[2], row[3] or "", row[4])
            for row in store.conn.execute(
                "SELECT c.id, d.doc_id, d.format, d.kind, d.year FROM chunks c "
                "JOIN documents d ON c.doc_id = d.doc_id"
            )
        }
        dense.reset(*milvus_index(kind, self.settings))
        dense.add(ids, vectors, [meta[i] for i in ids.tolist()])
        dense.set_generation(generation)

    def remove_other_generations(self, keep: int) -> None:
        """Delete the FAISS and BM25 files of every generation but ``keep``."""
        for path in self.dir.iterdir():
            match = _DERIVED.match(path.name)
            if match and int(match.group(2)) != keep:
                if path.is_dir():
                    shutil.rmtree(path, ignore_errors=True)
                else:
                    path.unlink(missing_ok=True)


def milvus_type(kind: str, settings: IndexSettings) -> str:
    from rag.store.milvus_store import milvus_index

    return milvus_index(kind, settings)[0].lower()

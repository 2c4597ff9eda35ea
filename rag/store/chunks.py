"""SQLite chunk store: the index's source of truth.

Documents, chunks (with their vectors) and the index generation commit in one transaction, so
the database alone always describes a consistent index; the FAISS and BM25 files are caches
derived from it and stamped with the generation they were built from.
"""

from __future__ import annotations

import json
import sqlite3
import time
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from rag.ingest.normalize import year_from
from rag.types import Chunk, DocMeta, Document, Filters, Span, StoredChunk

SCHEMA_VERSION = 1

_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS documents (
    doc_id TEXT PRIMARY KEY,
    source TEXT NOT NULL,
    format TEXT NOT NULL,
    title TEXT NOT NULL,
    kind TEXT NOT NULL DEFAULT '',
    year INTEGER,
    content_hash TEXT NOT NULL,
    meta TEXT NOT NULL,
    spans TEXT NOT NULL,
    text TEXT NOT NULL,
    n_chunks INTEGER NOT NULL,
    added_at REAL NOT NULL
);
CREATE INDEX IF NOT EXISTS documents_source ON documents(source);
CREATE INDEX IF NOT EXISTS documents_hash ON documents(content_hash);
CREATE TABLE IF NOT EXISTS chunks (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    chunk_id TEXT NOT NULL UNIQUE,
    doc_id TEXT NOT NULL REFERENCES documents(doc_id) ON DELETE CASCADE,
    ordinal INTEGER NOT NULL,
    start INTEGER NOT NULL,
    end INTEGER NOT NULL,
    section TEXT NOT NULL,
    page INTEGER,
    n_tokens INTEGER NOT NULL,
    text TEXT NOT NULL,
    vector BLOB NOT NULL
);
CREATE INDEX IF NOT EXISTS chunks_doc ON chunks(doc_id);
CREATE TABLE IF NOT EXISTS aliases (
    doc_id TEXT NOT NULL REFERENCES documents(doc_id) ON DELETE CASCADE,
    short TEXT NOT NULL,
    long TEXT NOT NULL,
    kind TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS aliases_doc ON aliases(doc_id);
"""


@dataclass(slots=True)
class DocumentRow:
    doc_id: str
    source: str
    format: str
    title: str
    kind: str
    year: int | None
    content_hash: str
    n_chunks: int
    added_at: float
    meta: dict[str, Any]


class ChunkStore:
    """Thin typed layer over one SQLite file in WAL mode (readers never block the writer)."""

    def __init__(self, path: Path, *, readonly: bool = False) -> None:
        self.path = path
        uri = f"file:{path}"
        if readonly:
            # Nobody can change a file on a read-only disk: without a write-ahead log to
            # replay, SQLite may skip the locks (its -shm file cannot be created there).
            wal = path.with_name(path.name + "-wal")
            uri += "?mode=ro" if wal.exists() else "?mode=ro&immutable=1"
        self.conn = sqlite3.connect(uri, uri=True, isolation_level=None, check_same_thread=False)
        self.conn.row_factory = sqlite3.Row
        self.conn.execute("PRAGMA foreign_keys = ON")
        self.conn.execute("PRAGMA busy_timeout = 30000")
        if not readonly:
            self.conn.execute("PRAGMA journal_mode = WAL")
            self.conn.execute("PRAGMA synchronous = FULL")
            self.conn.executescript(_SCHEMA)

    def close(self) -> None:
        self.conn.close()

    # -- transactions -------------------------------------------------------------------------

    @contextmanager
    def write(self) -> Iterator[None]:
        """One atomic write transaction that also bumps the generation."""
        self.conn.execute("BEGIN IMMEDIATE")
        try:
            yield
            self.conn.execute(
                "INSERT INTO meta(key, value) VALUES('generation', '1') ON CONFLICT(key) "
                "DO UPDATE SET value = CAST(value AS INTEGER) + 1"
            )
            self.conn.execute("COMMIT")
        except BaseException:
            # SQLite rolls back by itself on some errors (a full disk): then there is nothing
            # to roll back, and trying would hide the error that matters.
            if self.conn.in_transaction:
                self.conn.execute("ROLLBACK")
            raise

    @contextmanager
    def snapshot(self) -> Iterator[None]:
        """A read transaction: every query inside sees the same committed generation."""
        self.conn.execute("BEGIN")
        try:
            yield
        finally:
            self.conn.execute("COMMIT")

    # -- meta ---------------------------------------------------------------------------------

    def generation(self) -> int:
        row = self.conn.execute("SELECT value FROM meta WHERE key='generation'").fetchone()
        return int(row[0]) if row else 0

    def get_meta(self, key: str) -> Any:
        row = self.conn.execute("SELECT value FROM meta WHERE key=?", (key,)).fetchone()
        return json.loads(row[0]) if row else None

    def set_meta(self, key: str, value: Any) -> None:
        self.conn.execute(
            "INSERT INTO meta(key, value) VALUES(?, ?) "
            "ON CONFLICT(key) DO UPDATE SET value=excluded.value",
            (key, json.dumps(value)),
        )

    # -- documents ----------------------------------------------------------------------------

    def find_by_source(self, source: str) -> DocumentRow | None:
        row = self.conn.execute(
            "SELECT * FROM documents WHERE source=? LIMIT 1", (source,)
        ).fetchone()
        return _doc_row(row) if row else None

    def find_by_hash(self, digest: str) -> DocumentRow | None:
        row = self.conn.execute(
            "SELECT * FROM documents WHERE content_hash=? LIMIT 1", (digest,)
        ).fetchone()
        return _doc_row(row) if row else None

    def get_document(self, doc_id: str) -> DocumentRow | None:
        row = self.conn.execute("SELECT * FROM documents WHERE doc_id=?", (doc_id,)).fetchone()
        return _doc_row(row) if row else None

    def has_doc_id(self, doc_id: str) -> bool:
        return (
            self.conn.execute("SELECT 1 FROM documents WHERE doc_id=?", (doc_id,)).fetchone()
            is not None
        )

    def load_document(self, doc_id: str) -> Document | None:
        row = self.conn.execute("SELECT * FROM documents WHERE doc_id=?", (doc_id,)).fetchone()
        if row is None:
            return None
        spans = [Span(s[0], s[1], s[2], tuple(s[3]), s[4]) for s in json.loads(row["spans"])]
        return Document(
            doc_id=row["doc_id"],
            text=row["text"],
            spans=spans,
            meta=DocMeta.from_dict(json.loads(row["meta"])),
            format=row["format"],
            source=row["source"],
            content_hash=row["content_hash"],
        )

    def documents(self) -> list[DocumentRow]:
        rows = self.conn.execute("SELECT * FROM documents ORDER BY added_at, doc_id").fetchall()
        return [_doc_row(r) for r in rows]

    def insert_document(
        self,
        doc: Document,
        chunks: Sequence[Chunk],
        vectors: np.ndarray,
        aliases: Sequence[tuple[str, str, str]] = (),
    ) -> list[int]:
        """Insert a document, its chunks and aliases; returns the chunk row ids (vector ids)."""
        meta = doc.meta.to_dict()
        self.conn.execute(
            "INSERT INTO documents(doc_id, source, format, title, kind, year, content_hash, meta, "
            "spans, text, n_chunks, added_at) VALUES (?,?,?,?,?,?,?,?,?,?,?,?)",
            (
                doc.doc_id,
                doc.source,
                doc.format,
                doc.title,
                doc.meta.kind,
                year_from(doc.meta),
                doc.content_hash,
                json.dumps(meta),
                json.dumps([[s.start, s.end, s.kind, list(s.section), s.page] for s in doc.spans]),
                doc.text,
                len(chunks),
                time.time(),
            ),
        )
        ids: list[int] = []
        vectors = np.ascontiguousarray(vectors, dtype=np.float32)
        for chunk, vector in zip(chunks, vectors, strict=True):
            cur = self.conn.execute(
                "INSERT INTO chunks(chunk_id, doc_id, ordinal, start, end, section, page, "
                "n_tokens, text, vector) VALUES (?,?,?,?,?,?,?,?,?,?)",
                (
                    chunk.chunk_id,
                    chunk.doc_id,
                    chunk.ordinal,
                    chunk.start,
                    chunk.end,
                    json.dumps(list(chunk.section)),
                    chunk.page,
                    chunk.n_tokens,
                    chunk.text,
                    vector.tobytes(),
                ),
            )
            ids.append(int(cur.lastrowid or 0))
        self.conn.executemany(
            "INSERT INTO aliases(doc_id, short, long, kind) VALUES (?,?,?,?)",
            [(doc.doc_id, *alias) for alias in aliases],
        )
        return ids

    def aliases(self) -> list[tuple[str, str, str]]:
        return [tuple(r) for r in self.conn.execute("SELECT short, long, kind FROM aliases")]

    def delete_document(self, doc_id: str) -> list[int]:
        """Delete a document and its chunks; returns the removed vector ids."""
        ids = [r[0] for r in self.conn.execute("SELECT id FROM chunks WHERE doc_id=?", (doc_id,))]
        self.conn.execute("DELETE FROM chunks WHERE doc_id=?", (doc_id,))
        self.conn.execute("DELETE FROM aliases WHERE doc_id=?", (doc_id,))
        self.conn.execute("DELETE FROM documents WHERE doc_id=?", (doc_id,))
        return ids

    # -- chunks -------------------------------------------------------------------------------

    def chunk_count(self) -> int:
        return int(self.conn.execute("SELECT COUNT(*) FROM chunks").fetchone()[0])

    def all_vectors(self) -> tuple[np.ndarray, np.ndarray]:
        ids: list[int] = []
        blobs: list[bytes] = []
        for row in self.conn.execute("SELECT id, vector FROM chunks ORDER BY id"):
            ids.append(row[0])
            blobs.append(row[1])
        if not ids:
            return np.zeros(0, np.int64), np.zeros((0, 0), np.float32)
        matrix = np.frombuffer(b"".join(blobs), dtype=np.float32).reshape(len(ids), -1)
        return np.asarray(ids, dtype=np.int64), matrix.copy()

    def vectors_for(self, ids: Sequence[int]) -> dict[int, np.ndarray]:
        """Stored vectors by chunk id; ids deleted meanwhile are simply absent."""
        marks = ",".join("?" * len(ids))
        rows = self.conn.execute(f"SELECT id, vector FROM chunks WHERE id IN ({marks})", list(ids))
        return {int(i): np.frombuffer(blob, dtype=np.float32) for i, blob in rows}

    def lexical_rows(self) -> Iterable[tuple[int, str]]:
        """(id, text for BM25) for every chunk: title and section path help keyword search."""
        sql = (
            "SELECT c.id, d.title, c.section, c.text FROM chunks c JOIN documents d "
            "ON c.doc_id = d.doc_id ORDER BY c.id"
        )
        for row in self.conn.execute(sql):
            section = " ".join(json.loads(row[2]))
            yield row[0], f"{row[1]} {section} {row[3]}"

    def context_rows(self, reach: int = 1) -> Iterable[tuple[int, str]]:
        """(id, text for BM25) where the text runs from ``reach`` chunks before to ``reach``
        after: a result split from the sentence that names what it is about still matches
        the words of a question that asks about it (read from the document's text, so
        overlapping chunks are not counted twice)."""
        documents = self.conn.execute("SELECT doc_id, title, text FROM documents ORDER BY doc_id")
        for doc_id, title, text in documents:
            rows = self.conn.execute(
                "SELECT id, start, end, section FROM chunks WHERE doc_id=? ORDER BY ordinal",
                (doc_id,),
            ).fetchall()
            for i, (row_id, _, _, section) in enumerate(rows):
                first = rows[max(0, i - reach)][1]
                last = rows[min(len(rows) - 1, i + reach)][2]
                section_path = " ".join(json.loads(section))
                yield row_id, f"{title} {section_path} {text[first:last]}"

    def get_chunks(self, ids: Sequence[int]) -> dict[int, StoredChunk]:
        out: dict[int, StoredChunk] = {}
        ids = list(ids)
        for start in range(0, len(ids), 500):
            batch = ids[start : start + 500]
            marks = ",".join("?" * len(batch))
            sql = (
                "SELECT c.id, c.chunk_id, c.doc_id, c.ordinal, c.start, c.end, c.text, c.section, "
                "c.page, d.title, d.format, d.year, d.source FROM chunks c JOIN documents d "
                f"ON c.doc_id = d.doc_id WHERE c.id IN ({marks})"
            )
            for r in self.conn.execute(sql, batch):
                out[r[0]] = StoredChunk(
                    row_id=r[0],
                    chunk_id=r[1],
                    doc_id=r[2],
                    ordinal=r[3],
                    start=r[4],
                    end=r[5],
                    text=r[6],
                    section=tuple(json.loads(r[7])),
                    page=r[8],
                    title=r[9],
                    format=r[10],
                    year=r[11],
                    source=r[12],
                )
        return out

    def chunk_ids_for_doc(self, doc_id: str) -> list[int]:
        return [
            r[0]
            for r in self.conn.execute(
                "SELECT id FROM chunks WHERE doc_id=? ORDER BY ordinal", (doc_id,)
            )
        ]

    def first_chunk_id(self, doc_id: str) -> int | None:
        row = self.conn.execute(
            "SELECT id FROM chunks WHERE doc_id=? ORDER BY ordinal LIMIT 1", (doc_id,)
        ).fetchone()
        return None if row is None else int(row[0])

    def neighbours(self, doc_id: str, ordinal: int) -> list[StoredChunk]:
        """The chunks before and after one chunk, for showing a quote in its context."""
        ids = [
            r[0]
            for r in self.conn.execute(
                "SELECT id FROM chunks WHERE doc_id=? AND ordinal BETWEEN ? AND ? ORDER BY ordinal",
                (doc_id, ordinal - 1, ordinal + 1),
            )
        ]
        found = self.get_chunks(ids)
        return [found[i] for i in ids if i in found]

    def filter_ids(self, filters: Filters) -> np.ndarray:
        """Vector ids of chunks whose document passes ``filters``."""
        clauses: list[str] = []
        params: list[Any] = []
        if filters.doc_ids is not None:
            clauses.append(f"d.doc_id IN ({','.join('?' * len(filters.doc_ids))})")
            params.extend(filters.doc_ids)
        if filters.formats is not None:
            clauses.append(f"d.format IN ({','.join('?' * len(filters.formats))})")
            params.extend(filters.formats)
        if filters.kinds is not None:
            clauses.append(f"d.kind IN ({','.join('?' * len(filters.kinds))})")
            params.extend(filters.kinds)
        if filters.year_min is not None:
            clauses.append("d.year >= ?")
            params.append(filters.year_min)
        if filters.year_max is not None:
            clauses.append("d.year <= ?")
            params.append(filters.year_max)
        where = " AND ".join(clauses) or "1"
        rows = self.conn.execute(
            f"SELECT c.id FROM chunks c JOIN documents d ON c.doc_id = d.doc_id WHERE {where}",
            params,
        ).fetchall()
        return np.asarray([r[0] for r in rows], dtype=np.int64)


def _doc_row(row: sqlite3.Row) -> DocumentRow:
    return DocumentRow(
        doc_id=row["doc_id"],
        source=row["source"],
        format=row["format"],
        title=row["title"],
        kind=row["kind"],
        year=row["year"],
        content_hash=row["content_hash"],
        n_chunks=row["n_chunks"],
        added_at=row["added_at"],
        meta=json.loads(row["meta"]),
    )

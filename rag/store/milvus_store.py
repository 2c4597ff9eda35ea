"""Milvus vector store: milvus-lite embedded (a local ``.db`` path) or a Milvus cluster by URI.

Unlike FAISS, Milvus persists itself, so no ``dense.<gen>.faiss`` file is written. The
collection records which chunk-store generation it reflects in a collection property
(``rag.generation``); the corpus index rebuilds it from the chunk store when that does not
match, so SQLite stays the single commit point. Each vector carries its document's metadata
(doc_id, format, kind, year) so deletion by document and metadata filters run inside Milvus.
"""

from __future__ import annotations

import hashlib
import json
import re
import threading
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from pymilvus import DataType, MilvusClient
from pymilvus.exceptions import ConnectionConfigException

from rag.settings import IndexSettings

GENERATION_KEY = "rag.generation"
LITE_DB_NAME = "milvus.db"
LITE_COLLECTION = "chunks"
_MAX_VARCHAR = 512
_INSERT_BATCH = 2_000  # rows per insert RPC: 2,000 x 384-d float32 is ~3 MB, far below gRPC caps
_IN_BATCH = 8_192  # ids per `id in [...]` expression
_MAX_TOPK = 16_384  # Milvus' limit on one search's top-k

# milvus-lite runs one in-process server per .db path; count the stores using each one so the
# last to close can stop it (and a test, or `rag index rebuild`, can then move the directory).
_LITE_USERS: dict[str, int] = {}
_LITE_LOCK = threading.Lock()


@dataclass(frozen=True, slots=True)
class VectorMeta:
    """Document metadata stored beside each vector, for native filters and deletion."""

    doc_id: str = ""
    format: str = ""
    kind: str = ""
    year: int | None = None


def is_lite_uri(uri: str) -> bool:
    return not re.match(r"^(https?|tcp|unix):", uri)


def collection_name_for(directory: Path) -> str:
    """A valid, stable collection name for one index directory on a shared cluster."""
    resolved = Path(directory).resolve()
    stem = re.sub(r"[^0-9A-Za-z_]", "_", resolved.name)[:40] or "index"
    digest = hashlib.sha1(str(resolved).encode()).hexdigest()[:10]
    return f"rag_{stem}_{digest}"


def _quote(value: str) -> str:
    return json.dumps(value)  # a double-quoted literal with escapes, as Milvus expressions take


def filter_expression(
    *,
    doc_ids: Iterable[str] | None = None,
    formats: Iterable[str] | None = None,
    kinds: Iterable[str] | None = None,
    year_min: int | None = None,
    year_max: int | None = None,
) -> str:
    """A Milvus boolean expression for the metadata filters (empty = no filter)."""
    clauses: list[str] = []
    for field, values in (("doc_id", doc_ids), ("format", formats), ("kind", kinds)):
        if values is not None:
            clauses.append(f"{field} in [{', '.join(_quote(str(v)) for v in values)}]")
    if year_min is not None:
        clauses.append(f"year >= {int(year_min)}")
    if year_max is not None:
        clauses.append(f"year <= {int(year_max)}")
    return " and ".join(f"({c})" for c in clauses)


def _and(*exprs: str) -> str:
    parts = [e for e in exprs if e]
    return " and ".join(f"({p})" for p in parts) if len(parts) > 1 else "".join(parts)


class MilvusStore:
    """One Milvus collection keyed by chunk-store row ids (never Milvus auto ids), metric IP."""

    def __init__(
        self,
        dim: int,
        uri: str,
        collection: str = LITE_COLLECTION,
        *,
        index_type: str = "FLAT",
        index_params: dict[str, Any] | None = None,
        ef_search: int = 128,
        nprobe: int = 32,
    ) -> None:
        self.dim = int(dim)
        self.uri = uri
        self.collection = collection
        self._lite_path: str | None = None
        if is_lite_uri(uri):
            path = Path(uri).expanduser()
            if path.suffix != ".db":
                raise ValueError(f"a milvus-lite URI must be a path ending in .db, got {uri!r}")
            path.parent.mkdir(parents=True, exist_ok=True)
            self._lite_path = str(path.resolve())
            uri = self._lite_path
        try:
            self._client = MilvusClient(uri=uri)
        except ConnectionConfigException as exc:
            where = (
                f"milvus-lite could not open {uri} (one process at a time may hold a .db; "
                "is another process using this index?)"
                if self._lite_path
                else f"could not connect to Milvus at {uri}"
            )
            raise ConnectionError(where) from exc
        if self._lite_path:
            with _LITE_LOCK:
                _LITE_USERS[self._lite_path] = _LITE_USERS.get(self._lite_path, 0) + 1
        self._wanted_index = (index_type.upper(), dict(index_params or {}))
        self.ef_search = int(ef_search)
        self.nprobe = int(nprobe)
        self._ensure_collection()

    # -- collection lifecycle -----------------------------------------------------------------

    def _ensure_collection(self) -> None:
        client = self._client
        if not client.has_collection(self.collection):
            schema = client.create_schema(auto_id=False, enable_dynamic_field=False)
            schema.add_field("id", DataType.INT64, is_primary=True)
            schema.add_field("vector", DataType.FLOAT_VECTOR, dim=self.dim)
            schema.add_field("doc_id", DataType.VARCHAR, max_length=_MAX_VARCHAR)
            schema.add_field("format", DataType.VARCHAR, max_length=64)
            schema.add_field("kind", DataType.VARCHAR, max_length=128)
            schema.add_field("year", DataType.INT64, nullable=True)
            index_type, params = self._wanted_index
            index = client.prepare_index_params()
            index.add_index("vector", index_type=index_type, metric_type="IP", params=params)
            # Strong consistency: a delete or insert is visible to the very next search, as
            # with FAISS (a cluster's default, Bounded, could serve stale results).
            client.create_collection(
                self.collection,
                schema=schema,
                index_params=index,
                consistency_level="Strong",
            )
        else:
            have = self._collection_dim()
            if have != self.dim:
                raise ValueError(
                    f"Milvus collection {self.collection!r} holds {have}-d vectors, "
                    f"this store expects {self.dim}-d"
                )
        client.load_collection(self.collection)
        described = client.describe_index(self.collection, "vector") or {}
        self.index_type = str(described.get("index_type", self._wanted_index[0])).upper()
        self.kind = f"milvus-{self.index_type.lower()}"

    def _collection_dim(self) -> int:
        for field in self._client.describe_collection(self.collection)["fields"]:
            if field["name"] == "vector":
                return int(field["params"]["dim"])
        raise ValueError(f"Milvus collection {self.collection!r} has no 'vector' field")

    def reset(
        self, index_type: str | None = None, index_params: dict[str, Any] | None = None
    ) -> None:
        """Drop and recreate the collection, optionally with another index (a rebuild)."""
        if index_type is not None:
            self._wanted_index = (index_type.upper(), dict(index_params or {}))
        self._client.drop_collection(self.collection)
        self._ensure_collection()

    def close(self) -> None:
        self._client.close()
        if self._lite_path:
            with _LITE_LOCK:
                users = _LITE_USERS.get(self._lite_path, 1) - 1
                if users > 0:
                    _LITE_USERS[self._lite_path] = users
                    path = None
                else:
                    _LITE_USERS.pop(self._lite_path, None)
                    path = self._lite_path
            if path:
                from milvus_lite.server_manager import server_manager_instance

                server_manager_instance.release_server(path)
            self._lite_path = None

    # -- generation marker --------------------------------------------------------------------

    @property
    def generation(self) -> int | None:
        """The chunk-store generation this collection reflects (None = unknown: rebuild)."""
        props = self._client.describe_collection(self.collection).get("properties") or {}
        value = props.get(GENERATION_KEY)
        return int(value) if value not in (None, "") else None

    def set_generation(self, generation: int) -> None:
        self._client.alter_collection_properties(
            self.collection, properties={GENERATION_KEY: str(int(generation))}
        )

    # -- mutation -----------------------------------------------------------------------------

    def __len__(self) -> int:
        # count(*) honours deletes; get_collection_stats on a cluster counts rows not yet compacted.
        rows = self._client.query(self.collection, filter="", output_fields=["count(*)"])
        return int(rows[0]["count(*)"]) if rows else 0

    def _check(self, vectors: np.ndarray) -> np.ndarray:
        vectors = np.ascontiguousarray(np.atleast_2d(vectors), dtype=np.float32)
        if vectors.ndim != 2 or vectors.shape[1] != self.dim:
            raise ValueError(f"expected {self.dim}-d vectors, got shape {vectors.shape}")
        return vectors

    def add(
        self,
        ids: np.ndarray,
        vectors: np.ndarray,
        metadata: VectorMeta | Sequence[VectorMeta] | None = None,
    ) -> None:
        """Insert vectors under the given ids; ``metadata`` is one for all rows or one per row."""
        if len(ids) == 0:
            return
        ids = np.ascontiguousarray(ids, dtype=np.int64)
        vectors = self._check(vectors)
        if len(vectors) != len(ids):
            raise ValueError(f"{len(ids)} ids but {len(vectors)} vectors")
        if metadata is None or isinstance(metadata, VectorMeta):
            metas: Sequence[VectorMeta] = [metadata or VectorMeta()] * len(ids)
        else:
            metas = metadata
            if len(metas) != len(ids):
                raise ValueError(f"{len(ids)} ids but {len(metas)} metadata rows")
        for start in range(0, len(ids), _INSERT_BATCH):
            stop = start + _INSERT_BATCH
            rows = [
                {
                    "id": i,
                    "vector": v,
                    "doc_id": m.doc_id[:_MAX_VARCHAR],
                    "format": m.format[:64],
                    "kind": m.kind[:128],
                    "year": m.year,
                }
                for i, v, m in zip(
                    ids[start:stop].tolist(), vectors[start:stop], metas[start:stop], strict=True
                )
            ]
            self._client.insert(self.collection, rows)

    def _existing(self, ids: Sequence[int]) -> list[int]:
        found: list[int] = []
        for start in range(0, len(ids), _IN_BATCH):
            batch = ids[start : start + _IN_BATCH]
            rows = self._client.query(
                self.collection, filter=f"id in {list(batch)}", output_fields=["id"]
            )
            found.extend(int(r["id"]) for r in rows)
        return found

    def remove(self, ids: np.ndarray) -> int:
        """Delete by id; returns how many were present (a cluster's delete count would not)."""
        if len(ids) == 0:
            return 0
        present = self._existing(np.unique(np.asarray(ids, dtype=np.int64)).tolist())
        for start in range(0, len(present), _IN_BATCH):
            self._client.delete(self.collection, ids=present[start : start + _IN_BATCH])
        return len(present)

    def delete(self, filter: str) -> int:
        """Delete every row matching a Milvus expression, e.g. ``doc_id == "paper1"``."""
        rows = self._client.query(self.collection, filter=filter, output_fields=["count(*)"])
        n = int(rows[0]["count(*)"]) if rows else 0
        if n:
            self._client.delete(self.collection, filter=filter)
        return n

    def remove_doc(self, doc_id: str) -> int:
        return self.delete(f"doc_id == {_quote(doc_id)}")

    # -- queries ------------------------------------------------------------------------------

    def _params(self, k: int) -> dict[str, Any]:
        params: dict[str, Any] = {}
        if self.index_type.startswith("HNSW"):
            params["ef"] = max(self.ef_search, k)  # HNSW cannot return more than ef hits
        elif self.index_type.startswith("IVF"):
            params["nprobe"] = self.nprobe
        return {"metric_type": "IP", "params": params}

    def _search_once(self, queries: np.ndarray, k: int, expr: str) -> tuple[np.ndarray, np.ndarray]:
        n = len(queries)
        scores = np.full((n, k), -np.inf, np.float32)
        found = np.full((n, k), -1, np.int64)
        results = self._client.search(
            self.collection,
            data=[q for q in queries],
            filter=expr,
            limit=k,
            output_fields=["id"],
            search_params=self._params(k),
            anns_field="vector",
        )
        for row, hits in enumerate(results):
            for col, hit in enumerate(hits[:k]):
                found[row, col] = int(hit["id"])
                scores[row, col] = float(hit["distance"])
        return scores, found

    def search(
        self,
        queries: np.ndarray,
        k: int,
        allowed: np.ndarray | None = None,
        *,
        expr: str = "",
    ) -> tuple[np.ndarray, np.ndarray]:
        """Top-k by inner product; ``allowed`` ids and a native ``expr`` both restrict it."""
        queries = self._check(queries)
        n, k = len(queries), max(int(k), 0)
        if k == 0 or (allowed is not None and len(allowed) == 0):
            return np.full((n, k), -np.inf, np.float32), np.full((n, k), -1, np.int64)
        k_eff = min(k, _MAX_TOPK)
        if allowed is None:
            scores, found = self._search_once(queries, k_eff, expr)
        else:
            # A long `id in [...]` list is split; each part's top-k is merged by score.
            allowed_ids = np.unique(np.asarray(allowed, dtype=np.int64)).tolist()
            parts = [
                self._search_once(
                    queries, k_eff, _and(f"id in {allowed_ids[s : s + _IN_BATCH]}", expr)
                )
                for s in range(0, len(allowed_ids), _IN_BATCH)
            ]
            scores = np.concatenate([p[0] for p in parts], axis=1)
            found = np.concatenate([p[1] for p in parts], axis=1)
            order = np.argsort(-scores, axis=1, kind="stable")[:, :k_eff]
            scores = np.take_along_axis(scores, order, axis=1)
            found = np.take_along_axis(found, order, axis=1)
        if k_eff < k:
            pad = k - k_eff
            scores = np.pad(scores, ((0, 0), (0, pad)), constant_values=-np.inf)
            found = np.pad(found, ((0, 0), (0, pad)), constant_values=-1)
        return scores, found

    def search_filtered(
        self,
        queries: np.ndarray,
        k: int,
        *,
        doc_ids: Iterable[str] | None = None,
        formats: Iterable[str] | None = None,
        kinds: Iterable[str] | None = None,
        year_min: int | None = None,
        year_max: int | None = None,
        allowed: np.ndarray | None = None,
    ) -> tuple[np.ndarray, np.ndarray]:
        """Search with metadata filters evaluated by Milvus (no id list from SQLite needed)."""
        expr = filter_expression(
            doc_ids=doc_ids, formats=formats, kinds=kinds, year_min=year_min, year_max=year_max
        )
        return self.search(queries, k, allowed, expr=expr)

    def ids(self) -> np.ndarray:
        iterator = self._client.query_iterator(
            self.collection, batch_size=10_000, filter="", output_fields=["id"]
        )
        out: list[int] = []
        try:
            while batch := iterator.next():
                out.extend(int(r["id"]) for r in batch)
        finally:
            iterator.close()
        return np.asarray(sorted(out), dtype=np.int64)

    # -- persistence --------------------------------------------------------------------------

    def save(self, path: Path | None = None) -> None:
        """Milvus persists itself, so this only flushes; ``path`` is ignored."""
        self._client.flush(self.collection)


def milvus_index(kind: str, settings: IndexSettings) -> tuple[str, dict[str, Any]]:
    """The Milvus index type and build params for a FAISS-style kind (flat / hnsw / ivf)."""
    if kind == "hnsw":
        return "HNSW", {"M": settings.hnsw_m, "efConstruction": settings.hnsw_ef_construction}
    if kind == "ivf":
        # Milvus builds IVF per segment, so nlist cannot follow the corpus size as FAISS does.
        return "IVF_FLAT", {"nlist": settings.ivf_nlist or 1024}
    return "FLAT", {}


def store_for_index(
    settings: IndexSettings, dim: int, directory: Path, kind: str = "flat"
) -> MilvusStore:
    """The Milvus store of one index directory: its own milvus-lite .db, or a named collection
    on the cluster (or shared .db) that ``index.milvus_uri`` points to."""
    uri = settings.milvus_uri or str(Path(directory) / LITE_DB_NAME)
    collection = collection_name_for(directory) if settings.milvus_uri else LITE_COLLECTION
    index_type, params = milvus_index(kind, settings)
    return MilvusStore(
        dim,
        uri,
        collection,
        index_type=index_type,
        index_params=params,
        ef_search=settings.hnsw_ef_search,
        nprobe=settings.ivf_nprobe,
    )

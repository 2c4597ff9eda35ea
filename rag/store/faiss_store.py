"""FAISS vector store: exact inner product by default, HNSW or IVF for large corpora."""

from __future__ import annotations

import math
import os
import tempfile
from pathlib import Path
from typing import Literal

import faiss
import numpy as np

from rag.settings import IndexSettings

Kind = Literal["flat", "hnsw", "ivf"]


def choose_kind(settings: IndexSettings, n_vectors: int) -> Kind:
    if settings.vector_index != "auto":
        return settings.vector_index
    return "hnsw" if n_vectors >= settings.ann_threshold else "flat"


class FaissStore:
    """FAISS index wrapped with an id map.

    HNSW cannot delete: on removal the graph is rebuilt from the vectors its own flat storage
    holds (no second copy is kept); flat and IVF remove in place.
    """

    def __init__(self, dim: int, kind: Kind, settings: IndexSettings) -> None:
        self.dim = dim
        self.kind: Kind = kind
        self.settings = settings
        self._index = self._empty(0)

    # -- construction -------------------------------------------------------------------------

    def _empty(self, n_expected: int) -> faiss.Index:
        if self.kind == "flat":
            return faiss.IndexIDMap2(faiss.IndexFlatIP(self.dim))
        if self.kind == "hnsw":
            base = faiss.IndexHNSWFlat(self.dim, self.settings.hnsw_m, faiss.METRIC_INNER_PRODUCT)
            base.hnsw.efConstruction = self.settings.hnsw_ef_construction
            base.hnsw.efSearch = self.settings.hnsw_ef_search
            return faiss.IndexIDMap2(base)
        return self._ivf(self.settings.ivf_nlist or max(1, int(4 * math.sqrt(max(n_expected, 1)))))

    def _ivf(self, nlist: int) -> faiss.Index:
        # IVF keeps external ids in its lists; wrapping it in an IDMap would break on removal.
        quantizer = faiss.IndexFlatIP(self.dim)
        ivf = faiss.IndexIVFFlat(quantizer, self.dim, nlist, faiss.METRIC_INNER_PRODUCT)
        ivf.nprobe = self.settings.ivf_nprobe
        return ivf

    @classmethod
    def build(
        cls, ids: np.ndarray, vectors: np.ndarray, kind: Kind, settings: IndexSettings
    ) -> FaissStore:
        store = cls(vectors.shape[1], kind, settings)
        store._index = store._empty(len(ids))
        store.add(ids, vectors)
        return store

    # -- mutation ---------------------------------------------------------------------------

    def __len__(self) -> int:
        return int(self._index.ntotal)

    def add(self, ids: np.ndarray, vectors: np.ndarray) -> None:
        if len(ids) == 0:
            return
        ids = np.ascontiguousarray(ids, dtype=np.int64)
        vectors = np.ascontiguousarray(vectors, dtype=np.float32)
        if vectors.ndim != 2 or vectors.shape[1] != self.dim:
            raise ValueError(f"vectors have shape {vectors.shape}; this store holds {self.dim}-d")
        if self.kind == "ivf" and not self._index.is_trained:
            # FAISS wants ~39 training points per list; size the lists to the first batch.
            wanted = self.settings.ivf_nlist or int(4 * math.sqrt(len(vectors)))
            self._index = self._ivf(max(1, min(wanted, len(vectors) // 39)))
            self._index.train(vectors)
        self._index.add_with_ids(vectors, ids)

    def remove(self, ids: np.ndarray) -> int:
        if len(ids) == 0:
            return 0
        ids = np.ascontiguousarray(ids, dtype=np.int64)
        if self.kind == "hnsw":
            # HNSW never deletes, so internal positions are 0..n-1 in insertion order.
            current = self.ids()
            vectors = self._index.index.reconstruct_n(0, len(current))
            keep = ~np.isin(current, ids)
            self._index = self._empty(int(keep.sum()))
            self.add(current[keep], vectors[keep])
            return int((~keep).sum())
        return int(self._index.remove_ids(faiss.IDSelectorBatch(ids)))

    # -- queries ------------------------------------------------------------------------------

    def search(
        self, queries: np.ndarray, k: int, allowed: np.ndarray | None = None
    ) -> tuple[np.ndarray, np.ndarray]:
        queries = np.ascontiguousarray(np.atleast_2d(queries), dtype=np.float32)
        if len(self) == 0 or k <= 0:
            n = len(queries)
            return np.full((n, max(k, 0)), -np.inf, np.float32), np.full((n, max(k, 0)), -1)
        params = None
        if allowed is not None:
            selector = faiss.IDSelectorBatch(np.ascontiguousarray(allowed, dtype=np.int64))
            if self.kind == "hnsw":
                params = faiss.SearchParametersHNSW(
                    sel=selector, efSearch=max(k, self.settings.hnsw_ef_search)
                )
            elif self.kind == "ivf":
                params = faiss.SearchParametersIVF(sel=selector, nprobe=self.settings.ivf_nprobe)
            else:
                params = faiss.SearchParameters(sel=selector)
        elif self.kind == "hnsw":
            params = faiss.SearchParametersHNSW(efSearch=max(k, self.settings.hnsw_ef_search))
        scores, ids = self._index.search(queries, k, params=params)
        return scores, ids

    def ids(self) -> np.ndarray:
        if self.kind != "ivf":
            return faiss.vector_to_array(self._index.id_map).astype(np.int64)
        lists = self._index.invlists
        parts = [
            faiss.rev_swig_ptr(lists.get_ids(i), lists.list_size(i)).copy()
            for i in range(lists.nlist)
            if lists.list_size(i)
        ]
        return np.concatenate(parts).astype(np.int64) if parts else np.zeros(0, np.int64)

    # -- persistence --------------------------------------------------------------------------

    def save(self, path: Path) -> None:
        """Write atomically: a reader sees the old file or the new one, never half of one."""
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
        os.close(fd)
        try:
            faiss.write_index(self._index, tmp)
            with open(tmp, "rb") as handle:
                os.fsync(handle.fileno())
            os.replace(tmp, path)
        finally:
            if os.path.exists(tmp):
                os.unlink(tmp)

    @classmethod
    def load(cls, path: Path, settings: IndexSettings) -> FaissStore:
        index = faiss.read_index(str(path))  # already the concrete class; keep this reference
        inner = faiss.downcast_index(index.index) if hasattr(index, "id_map") else index
        if isinstance(inner, faiss.IndexHNSWFlat):
            kind: Kind = "hnsw"
        elif isinstance(inner, faiss.IndexIVF):
            kind = "ivf"
        else:
            kind = "flat"
        store = cls(index.d, kind, settings)
        store._index = index
        if kind == "hnsw":
            inner.hnsw.efSearch = settings.hnsw_ef_search
        elif kind == "ivf":
            index.nprobe = settings.ivf_nprobe
        return store

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from rag.settings import IndexSettings
from rag.store.faiss_store import FaissStore, choose_kind


def _vectors(n: int, dim: int = 32, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    v = rng.normal(size=(n, dim)).astype(np.float32)
    return v / np.linalg.norm(v, axis=1, keepdims=True)


@pytest.mark.parametrize("kind", ["flat", "hnsw", "ivf"])
def test_store_contract(kind: str, tmp_path: Path) -> None:
    settings = IndexSettings(ivf_nprobe=64)
    vecs = _vectors(400)
    ids = np.arange(1000, 1400, dtype=np.int64)
    store = FaissStore.build(ids, vecs, kind, settings)  # type: ignore[arg-type]
    assert len(store) == 400
    scores, found = store.search(vecs[:5], 3)
    assert found[:, 0].tolist() == ids[:5].tolist()
    assert np.allclose(scores[:, 0], 1.0, atol=1e-4)

    allowed = ids[200:210]
    _, found = store.search(vecs[:1], 5, allowed=allowed)
    assert set(found[0].tolist()) <= set(allowed.tolist())

    assert store.remove(ids[:5]) == 5
    assert len(store) == 395
    _, found = store.search(vecs[:5], 1)
    assert not set(found[:, 0].tolist()) & set(ids[:5].tolist())

    path = tmp_path / "x.faiss"
    store.save(path)
    loaded = FaissStore.load(path, settings)
    assert loaded.kind == kind and len(loaded) == 395
    assert sorted(loaded.ids().tolist()) == sorted(store.ids().tolist())
    _, found = loaded.search(vecs[100:101], 1)
    assert found[0, 0] == 1100


def test_auto_kind_switches_to_hnsw_past_threshold() -> None:
    s = IndexSettings(ann_threshold=1000)
    assert choose_kind(s, 999) == "flat"
    assert choose_kind(s, 1000) == "hnsw"
    assert choose_kind(IndexSettings(vector_index="ivf"), 10) == "ivf"


def test_empty_store_searches_cleanly() -> None:
    store = FaissStore(16, "flat", IndexSettings())
    _scores, ids = store.search(np.zeros(16, np.float32), 3)
    assert ids.tolist() == [[-1, -1, -1]]

"""FAISS-only behaviour; the store contract shared with Milvus is in test_vector_store_contract."""

from __future__ import annotations

from rag.settings import IndexSettings
from rag.store.faiss_store import choose_kind


def test_auto_kind_switches_to_hnsw_past_threshold() -> None:
    s = IndexSettings(ann_threshold=1000)
    assert choose_kind(s, 999) == "flat"
    assert choose_kind(s, 1000) == "hnsw"
    assert choose_kind(IndexSettings(vector_index="ivf"), 10) == "ivf"

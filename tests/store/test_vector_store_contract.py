"""One contract for every dense backend: FAISS flat / HNSW / IVF and Milvus (milvus-lite)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np
import pytest

from rag.settings import IndexSettings
from rag.store.base import VectorStore
from rag.store.faiss_store import FaissStore

from ..conftest import writer_child

BACKENDS = ["faiss-flat", "faiss-hnsw", "faiss-ivf", "milvus-flat", "milvus-hnsw", "milvus-ivf"]
SETTINGS = IndexSettings(ivf_nprobe=64, ivf_nlist=8)


def _vectors(n: int, dim: int = 32, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    v = rng.normal(size=(n, dim)).astype(np.float32)
    return v / np.linalg.norm(v, axis=1, keepdims=True)


class Backend:
    """Creates empty stores of one backend and reopens them from what they persisted."""

    def __init__(self, name: str, root: Path) -> None:
        self.name = name
        self.engine, self.kind = name.split("-")
        self.root = root
        self.opened: list[object] = []

    def new(self, dim: int = 32) -> VectorStore:
        if self.engine == "faiss":
            return FaissStore(dim, self.kind, SETTINGS)  # type: ignore[arg-type]
        pytest.importorskip("pymilvus")
        from rag.store.milvus_store import store_for_index

        store = store_for_index(SETTINGS, dim, self.root, self.kind)
        self.opened.append(store)
        return store

    def reopen(self, store: VectorStore) -> VectorStore:
        """FAISS: save + load the file. Milvus: close the client (and the lite server) and
        connect to the same URI again, so the data must have come from disk."""
        if self.engine == "faiss":
            path = self.root / "dense.faiss"
            store.save(path)
            return FaissStore.load(path, SETTINGS)
        store.save(self.root)
        store.close()  # type: ignore[attr-defined]
        return self.new(store.dim)

    def close(self) -> None:
        for store in self.opened:
            store.close()  # type: ignore[attr-defined]


@pytest.fixture(params=BACKENDS)
def backend(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Backend]:
    b = Backend(request.param, tmp_path)
    yield b
    b.close()


@pytest.fixture
def filled(backend: Backend) -> tuple[VectorStore, np.ndarray, np.ndarray]:
    vecs = _vectors(400)
    ids = np.arange(1000, 1400, dtype=np.int64)
    store = backend.new()
    store.add(ids, vecs)
    return store, ids, vecs


def test_add_then_exact_top1(filled: tuple[VectorStore, np.ndarray, np.ndarray]) -> None:
    store, ids, vecs = filled
    assert isinstance(store, VectorStore)
    assert len(store) == 400
    assert sorted(store.ids().tolist()) == ids.tolist()
    scores, found = store.search(vecs[:5], 3)
    assert scores.shape == found.shape == (5, 3)
    assert found[:, 0].tolist() == ids[:5].tolist()
    assert np.allclose(scores[:, 0], 1.0, atol=1e-4)
    assert (np.diff(scores, axis=1) <= 1e-6).all()  # best first


def test_allowed_ids_restrict_the_search(
    filled: tuple[VectorStore, np.ndarray, np.ndarray],
) -> None:
    store, ids, vecs = filled
    allowed = ids[200:210]
    _, found = store.search(vecs[:1], 5, allowed=allowed)
    assert set(found[0].tolist()) <= set(allowed.tolist())
    _, found = store.search(vecs[205:206], 1, allowed=allowed)
    assert found[0, 0] == ids[205]
    # A long allow-list (Milvus splits it into several expressions) still finds the best hit.
    many = np.concatenate([np.arange(0, 20_000), ids[300:301]])
    _, found = store.search(vecs[300:301], 3, allowed=many)
    assert found[0, 0] == ids[300]
    _, found = store.search(vecs[:2], 4, allowed=np.zeros(0, np.int64))
    assert (found == -1).all()


def test_remove_by_id(backend: Backend, filled: tuple[VectorStore, np.ndarray, np.ndarray]) -> None:
    store, ids, vecs = filled
    assert store.remove(ids[:5]) == 5
    assert len(store) == 395
    _, found = store.search(vecs[:5], 1)
    assert not set(found[:, 0].tolist()) & set(ids[:5].tolist())
    assert store.remove(ids[:5]) == 0  # already gone
    assert store.remove(np.asarray([7, 8], np.int64)) == 0  # never there
    assert store.remove(np.zeros(0, np.int64)) == 0
    assert len(store) == 395 and ids[0] not in set(store.ids().tolist())


def test_save_and_reopen(
    backend: Backend, filled: tuple[VectorStore, np.ndarray, np.ndarray]
) -> None:
    store, ids, vecs = filled
    store.remove(ids[:5])
    kind, before = store.kind, sorted(store.ids().tolist())
    loaded = backend.reopen(store)
    assert loaded.kind == kind and len(loaded) == 395
    assert sorted(loaded.ids().tolist()) == before
    _, found = loaded.search(vecs[100:101], 1)
    assert found[0, 0] == 1100
    loaded.add(np.asarray([5000], np.int64), vecs[:1])  # still writable after reopening
    _, found = loaded.search(vecs[:1], 1)
    assert found[0, 0] == 5000


def test_empty_store_and_short_results(backend: Backend) -> None:
    store = backend.new(16)
    scores, found = store.search(np.zeros(16, np.float32), 3)
    assert found.tolist() == [[-1, -1, -1]] and scores.shape == (1, 3)
    assert len(store) == 0 and store.ids().tolist() == []
    vecs = _vectors(2, 16)
    store.add(np.asarray([1, 2], np.int64), vecs)
    _, found = store.search(vecs[:1], 5)
    assert found[0, 0] == 1 and sorted(found[0, :2].tolist()) == [1, 2]
    assert found[0, 2:].tolist() == [-1, -1, -1]


def test_dimension_mismatch_is_an_error(
    filled: tuple[VectorStore, np.ndarray, np.ndarray],
) -> None:
    store, _, _ = filled
    # FaissStore surfaces FAISS' own assertion; MilvusStore raises ValueError up front.
    with pytest.raises((ValueError, AssertionError)):
        store.add(np.asarray([1], np.int64), _vectors(1, 16))
    with pytest.raises((ValueError, AssertionError)):
        store.search(_vectors(1, 16), 3)
    assert len(store) == 400


# -- Milvus only: metadata travels with the vectors ---------------------------------------------


@pytest.fixture
def milvus(tmp_path: Path) -> Iterator[object]:
    pytest.importorskip("pymilvus")
    from rag.store.milvus_store import MilvusStore, VectorMeta

    store = MilvusStore(32, str(tmp_path / "m.db"), "docs")
    vecs = _vectors(60)
    metas = [
        VectorMeta(
            doc_id=f"doc{i % 6}",
            format="pdf" if i % 2 else "txt",
            kind="trial" if i % 3 == 0 else "review",
            year=None if i % 6 == 5 else 2010 + i % 6,
        )
        for i in range(60)
    ]
    store.add(np.arange(60, dtype=np.int64), vecs, metas)
    store.vecs, store.metas = vecs, metas  # type: ignore[attr-defined]
    yield store
    store.close()


def _meta_of(store: object, found: np.ndarray) -> list[object]:
    return [store.metas[i] for i in found.ravel().tolist() if i >= 0]  # type: ignore[attr-defined]


def test_milvus_delete_by_document_and_expression(milvus) -> None:
    assert milvus.remove_doc("doc1") == 10
    assert milvus.remove_doc("doc1") == 0
    assert len(milvus) == 50
    _, found = milvus.search(milvus.vecs[1:2], 60)
    assert all(m.doc_id != "doc1" for m in _meta_of(milvus, found))
    assert milvus.delete("year < 2012") == 10  # doc0 (2010); doc1 (2011) is gone already
    assert len(milvus) == 40 and milvus.delete('doc_id == "nope"') == 0


def test_milvus_native_metadata_filters(milvus) -> None:
    q = milvus.vecs[:3]
    _, found = milvus.search_filtered(q, 20, doc_ids=["doc2", "doc4"])
    assert {m.doc_id for m in _meta_of(milvus, found)} == {"doc2", "doc4"}
    _, found = milvus.search_filtered(q, 60, formats=["pdf"])
    metas = _meta_of(milvus, found)
    assert len(metas) == 3 * 30 and {m.format for m in metas} == {"pdf"}
    _, found = milvus.search_filtered(q, 60, year_min=2012, year_max=2013)
    assert {m.year for m in _meta_of(milvus, found)} == {2012, 2013}
    _, found = milvus.search_filtered(q, 60, year_min=2000)  # unknown year never passes
    assert None not in {m.year for m in _meta_of(milvus, found)}
    _, found = milvus.search_filtered(q, 60, kinds=["trial"], formats=["txt"])
    assert {(m.kind, m.format) for m in _meta_of(milvus, found)} == {("trial", "txt")}
    # Native filters combine with an allow-list of ids.
    _, found = milvus.search_filtered(q[:1], 10, doc_ids=["doc0"], allowed=np.arange(0, 13))
    assert sorted(i for i in found[0].tolist() if i >= 0) == [0, 6, 12]
    # Values are quoted: an id with a quote in it is a value, not part of the expression.
    _, found = milvus.search_filtered(q[:1], 5, doc_ids=['x" or id >= 0 or doc_id == "y'])
    assert (found == -1).all()


def test_milvus_generation_marker_and_dim_check(tmp_path: Path) -> None:
    pytest.importorskip("pymilvus")
    from rag.store.milvus_store import MilvusStore

    uri = str(tmp_path / "g.db")
    store = MilvusStore(8, uri, "c")
    assert store.generation is None
    store.set_generation(7)
    store.close()
    again = MilvusStore(8, uri, "c")
    assert again.generation == 7
    with pytest.raises(ValueError, match="8-d"):
        MilvusStore(16, uri, "c")
    again.reset()
    assert again.generation is None and len(again) == 0
    again.close()
    with pytest.raises(ValueError, match=r"\.db"):
        MilvusStore(8, str(tmp_path / "no-suffix"), "c")


# -- end to end: the assistant on Milvus --------------------------------------------------------


def _write_docs(folder: Path, n: int) -> list[Path]:
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for i in range(n):
        p = folder / f"paper{i:03d}.txt"
        p.write_text(
            f"Study {i}\n\nIn cohort {i}, drug D{i} improved progression-free survival to "
            f"{i + 3}.{i % 10} months (HR, 0.{40 + i}). Responses lasted a median of {i + 8} "
            "months and toxicity was manageable.\n",
            encoding="utf-8",
        )
        paths.append(p)
    return paths


@pytest.fixture
def milvus_assistant(tmp_path: Path, embedder) -> Iterator[Callable[[], object]]:
    pytest.importorskip("pymilvus")
    from rag.assistant import Assistant

    from ..conftest import make_settings

    settings = make_settings(tmp_path / "index", "index.store=milvus")
    opened: list[Assistant] = []

    def open_assistant() -> Assistant:
        a = Assistant(settings, embedder=embedder)
        opened.append(a)
        return a

    yield open_assistant
    for a in opened:
        if "index" in a.__dict__:
            a.index.close()


def test_assistant_on_milvus_adds_searches_removes(milvus_assistant, tmp_path: Path) -> None:
    from rag.types import Filters

    a = milvus_assistant()
    _write_docs(tmp_path / "docs", 4)
    assert a.add([tmp_path / "docs"]).summary() == {"added": 4}
    index = a.index
    assert a.stats().vector_index == "milvus-flat"
    assert (index.dir / "milvus.db").exists()
    assert not list(index.dir.glob("dense.*.faiss"))
    dense = index.derived.dense
    assert dense.generation == index.generation()
    hit = a.search("drug D2 cohort 2", k=1, mode="dense").hits[0]
    assert hit.provenance.doc_id == "paper002"
    hits = a.search("progression-free survival", k=5, filters=Filters(doc_ids=("paper001",))).hits
    assert hits and {h.provenance.doc_id for h in hits} == {"paper001"}

    # Native filter: the store knows each vector's document.
    qvec = a.embedder.embed_query("drug D3")
    _, found = dense.search_filtered(qvec, 5, doc_ids=["paper003"])
    wanted = set(index.store.chunk_ids_for_doc("paper003"))
    assert {i for i in found[0].tolist() if i >= 0} == wanted

    assert a.remove("paper002").status == "removed"
    for mode in ("dense", "hybrid"):
        assert all(
            h.provenance.doc_id != "paper002"
            for h in a.search("drug D2 cohort 2", k=10, mode=mode).hits
        )
    assert sorted(dense.ids().tolist()) == sorted(index.store.all_vectors()[0].tolist())
    assert index.check() == []


def test_milvus_index_reopens_without_rebuild_and_repairs_a_stale_collection(
    milvus_assistant, tmp_path: Path
) -> None:
    a = milvus_assistant()
    _write_docs(tmp_path / "docs", 3)
    a.add([tmp_path / "docs"])
    generation = a.index.generation()
    a.index.close()

    b = milvus_assistant()  # a fresh server on the same .db: data came from disk
    dense = b.index.derived.dense
    assert dense.generation == generation and len(dense) == b.stats().chunks
    assert b.search("drug D1", k=1, mode="dense").hits[0].provenance.doc_id == "paper001"

    # A writer that died between the SQLite commit and the mirror: rows missing, old marker.
    victim = b.index.store.chunk_ids_for_doc("paper001")
    dense.remove(np.asarray(victim, np.int64))
    dense.set_generation(generation - 1)
    assert b.index.check() == []  # check() reloads, finds the marker stale, rebuilds
    assert dense.generation == generation
    assert set(victim) <= set(dense.ids().tolist())
    b.index.close()


def test_milvus_index_rebuild_with_new_chunker_and_auto_kind_switch(
    milvus_assistant, tmp_path: Path, embedder
) -> None:
    from rag.assistant import Assistant
    from rag.rebuild import rebuild_index

    from ..conftest import make_settings

    a = milvus_assistant()
    _write_docs(tmp_path / "docs", 3)
    a.add([tmp_path / "docs"])
    a.index.close()
    settings = make_settings(
        tmp_path / "index",
        "index.store=milvus",
        "index.ann_threshold=2",  # past 2 chunks the collection is rebuilt as HNSW
        "chunk.max_tokens=48",
        "chunk.overlap_tokens=8",
    )
    assert rebuild_index(settings).summary() == {"added": 3}
    fresh = Assistant(settings, embedder=embedder)
    try:
        assert fresh.index.manifest()["chunker"]["max_tokens"] == 48
        assert fresh.stats().vector_index == "milvus-hnsw"
        assert fresh.index.check() == []
        assert fresh.search("drug D2", k=1, mode="dense").hits[0].provenance.doc_id == "paper002"
    finally:
        fresh.index.close()


CHILD = writer_child("ingest.commit_every=2", "index.store=milvus")


@pytest.mark.slow
def test_killed_milvus_writer_leaves_a_consistent_index(milvus_assistant, tmp_path: Path) -> None:
    import os
    import signal
    import subprocess
    import sys
    import time

    docs = _write_docs(tmp_path / "docs", 30)
    base = milvus_assistant()
    base.add([docs[0]])
    base.index.close()  # milvus-lite allows one process per .db
    proc = subprocess.Popen(
        [sys.executable, "-c", CHILD, str(tmp_path / "index"), str(tmp_path / "docs")],
        stdout=subprocess.PIPE,
        text=True,
        env=os.environ | {"PYTHONUNBUFFERED": "1"},
    )
    assert proc.stdout is not None
    assert proc.stdout.readline().strip() == "READY"
    committed: list[str] = []
    while len(committed) < 4 and proc.poll() is None:
        line = proc.stdout.readline()
        if line.startswith("COMMITTED"):
            committed.append(line.split()[1])
    time.sleep(0.2)
    proc.send_signal(signal.SIGKILL)
    proc.wait()

    after = milvus_assistant()
    assert after.index.check() == []
    present = {d.doc_id for d in after.documents()}
    assert "paper000" in present and set(committed) <= present
    assert not after.add([tmp_path / "docs"]).failed
    assert len(after.documents()) == 30 and after.index.check() == []

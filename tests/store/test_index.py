from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from rag.assistant import Assistant
from rag.errors import DocumentNotFoundError, IndexLockedError, IndexMismatchError
from rag.store.index import CorpusIndex, IndexSpec

from ..conftest import make_settings, writer_child


def _write_docs(folder: Path, n: int, tag: str = "v1") -> list[Path]:
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for i in range(n):
        p = folder / f"paper{i:03d}.txt"
        p.write_text(
            f"Study {i} ({tag})\n\nIn cohort {i}, drug D{i} improved progression-free survival "
            f"to {i + 3}.{i % 10} months (HR, 0.{40 + i}). Responses lasted a median of {i + 8} "
            "months and toxicity was manageable.\n",
            encoding="utf-8",
        )
        paths.append(p)
    return paths


def test_add_is_idempotent_and_replaces_changed_documents(
    assistant: Assistant, tmp_path: Path
) -> None:
    docs = _write_docs(tmp_path / "docs", 3)
    first = assistant.add([tmp_path / "docs"])
    assert first.summary() == {"added": 3}
    chunks_before = assistant.stats().chunks
    again = assistant.add([tmp_path / "docs"])
    assert again.summary() == {"unchanged": 3}
    assert assistant.stats().chunks == chunks_before

    docs[1].write_text("Study 1 (v2)\n\nA rewritten abstract about nivolumab and 12.5 months OS.")
    changed = assistant.add([tmp_path / "docs"])
    assert changed.summary() == {"replaced": 1, "unchanged": 2}
    hit = assistant.search("nivolumab overall survival", k=1).hits[0]
    assert hit.provenance.doc_id == "paper001" and "12.5 months" in hit.text
    assert not assistant.search("drug D1 cohort 1", k=5, mode="lexical").hits or all(
        "D1 " not in h.text for h in assistant.search("drug D1", k=5, mode="lexical").hits
    )
    assert assistant.index.check() == []


def test_duplicate_content_from_another_path_is_not_indexed_twice(
    assistant: Assistant, tmp_path: Path
) -> None:
    a = _write_docs(tmp_path / "a", 1)[0]
    b = tmp_path / "b" / "copy.txt"
    b.parent.mkdir()
    b.write_bytes(a.read_bytes())
    report = assistant.add([a, b])
    assert [r.status for r in report.results] == ["added", "duplicate"]
    assert "same content as paper000" in (report.results[1].reason or "")


def test_remove_deletes_chunks_vectors_and_bm25_entries(
    assistant: Assistant, tmp_path: Path
) -> None:
    _write_docs(tmp_path / "docs", 4)
    assistant.add([tmp_path / "docs"])
    removed = assistant.remove("paper002")
    assert removed.status == "removed" and removed.chunks >= 1
    assert "paper002" not in {d.doc_id for d in assistant.documents()}
    for mode in ("dense", "lexical", "hybrid"):
        hits = assistant.search("drug D2 cohort 2", k=10, mode=mode).hits
        assert all(h.provenance.doc_id != "paper002" for h in hits)
    # Removing by path works too, and an unknown id is a clear error.
    assistant.remove(str(tmp_path / "docs" / "paper003.txt"))
    with pytest.raises(DocumentNotFoundError, match="rag index list"):
        assistant.remove("nope")
    assert assistant.index.check() == []


def test_index_persists_and_reopens(assistant: Assistant, tmp_path: Path, embedder) -> None:
    _write_docs(tmp_path / "docs", 2)
    assistant.add([tmp_path / "docs"])
    assistant.index.close()
    again = Assistant(assistant.settings, embedder=embedder)
    assert {d.doc_id for d in again.documents()} == {"paper000", "paper001"}
    assert again.search("drug D1", k=1).hits[0].provenance.doc_id == "paper001"


def test_other_embedder_or_chunker_is_refused_with_rebuild_hint(
    assistant: Assistant, tmp_path: Path
) -> None:
    _write_docs(tmp_path / "docs", 1)
    assistant.add([tmp_path / "docs"])
    spec = assistant.spec
    other = IndexSpec("all-mpnet-base-v2", "deadbeef", 768, spec.chunker)
    with pytest.raises(IndexMismatchError, match="rag index rebuild"):
        CorpusIndex(assistant.settings.index.dir, other, assistant.settings.index)
    rechunked = IndexSpec(
        spec.embedder, spec.embedder_fingerprint, spec.dim, spec.chunker | {"max_tokens": 99}
    )
    with pytest.raises(IndexMismatchError, match="chunker"):
        CorpusIndex(assistant.settings.index.dir, rechunked, assistant.settings.index)


def test_rebuild_with_new_chunker_keeps_documents(
    assistant: Assistant, tmp_path: Path, embedder
) -> None:
    from rag.rebuild import rebuild_index

    _write_docs(tmp_path / "docs", 3)
    assistant.add([tmp_path / "docs"])
    assistant.index.close()
    settings = make_settings(
        assistant.settings.index.dir, "chunk.max_tokens=48", "chunk.overlap_tokens=8"
    )
    report = rebuild_index(settings)
    assert report.summary() == {"added": 3}
    fresh = Assistant(settings, embedder=embedder)
    assert fresh.index.manifest()["chunker"]["max_tokens"] == 48
    assert fresh.index.check() == []


def test_second_writer_waits_then_gives_a_clear_error(tmp_path: Path, embedder) -> None:
    settings = make_settings(tmp_path / "index", "index.lock_timeout_s=0.5")
    a = Assistant(settings, embedder=embedder)
    _write_docs(tmp_path / "docs", 1)
    with a.index.writer():
        b = Assistant(settings, embedder=embedder)
        with pytest.raises(IndexLockedError, match="another process is writing"):
            b.add([tmp_path / "docs"])


CHILD = writer_child("ingest.commit_every=3")


@pytest.mark.slow
@pytest.mark.parametrize("delay", [0.3, 1.0, 2.0])
def test_killed_writer_leaves_a_consistent_index(tmp_path: Path, embedder, delay: float) -> None:
    docs = _write_docs(tmp_path / "docs", 40)
    index_dir = tmp_path / "index"
    # A first, completed ingest that must survive the crash.
    base = Assistant(make_settings(index_dir), embedder=embedder)
    base.add([docs[0]])
    base.index.close()

    proc = subprocess.Popen(
        [sys.executable, "-c", CHILD, str(index_dir), str(tmp_path / "docs")],
        stdout=subprocess.PIPE,
        text=True,
        env=os.environ | {"PYTHONUNBUFFERED": "1"},
    )
    assert proc.stdout is not None
    committed: list[str] = []
    assert proc.stdout.readline().strip() == "READY"
    deadline = time.monotonic() + delay
    os.set_blocking(proc.stdout.fileno(), False)
    while time.monotonic() < deadline and proc.poll() is None:
        line = proc.stdout.readline()
        if line.startswith("COMMITTED"):
            committed.append(line.split()[1])
        time.sleep(0.01)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    for line in proc.stdout.read().splitlines() if proc.stdout else []:
        if line.startswith("COMMITTED"):
            committed.append(line.split()[1])

    after = Assistant(make_settings(index_dir), embedder=embedder)
    assert after.index.check() == []
    present = {d.doc_id for d in after.documents()}
    assert "paper000" in present
    assert set(committed) <= present
    # Documents commit in whole batches: nothing half-added.
    for d in after.documents():
        assert d.chunks == len(after.index.store.chunk_ids_for_doc(d.doc_id))
    # The interrupted ingest can simply be run again.
    report = after.add([tmp_path / "docs"])
    assert not report.failed
    assert len(after.documents()) == 40

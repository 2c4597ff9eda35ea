"""BM25 fields: a chunk's own text, and the text around it (a result split from its subject)."""

from __future__ import annotations

import json
from pathlib import Path

from rag.assistant import Assistant
from rag.settings import Settings
from rag.store.lexical import LexicalIndex

from ..conftest import make_settings


def _split_paper(folder: Path) -> Path:
    """A paper whose drug is named in one paragraph and whose result sits in a later one."""
    folder.mkdir(parents=True, exist_ok=True)
    filler = " ".join(f"Aside {i} on tumour biology and the design of trials." for i in range(5))
    path = folder / "split.txt"
    path.write_text(
        "Split study\n\nWe tested zorvatinib in advanced lung cancer. "
        + filler
        + "\n\nThe objective response rate reached 41 percent and responses lasted a median of "
        "nine months.\n\n" + filler.replace("Background", "Closing") + "\n",
        encoding="utf-8",
    )
    (folder / "other.txt").write_text(
        "Other study\n\nThe objective response rate reached 12 percent with placebo.\n",
        encoding="utf-8",
    )
    return folder


def _assistant(tmp_path: Path, embedder, *overrides: str) -> Assistant:
    settings: Settings = make_settings(tmp_path / "index", "chunk.max_tokens=64", *overrides)
    return Assistant(settings, embedder=embedder)


def test_context_field_reaches_the_chunk_beside_the_name(tmp_path: Path, embedder) -> None:
    assistant = _assistant(tmp_path, embedder)
    assistant.add([_split_paper(tmp_path / "docs")])
    index = assistant.index
    chunks = index.chunks(list(range(1, 1000)))
    result = next(i for i, c in chunks.items() if "41 percent" in c.text)
    assert "zorvatinib" not in chunks[result].text.lower()

    _, own = index.lexical_search("zorvatinib response rate", 20)
    _, around = index.lexical_search("zorvatinib response rate", 20, field="context")
    assert result not in own.tolist()[:1]
    assert around.tolist()[0] == result or result in around.tolist()[:2]
    # The text around a chunk is read from its own document only.
    other = next(i for i, c in chunks.items() if "12 percent" in c.text)
    assert other not in index.lexical_search("zorvatinib", 20, field="context")[1].tolist()


def test_context_weight_lifts_the_result_in_hybrid_search(tmp_path: Path, embedder) -> None:
    question = "What response rate did zorvatinib reach?"
    plain = _assistant(tmp_path / "a", embedder)
    plain.add([_split_paper(tmp_path / "docs")])
    fused = _assistant(tmp_path / "b", embedder, "retrieve.context_weight=1.0")
    fused.add([_split_paper(tmp_path / "docs")])

    def rank_of_result(assistant: Assistant) -> int:
        hits = assistant.retriever.run(question, k=10, mode="lexical", diversify=False).hits
        return next(i for i, h in enumerate(hits) if "41 percent" in h.chunk.text)

    assert rank_of_result(fused) < rank_of_result(plain)


def test_saved_fields_reload_and_an_older_format_is_rebuilt(tmp_path: Path, embedder) -> None:
    assistant = _assistant(tmp_path, embedder)
    assistant.add([_split_paper(tmp_path / "docs")])
    saved = [p for p in (tmp_path / "index").iterdir() if p.name.startswith("lexical.")]
    assert len(saved) == 1 and LexicalIndex.current(saved[0])
    loaded = LexicalIndex.load(saved[0])
    for field in ("chunk", "context"):
        assert (
            loaded.search("zorvatinib", 5, field=field)[1].tolist()
            == assistant.index.lexical_search("zorvatinib", 5, field=field)[1].tolist()
        )
    # A folder written before the context field existed is not current: a writer replaces it.
    (saved[0] / "ok.json").write_text(json.dumps({"n": len(loaded)}))
    assert not LexicalIndex.current(saved[0])
    assistant.index.close()
    again = _assistant(tmp_path, embedder)
    assert again.search("zorvatinib", k=1, mode="lexical").hits
    again.add([tmp_path / "docs" / "other.txt"])  # unchanged: no new chunks, but a sync
    with again.index.writer() as writer:
        writer.sync_derived()
    assert LexicalIndex.current(saved[0])

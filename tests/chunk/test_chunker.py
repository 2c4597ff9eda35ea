from __future__ import annotations

import itertools
from pathlib import Path

import pytest

from rag.chunk import Chunker
from rag.ingest.normalize import build_document
from rag.ingest.registry import load_file
from rag.settings import ChunkSettings, IngestSettings
from rag.types import Block, DocMeta, LoadedDocument


@pytest.fixture(scope="module")
def chunker(embedder) -> Chunker:
    return Chunker(ChunkSettings(max_tokens=64, overlap_tokens=16), embedder.count_tokens)


def _long_doc() -> LoadedDocument:
    sentences = [
        f"Sentence {i} reports that the median PFS was {i}.{i} months (HR, 0.{i}; P = .0{i})."
        for i in range(1, 30)
    ]
    return LoadedDocument(
        [
            Block("A trial", "title"),
            Block("Results", "heading"),
            Block(" ".join(sentences[:20]), "paragraph", ("Results",)),
            Block(" ".join(sentences[20:]), "paragraph", ("Results",)),
            Block("Discussion", "heading"),
            Block("Short closing paragraph.", "paragraph", ("Discussion",)),
        ],
        DocMeta(),
        "text",
    )


def test_chunks_are_exact_spans_within_budget(chunker: Chunker, embedder) -> None:
    doc = build_document(_long_doc(), doc_id="t", source="t")
    chunks = chunker.run(doc)
    assert len(chunks) > 3
    for c in chunks:
        assert doc.text[c.start : c.end] == c.text
        assert c.n_tokens <= 64
        assert embedder.count_tokens([c.text])[0] <= 64 + 2  # joins add no real tokens
    # Sections are carried, and chunks never cross a section boundary.
    assert {c.section for c in chunks} == {("Results",), ("Discussion",)}
    assert chunks[-1].text == "Short closing paragraph."


def test_chunks_never_split_a_sentence_and_overlap(embedder) -> None:
    # Sentences here are ~25 tokens: a 32-token overlap carries one whole sentence forward.
    chunker = Chunker(ChunkSettings(max_tokens=64, overlap_tokens=32), embedder.count_tokens)
    doc = build_document(_long_doc(), doc_id="t", source="t")
    chunks = [c for c in chunker.run(doc) if c.section == ("Results",)]
    for c in chunks:
        assert c.text.startswith("Sentence ")
        assert c.text.endswith(").")
    overlapping = sum(1 for a, b in itertools.pairwise(chunks) if b.start < a.end)
    assert overlapping >= 1


def test_chunk_ids_are_stable_and_unique(chunker: Chunker) -> None:
    first = chunker.run(build_document(_long_doc(), doc_id="t", source="t"))
    second = chunker.run(build_document(_long_doc(), doc_id="t", source="t"))
    assert [c.chunk_id for c in first] == [c.chunk_id for c in second]
    assert len({c.chunk_id for c in first}) == len(first)


def test_oversized_sentence_stays_whole(embedder) -> None:
    long_sentence = "word " * 120 + "end."
    loaded = LoadedDocument([Block(long_sentence, "paragraph")], DocMeta(), "text")
    doc = build_document(loaded, doc_id="x", source="x")
    chunks = Chunker(ChunkSettings(max_tokens=32, overlap_tokens=8), embedder.count_tokens).run(doc)
    assert len(chunks) == 1 and chunks[0].text == doc.text


def test_seed_documents_provenance_invariant(seeds: Path, embedder) -> None:
    chunker = Chunker(ChunkSettings(), embedder.count_tokens)
    for path in sorted(seeds.glob("*.txt")):
        doc = load_file(path, IngestSettings(), doc_id=path.stem)
        chunks = chunker.run(doc)
        assert chunks
        for c in chunks:
            assert doc.text[c.start : c.end] == c.text
            assert c.doc_id == path.stem


def test_tables_split_by_rows(embedder) -> None:
    rows = "\n".join(f"Arm {i} | {i}.0 months | HR 0.{i}" for i in range(40))
    loaded = LoadedDocument([Block(rows, "table", ("Results",))], DocMeta(), "text")
    doc = build_document(loaded, doc_id="tab", source="tab")
    chunks = Chunker(ChunkSettings(max_tokens=48, overlap_tokens=0), embedder.count_tokens).run(doc)
    assert len(chunks) > 1
    for c in chunks:
        assert all(line.startswith("Arm ") for line in c.text.split("\n"))


def test_list_markers_and_abbreviations_do_not_cut_a_sentence(embedder) -> None:
    # pysbd cut "included if: | 1) they were ..."; each chunk here must be whole sentences.
    sentence = (
        "Patients were included if: 1) they were evaluable, and 2) they received no prior "
        "therapy (e.g. no anti-PD-1 agents, cf. Fig. 2) at 2.5 mg/kg vs. placebo."
    )
    other = "The median overall survival was 12.3 months (95% CI, 10.1-14.2; P = .009)."
    text = " ".join([sentence, other] * 6)
    loaded = LoadedDocument([Block(text, "paragraph", ("Methods",))], DocMeta(), "text")
    doc = build_document(loaded, doc_id="m", source="m")
    chunks = Chunker(ChunkSettings(max_tokens=80, overlap_tokens=0), embedder.count_tokens).run(doc)
    assert len(chunks) > 1
    for c in chunks:
        assert c.text.startswith(("Patients were included", "The median overall"))
        assert c.text.endswith(("placebo.", "= .009)."))


def test_a_reference_list_is_chunked_entry_by_entry(embedder) -> None:
    """Entries packed together retrieve as none of them; each entry is one chunk, and the
    prose before the list is packed as before."""
    entries = [
        f"{i}. Author{c} A, Writer B, et al. Trial {c}-{i}: a randomized study of drug {c} "
        f"versus placebo. *J Clin Oncol*. 202{i};4{i}(suppl 16):85{i}0. doi:10.1200/JCO.{i}."
        for i, c in enumerate("PQRS", start=1)
    ]
    prose = "The trial met its primary endpoint. Median PFS was 7.1 months in the drug arm."
    loaded = LoadedDocument(
        [Block(prose, "paragraph"), Block("References: " + " ".join(entries), "paragraph")],
        DocMeta(),
        "text",
    )
    doc = build_document(loaded, doc_id="bib", source="bib")
    chunks = Chunker(ChunkSettings(max_tokens=256, overlap_tokens=32), embedder.count_tokens).run(
        doc
    )
    assert [c.text for c in chunks] == [prose, "References: " + entries[0], *entries[1:]]
    for c in chunks:
        assert doc.text[c.start : c.end] == c.text

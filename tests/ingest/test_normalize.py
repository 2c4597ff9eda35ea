from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from rag.ingest.normalize import build_document, normalize_text
from rag.types import Block, DocMeta, LoadedDocument


def test_normalisation_rules() -> None:
    assert normalize_text("immuno-\ntherapy") == "immunotherapy"
    assert normalize_text("PD-\nL1 expression") == "PD-L1 expression"
    assert normalize_text("e\ufb03cacy\u00a0of  drug\u200b") == "efficacy of drug"
    assert normalize_text("10⁹/L") == "10⁹/L"  # NFC, not NFKC: superscripts survive
    assert normalize_text("line one\nline two") == "line one line two"
    assert normalize_text("a | b\n\n c | d ", keep_lines=True) == "a | b\nc | d"


@given(st.lists(st.text(min_size=0, max_size=80), min_size=1, max_size=8))
def test_spans_are_exact_slices(texts: list[str]) -> None:
    blocks = [Block(t, "table" if i % 3 == 0 else "paragraph") for i, t in enumerate(texts)]
    if not any(normalize_text(t).strip() for t in texts):
        return
    doc = build_document(LoadedDocument(blocks, DocMeta(), "text"), doc_id="d", source="s")
    kept = [b for b in blocks if normalize_text(b.text, keep_lines=b.kind == "table")]
    assert len(doc.spans) == len(kept)
    for span, block in zip(doc.spans, kept, strict=True):
        assert doc.text[span.start : span.end] == normalize_text(
            block.text, keep_lines=block.kind == "table"
        )

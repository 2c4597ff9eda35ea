"""Scanned PDFs are read by OCR, not refused: a text PDF rendered to images and wrapped as an
image-only PDF comes back as the same text, with its pages, marked as OCR."""

from __future__ import annotations

import io
from pathlib import Path

import pytest
from rag.eval.bench_ocr import character_accuracy, scan

from rag.errors import EmptyDocumentError
from rag.ingest import ocr
from rag.ingest.pdf import load_pdf
from rag.types import DocMeta

DOCS = Path(__file__).resolve().parents[1] / "fixtures" / "docs"
REPORT = DOCS / "trial_report.pdf"


def _text(blocks) -> str:
    return "\n".join(b.text for b in blocks)


def test_a_scanned_report_reads_back_with_its_pages_and_an_ocr_mark() -> None:
    truth = load_pdf(REPORT.read_bytes(), DocMeta())
    loaded = load_pdf(scan(REPORT.read_bytes()), DocMeta())
    assert truth.format == "pdf" and loaded.format == "pdf-ocr"
    assert loaded.meta.extra["ocr_pages"] == [1, 2]
    assert loaded.meta.extra["ocr_confidence"] > 80
    assert character_accuracy(_text(truth.blocks), _text(loaded.blocks)) >= 0.95
    assert {b.page for b in loaded.blocks} == {b.page for b in truth.blocks}
    read = _text(loaded.blocks)
    assert "422 patients" in read and "0.62" in read  # the trial's figures survive OCR
    # Headings come from the text height Tesseract measured, as from font sizes in text PDFs.
    assert any(b.kind == "heading" and b.text == "Results" for b in loaded.blocks)


def test_only_pages_without_a_text_layer_are_read_by_ocr() -> None:
    mixed = load_pdf(scan(REPORT.read_bytes(), pages=[1]), DocMeta())
    assert mixed.format == "pdf-ocr" and mixed.meta.extra["ocr_pages"] == [2]
    assert {b.page for b in mixed.blocks} == {1, 2}


def test_without_the_engine_the_error_says_how_to_install_it(monkeypatch) -> None:
    monkeypatch.setattr(ocr.shutil, "which", lambda name: None)
    with pytest.raises(ocr.OcrUnavailableError, match="apt-get install tesseract-ocr"):
        load_pdf(scan(REPORT.read_bytes()), DocMeta())
    # A PDF with a text layer never needs the engine.
    assert load_pdf(REPORT.read_bytes(), DocMeta()).format == "pdf"


def test_a_page_of_shapes_without_words_is_still_empty() -> None:
    with pytest.raises(EmptyDocumentError, match="no text layer, and OCR found no words"):
        load_pdf((DOCS / "scanned_no_text.pdf").read_bytes(), DocMeta())


def test_an_indexed_scan_is_searchable_and_its_quotes_say_they_came_from_ocr(
    assistant, tmp_path: Path
) -> None:
    from rag.ui.render import _citation_card

    from rag.answer.render import citation_for
    from rag.generate.prompt import Passage

    path = tmp_path / "scanned report.pdf"
    path.write_bytes(scan(REPORT.read_bytes()))
    heard: list[str] = []
    (result,) = assistant.add([path], lambda done, total, item: heard.append(item)).results
    assert result.status == "added", result
    # The sandboxed parser reports each OCR page as it goes (a scan takes seconds a page).
    pages = [item.removeprefix(f"{path}: ") for item in heard if "OCR page" in item]
    assert pages == ["OCR page 0 of 2", "OCR page 1 of 2", "OCR page 2 of 2"], heard
    (hit,) = assistant.retrieve("median progression-free survival with examplinib", k=1).hits
    assert hit.chunk.format == "pdf-ocr" and hit.chunk.page in (1, 2)
    citation = citation_for(
        Passage(1, hit, hit.chunk.start, hit.chunk.end, hit.chunk.text), "supported"
    )
    assert citation.ocr
    assert "text read by OCR from a scan" in _citation_card(citation, 1, [])


def test_blank_scanned_pages_cost_no_ocr_and_too_many_are_refused(monkeypatch) -> None:
    from PIL import Image

    blank = Image.new("L", (850, 1100), 255)
    buffer = io.BytesIO()
    blank.save(buffer, format="PDF", save_all=True, append_images=[blank] * 2, resolution=100)
    calls = []
    monkeypatch.setattr(ocr, "read_image", lambda *a, **k: calls.append(a) or None)
    with pytest.raises(EmptyDocumentError, match="OCR found no words on its 3 page"):
        load_pdf(buffer.getvalue(), DocMeta())
    assert calls == []  # blank pages never reach Tesseract
    monkeypatch.setattr(ocr, "MAX_OCR_PAGES", 2)
    with pytest.raises(EmptyDocumentError, match="OCR reads at most 2 per document"):
        load_pdf(buffer.getvalue(), DocMeta())

"""The quote where it stands: a PDF's page rendered with the quote boxed, other documents as
text with the span marked; bad spans and missing files handled."""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import pytest

from rag.errors import DocumentNotFoundError, RequestError
from rag.view import quote_boxes

FIXTURES = Path(__file__).parent / "fixtures" / "docs"
QUOTE = "Median progression-free survival was longer with examplinib than with docetaxel."


@pytest.fixture
def pdf_doc(assistant, tmp_path: Path):
    source = tmp_path / "report.pdf"
    shutil.copy(FIXTURES / "trial_report.pdf", source)
    (result,) = assistant.add([source]).results
    doc = assistant.index.load_document(result.doc_id)
    start = doc.text.index(QUOTE)
    return assistant, doc, start, start + len(QUOTE), source


def test_a_pdf_quote_opens_its_page_rendered_with_the_quote_boxed(pdf_doc) -> None:
    assistant, doc, start, end, source = pdf_doc
    page = assistant.view(doc.doc_id, start, end)
    assert "data:image/png;base64," in page and "page 1" in page
    assert page.count("class='hl'") >= 1 and "id=quote" in page
    assert "<script" not in page  # one self-contained page, nothing to execute
    boxes = quote_boxes(source.read_bytes(), 1, QUOTE)
    assert boxes and all(0 <= b.left < 1 and 0 <= b.top < 1 and b.width > 0 for b in boxes)
    # The boxes cover the quote's line(s) only: together far less than the page.
    assert sum(b.width * b.height for b in boxes) < 0.05


def test_a_moved_pdf_falls_back_to_the_indexed_text(pdf_doc) -> None:
    assistant, doc, start, end, source = pdf_doc
    source.unlink()
    page = assistant.view(doc.doc_id, start, end)
    assert f"<mark id='quote'>{QUOTE}</mark>" in page
    assert "has moved or changed" in page and "data:image" not in page


def test_text_documents_mark_the_span_and_escape_the_rest(assistant, tmp_path: Path) -> None:
    note = tmp_path / "note.txt"
    note.write_text("Note\n\nA <b>bold</b> claim. The ORR was 41% in ZORBA-2. Done.\n")
    (result,) = assistant.add([note]).results
    doc = assistant.index.load_document(result.doc_id)
    start = doc.text.index("The ORR")
    page = assistant.view(doc.doc_id, start, start + len("The ORR was 41% in ZORBA-2."))
    assert "<mark id='quote'>The ORR was 41% in ZORBA-2.</mark>" in page
    assert "&lt;b&gt;bold&lt;/b&gt;" in page and not re.search(r"<b>bold", page)
    with pytest.raises(RequestError, match="not inside the document"):
        assistant.view(doc.doc_id, 5, 5)
    with pytest.raises(RequestError, match="not inside the document"):
        assistant.view(doc.doc_id, 0, len(doc.text) + 1)
    with pytest.raises(DocumentNotFoundError):
        assistant.view("nope", 0, 1)

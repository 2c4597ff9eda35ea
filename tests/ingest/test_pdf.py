"""PDF loader against real reportlab-made files (tests/fixtures/make_fixtures.py)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from rag.errors import CorruptFileError, EmptyDocumentError, EncryptedFileError, FileTooLargeError
from rag.ingest import LoaderProcess, normalize_text
from rag.ingest import pdf as pdf_module
from rag.ingest.pdf import load_pdf
from rag.ingest.registry import load_file
from rag.settings import IngestSettings
from rag.types import Block, DocMeta, Document, LoadedDocument

DOCS = Path(__file__).resolve().parent.parent / "fixtures" / "docs"
REPORT = DOCS / "trial_report.pdf"

TITLE = "Examplinib versus docetaxel in previously treated advanced NSCLC"
TABLE = (
    "Arm | Patients (n) | Median PFS (months) | HR (95% CI)\n"
    "Examplinib | 212 | 8.4 | 0.62 (0.49-0.78)\n"
    "Docetaxel | 210 | 4.1 | Reference"
)


def assert_spans_are_blocks(doc: Document) -> None:
    assert doc.spans
    previous_end = None
    for span in doc.spans:
        piece = doc.text[span.start : span.end]
        assert piece and piece == piece.strip()
        assert normalize_text(piece, keep_lines=span.kind in ("table", "list")) == piece
        if previous_end is not None:
            assert doc.text[previous_end : span.start] == "\n\n"
        previous_end = span.end
    assert previous_end == len(doc.text)


def flat(block: Block) -> str:
    return normalize_text(block.text, keep_lines=block.kind in ("table", "list"))


@pytest.fixture(scope="module")
def report() -> LoadedDocument:
    return load_pdf(REPORT.read_bytes(), DocMeta())


def test_title_headings_paragraphs_with_pages_and_sections(report: LoadedDocument) -> None:
    got = [(b.kind, flat(b)[:40], b.section, b.page) for b in report.blocks]
    assert got == [
        ("title", TITLE[:40], (), 1),
        ("heading", "Background", (), 1),
        ("paragraph", "Patients with advanced non-small-cell lu", ("Background",), 1),
        ("heading", "Results", (), 1),
        ("paragraph", "A total of 422 patients were randomly as", ("Results",), 1),
        ("table", "Arm | Patients (n) | Median PFS (months)", ("Results",), 1),
        ("heading", "Safety", (), 2),
        ("paragraph", "Grade 3 or higher treatment-related adve", ("Safety",), 2),
        ("paragraph", "The most common adverse events with exam", ("Safety",), 2),
        ("heading", "Conclusions", (), 2),
        ("paragraph", "Examplinib prolonged progression-free su", ("Conclusions",), 2),
    ]
    results = flat(report.blocks[4])
    assert results == (
        "A total of 422 patients were randomly assigned to examplinib or docetaxel. Median "
        "progression-free survival was longer with examplinib than with docetaxel."
    )


def test_table_is_rows_and_its_words_stay_out_of_the_text(report: LoadedDocument) -> None:
    tables = [b for b in report.blocks if b.kind == "table"]
    assert [flat(t) for t in tables] == [TABLE]
    running = " ".join(flat(b) for b in report.blocks if b.kind != "table")
    for word in ("Reference", "0.62", "0.49-0.78", "Patients (n)", "8.4", "212"):
        assert word not in running


def test_metadata_from_pdf_info(report: LoadedDocument) -> None:
    meta = report.meta
    assert meta.title == TITLE
    assert meta.authors == ["Ana Rivera", "Bo Chen"]
    assert meta.date == "2024-03-15"
    assert meta.year == 2024
    assert report.format == "pdf"


def test_sidecar_metadata_wins() -> None:
    given = DocMeta(title="Sidecar title", authors=["Someone Else"], year=2023)
    loaded = load_pdf(REPORT.read_bytes(), given)
    assert loaded.meta.title == "Sidecar title"
    assert loaded.meta.authors == ["Someone Else"]
    assert loaded.meta.year == 2023
    assert loaded.meta.date == "2024-03-15"  # empty fields are still filled


def test_two_columns_read_column_by_column() -> None:
    loaded = load_pdf((DOCS / "two_columns.pdf").read_bytes(), DocMeta())
    starts = [" ".join(flat(b).split()[:3]) for b in loaded.blocks]
    assert starts == [
        "Left column first",
        "Left column second",
        "Right column first",
        "Right column second",
    ]
    assert flat(loaded.blocks[1]) == (
        "Left column second paragraph describing how assay thresholds were harmonised "
        "between laboratories before the pooled analysis was performed."
    )


def test_empty_user_password_is_read(report: LoadedDocument) -> None:
    loaded = load_pdf((DOCS / "encrypted_empty_password.pdf").read_bytes(), DocMeta())
    assert loaded.blocks == report.blocks


@pytest.mark.parametrize(
    ("data", "error", "message"),
    [
        ((DOCS / "encrypted.pdf").read_bytes(), EncryptedFileError, "PDF is encrypted"),
        ((DOCS / "truncated.pdf").read_bytes(), CorruptFileError, "PDF is truncated (no %%EOF"),
        (b"<html>not a pdf</html>", CorruptFileError, "not a PDF (missing %PDF header)"),
        (
            b"%PDF-1.4\nnothing inside\n%%EOF\n",
            CorruptFileError,
            "PDF is truncated or damaged: No /Root object",
        ),
        (
            (DOCS / "scanned_no_text.pdf").read_bytes(),
            EmptyDocumentError,
            "PDF has no extractable text: no text layer, and OCR found no words",
        ),
    ],
    ids=["encrypted", "truncated", "not-pdf", "damaged", "scanned"],
)
def test_bad_pdfs_fail_with_a_specific_reason(
    data: bytes, error: type[Exception], message: str
) -> None:
    with pytest.raises(error) as info:
        load_pdf(data, DocMeta())
    assert type(info.value) is error
    assert str(info.value).startswith(message)


def test_encrypted_message_is_exact() -> None:
    with pytest.raises(EncryptedFileError, match=r"^PDF is encrypted \(password protected\)$"):
        load_pdf((DOCS / "encrypted.pdf").read_bytes(), DocMeta())


def test_page_and_character_caps(monkeypatch: pytest.MonkeyPatch) -> None:
    data = REPORT.read_bytes()
    monkeypatch.setattr(pdf_module, "MAX_PAGES", 1)
    with pytest.raises(FileTooLargeError, match="PDF has 2 pages; the limit is 1"):
        load_pdf(data, DocMeta())
    monkeypatch.setattr(pdf_module, "MAX_PAGES", 2000)
    monkeypatch.setattr(pdf_module, "MAX_CHARS", 500)
    with pytest.raises(FileTooLargeError, match="more than 500 characters"):
        load_pdf(data, DocMeta())


def test_through_the_registry() -> None:
    doc = load_file(REPORT, IngestSettings(), doc_id="x")
    assert doc.doc_id == "x"
    assert doc.format == "pdf"
    assert doc.meta.title == TITLE
    assert_spans_are_blocks(doc)
    by_kind = {s.kind: doc.text[s.start : s.end] for s in doc.spans}
    assert by_kind["table"] == TABLE
    assert by_kind["title"] == TITLE
    pages = {doc.text[s.start : s.end]: s.page for s in doc.spans if s.kind == "heading"}
    assert pages == {"Background": 1, "Results": 1, "Safety": 2, "Conclusions": 2}
    with pytest.raises(EncryptedFileError):
        load_file(DOCS / "encrypted.pdf", IngestSettings(), doc_id="y")


@pytest.fixture(scope="module")
def sandbox() -> Iterator[LoaderProcess]:
    with LoaderProcess(timeout_s=30, max_memory_mb=2048) as process:
        yield process


def test_sandbox_returns_the_same_blocks(sandbox: LoaderProcess, report: LoadedDocument) -> None:
    loaded = sandbox.load("pdf", REPORT.read_bytes(), DocMeta())
    assert loaded.blocks == report.blocks
    assert loaded.meta == report.meta


@pytest.mark.parametrize(
    ("name", "error"),
    [
        ("encrypted.pdf", EncryptedFileError),
        ("truncated.pdf", CorruptFileError),
        ("scanned_no_text.pdf", EmptyDocumentError),
    ],
)
def test_sandbox_sends_errors_back_by_class(
    sandbox: LoaderProcess, name: str, error: type[Exception]
) -> None:
    data = (DOCS / name).read_bytes()
    with pytest.raises(error) as direct:
        load_pdf(data, DocMeta())
    with pytest.raises(error) as remote:
        sandbox.load("pdf", data, DocMeta())
    assert type(remote.value) is type(direct.value)
    assert str(remote.value) == str(direct.value)

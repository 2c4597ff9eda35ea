"""HTML loader: main content without page furniture, headings as sections, tables as rows."""

from __future__ import annotations

import socket
from collections.abc import Iterator
from pathlib import Path

import pytest

from rag.errors import BinaryFileError, EmptyDocumentError
from rag.ingest import LoaderProcess, normalize_text
from rag.ingest import html as html_module
from rag.ingest.html import decode_html, load_html
from rag.ingest.registry import load_file
from rag.settings import IngestSettings
from rag.types import Block, DocMeta, Document, LoadedDocument

DOCS = Path(__file__).resolve().parent.parent / "fixtures" / "docs"
NEWS = DOCS / "news_article.html"

HEADLINE = "Examplinib doubles progression-free survival in lung cancer trial"
TABLE = (
    "Arm | Median PFS (months) | HR (95% CI)\n"
    "Examplinib | 8.4 | 0.62 (0.49–0.78)\n"
    "Docetaxel | 4.1 | Reference"
)
BOILERPLATE = [
    "Advertisement",
    "Skip to content",
    "Subscribe now",
    "Drug approvals",
    "Related stories",
    "Click here to win",
    "Share this article",
    "Privacy policy",
    "newsletter",
    "dataLayer",
    "trackPageView",
    "font-family",
]


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
def news() -> LoadedDocument:
    return load_html(NEWS.read_bytes(), DocMeta())


def test_structure_follows_the_headings(news: LoadedDocument) -> None:
    got = [(b.kind, flat(b)[:30], b.section) for b in news.blocks]
    assert got == [
        ("title", HEADLINE[:30], ()),
        ("paragraph", "An oral kinase inhibitor, exam", ()),
        ("paragraph", "The open-label phase 3 trial e", ()),
        ("heading", "Efficacy results", ()),
        ("paragraph", "Median progression-free surviv", ("Efficacy results",)),
        ("table", "Arm | Median PFS (months) | HR", ("Efficacy results",)),
        ("paragraph", "Overall survival data were imm", ("Efficacy results",)),
        ("heading", "Safety", ()),
        ("paragraph", "Grade 3 or higher treatment-re", ("Safety",)),
        ("list", "Diarrhoea was the most common ", ("Safety",)),
        ("heading", "What comes next", ()),
        ("paragraph", "The investigators plan a confi", ("What comes next",)),
    ]
    assert flat(news.blocks[0]) == HEADLINE
    assert flat(news.blocks[4]) == (
        "Median progression-free survival was 8.4 months with examplinib and 4.1 months with "
        "docetaxel, with a hazard ratio for progression or death of 0.62."
    )


def test_table_rows_and_list_lines(news: LoadedDocument) -> None:
    assert [flat(b) for b in news.blocks if b.kind == "table"] == [TABLE]
    assert [flat(b) for b in news.blocks if b.kind == "list"] == [
        "Diarrhoea was the most common adverse event with examplinib.\n"
        "Neutropenia was the most common adverse event with docetaxel."
    ]
    running = " ".join(flat(b) for b in news.blocks if b.kind != "table")
    assert "Reference" not in running
    assert "0.49–0.78" not in running


def test_boilerplate_is_dropped(news: LoadedDocument) -> None:
    text = "\n".join(b.text for b in news.blocks)
    for phrase in BOILERPLATE:
        assert phrase not in text


def test_metadata(news: LoadedDocument) -> None:
    meta = news.meta
    assert meta.title == HEADLINE
    assert meta.authors == ["Maria Lopez"]
    assert meta.date == "2024-05-14"
    assert meta.year == 2024
    assert meta.url == "https://news.example.org/2024/05/examplinib-pfs"
    assert meta.source == "Oncology Daily"
    assert news.format == "html"


def test_sidecar_metadata_wins() -> None:
    given = DocMeta(title="Given", url="https://example.com/given", authors=["A B"])
    loaded = load_html(NEWS.read_bytes(), given)
    assert (loaded.meta.title, loaded.meta.url, loaded.meta.authors) == (
        "Given",
        "https://example.com/given",
        ["A B"],
    )
    assert loaded.meta.date == "2024-05-14"


def test_never_touches_the_network(monkeypatch: pytest.MonkeyPatch) -> None:
    def refuse(*_: object, **__: object) -> None:
        raise AssertionError("the HTML loader tried to open a network connection")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket, "getaddrinfo", refuse)
    assert load_html(NEWS.read_bytes(), DocMeta()).blocks


def test_empty_page() -> None:
    with pytest.raises(EmptyDocumentError, match=r"^no main text found in HTML$"):
        load_html((DOCS / "empty.html").read_bytes(), DocMeta())


def test_fallback_when_trafilatura_finds_nothing(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(html_module.trafilatura, "extract", lambda *a, **k: None)
    loaded = load_html(NEWS.read_bytes(), DocMeta())
    kinds = [(b.kind, flat(b)) for b in loaded.blocks]
    assert kinds[0] == ("title", HEADLINE)
    assert ("heading", "Efficacy results") in kinds
    assert ("table", TABLE) in kinds
    safety = next(b for b in loaded.blocks if flat(b).startswith("Grade 3 or higher"))
    assert safety.section == ("Safety",)
    text = "\n".join(b.text for b in loaded.blocks)
    for phrase in BOILERPLATE:
        assert phrase not in text
    assert loaded.meta.title == HEADLINE


@pytest.mark.parametrize(
    ("data", "expected"),
    [
        ('<meta charset="iso-8859-1"><p>Caf\xe9 na\xefve</p>'.encode("latin-1"), "Café naïve"),
        (
            '<meta http-equiv="Content-Type" content="text/html; charset=windows-1252">'
            "<p>\u201cquoted\u201d</p>".encode("cp1252"),
            "\u201cquoted\u201d",
        ),
        ("\ufeff<p>BOM text µg</p>".encode(), "BOM text µg"),
        ("<p>UTF-16 text µg</p>".encode("utf-16"), "UTF-16 text µg"),
        ("<p>undeclared caf\xe9</p>".encode("cp1252"), "undeclared café"),
        ("<p>undeclared UTF-8 10⁹/L</p>".encode(), "undeclared UTF-8 10⁹/L"),
    ],
    ids=["meta-charset", "http-equiv", "utf8-bom", "utf16-bom", "cp1252-guess", "utf8"],
)
def test_decoding(data: bytes, expected: str) -> None:
    assert expected in decode_html(data)


def test_declared_charset_reaches_the_blocks() -> None:
    page = (
        '<html><head><meta charset="iso-8859-1"><title>Caf\xe9 study</title></head>'
        "<body><article><h1>Caf\xe9 study</h1><p>Patients drank caf\xe9 au lait daily; "
        "the na\xefve cohort did not. This paragraph is long enough to be kept as the main "
        "text of the page by the extractor.</p></article></body></html>"
    ).encode("latin-1")
    loaded = load_html(page, DocMeta())
    assert loaded.meta.title == "Café study"
    assert any("café au lait" in b.text and "naïve" in b.text for b in loaded.blocks)


def test_binary_data_is_refused() -> None:
    with pytest.raises(BinaryFileError):
        load_html(b"<html>\x00\x01\x02\x00binary", DocMeta())


def test_through_the_registry() -> None:
    doc = load_file(NEWS, IngestSettings(), doc_id="x")
    assert doc.format == "html"
    assert doc.meta.title == HEADLINE
    assert_spans_are_blocks(doc)
    spans = {doc.text[s.start : s.end]: s for s in doc.spans}
    assert spans[TABLE].kind == "table"
    assert spans[TABLE].section == ("Efficacy results",)
    assert all(s.page is None for s in doc.spans)
    with pytest.raises(EmptyDocumentError, match="no main text found in HTML"):
        load_file(DOCS / "empty.html", IngestSettings(), doc_id="y")


@pytest.fixture(scope="module")
def sandbox() -> Iterator[LoaderProcess]:
    with LoaderProcess(timeout_s=30, max_memory_mb=2048) as process:
        yield process


def test_sandbox_returns_the_same_blocks(sandbox: LoaderProcess, news: LoadedDocument) -> None:
    loaded = sandbox.load("html", NEWS.read_bytes(), DocMeta())
    assert loaded.blocks == news.blocks
    assert loaded.meta == news.meta


def test_sandbox_sends_errors_back_by_class(sandbox: LoaderProcess) -> None:
    with pytest.raises(EmptyDocumentError, match=r"^no main text found in HTML$"):
        sandbox.load("html", (DOCS / "empty.html").read_bytes(), DocMeta())

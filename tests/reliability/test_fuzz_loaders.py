"""Property-based fuzzing of every loader: a document that keeps its promises, or an IngestError.

Any input either loads into blocks whose normalised Document satisfies the span invariant
(each span is the exact, normalised text of its block, in order, joined by a blank line, NFC,
no control characters), or raises an IngestError subclass with a one-line reason. Never another
exception, never a hang: HTML, JATS and PDF go through the sandboxed LoaderProcess with a time
limit, as in a real ingest, and a parser exception that leaks past the loader ("parser failed:")
or a timeout on these small inputs fails the test. Deterministic (derandomized, no example
database) and sized to run in well under a minute.
"""

from __future__ import annotations

import itertools
import re
import unicodedata
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from rag.errors import EmptyDocumentError, IngestError, LoaderTimeoutError
from rag.ingest import LoaderProcess, build_document, normalize_text
from rag.ingest.normalize import BLOCK_SEPARATOR
from rag.ingest.registry import run_loader
from rag.types import DocMeta, LoadedDocument

DOCS = Path(__file__).resolve().parents[1] / "fixtures" / "docs"
TIMEOUT_S = 20.0  # generous for inputs of a few KB: reaching it means the parser hung
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")

FUZZ = settings(
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)


@pytest.fixture(scope="module")
def sandbox() -> Iterator[LoaderProcess]:
    with LoaderProcess(TIMEOUT_S, 2048) as process:
        yield process


def check_document(loaded: LoadedDocument) -> None:
    """The span invariant of the normalised document built from a loader's blocks."""
    assert isinstance(loaded, LoadedDocument)
    try:
        doc = build_document(loaded, doc_id="fuzz", source="fuzz", digest="0")
    except EmptyDocumentError:
        return  # whitespace-only blocks: refused by name, which is allowed
    expected = [
        t for b in loaded.blocks if (t := normalize_text(b.text, keep_lines=b.kind in ("table",
                                                                                       "list")))
    ]  # fmt: skip
    assert [doc.text[s.start : s.end] for s in doc.spans] == expected
    assert doc.text == BLOCK_SEPARATOR.join(expected)
    for span in doc.spans:
        piece = doc.text[span.start : span.end]
        assert 0 <= span.start < span.end <= len(doc.text)
        assert piece == piece.strip()
    for a, b in itertools.pairwise(doc.spans):
        assert b.start == a.end + len(BLOCK_SEPARATOR)
    assert not _CONTROL.search(doc.text)
    assert unicodedata.is_normalized("NFC", doc.text)
    assert isinstance(doc.meta.title, str)


def check_error(exc: IngestError) -> None:
    message = str(exc)
    assert message.strip() and "\n" not in message, repr(message)
    assert not message.startswith("parser failed:"), f"unexpected parser exception: {message}"
    assert not isinstance(exc, LoaderTimeoutError), f"hang on a small input: {message}"


def run_direct(fmt: str, data: bytes) -> None:
    try:
        loaded = run_loader(fmt, data, DocMeta())
    except IngestError as exc:
        event(type(exc).__name__)  # outcome mix: --hypothesis-show-statistics
        check_error(exc)
        return
    event("loaded")
    check_document(loaded)


def run_sandboxed(sandbox: LoaderProcess, fmt: str, data: bytes) -> None:
    try:
        loaded = sandbox.load(fmt, data, DocMeta())
    except IngestError as exc:
        event(type(exc).__name__)
        check_error(exc)
        return
    event("loaded")
    check_document(loaded)


# -- strategies -------------------------------------------------------------------------------

# Characters that stress the parsers and the normaliser: markup, whitespace of every kind,
# soft hyphens and zero-width characters next to combining accents, ligatures, controls.
TRICKY = (
    "#*_[]()!`>-|:\n\r\t \f\v<>&;=\"'/\\0123456789aAeéZ"
    "\u00a0\u00ad\u0301\u200b\u200d\u2028\u2029\ufb01\ufeff\u202e\x00\x01\x1b\x7f"
)
# Fragments whose combinations matter: an accent after a soft hyphen or zero-width space, a
# hyphen at a line end, ligatures, headings, tables, list markers, blank lines, bidi controls.
FRAGMENTS = [
    "e", "cafe", "\u00ad", "\u0301", "\u200b", "\u0327", "\ufb01", "\u2028", "-\n", "immuno-",
    "\ntherapy", " ", "  ", "\t", "\n", "\n\n", "\r\n", "# ", "## Results\n", "| a | b |\n",
    "|---|---|\n", "* ", "1. ", "> ", "```\n", "[1]", "PD-", "L1", "7.1 months", "\u00a0",
    "\u202e", "\x0c", "Tags\n\nx y z", "Advertisement",
]  # fmt: skip
tricky_text = (
    st.text(alphabet=TRICKY, max_size=3000)
    | st.text(max_size=1000)
    | st.lists(st.sampled_from(FRAGMENTS), max_size=300).map("".join)
)
encodings = st.sampled_from(["utf-8", "utf-8-sig", "utf-16", "latin-1"])


@st.composite
def encoded_text(draw: st.DrawFn) -> bytes:
    text = draw(tricky_text)
    return text.encode(draw(encodings), errors="replace")


XML_SAFE = "".join(ch for ch in TRICKY if ch not in "<&\x00\x01\x1b\f\v")  # legal in XML 1.0


@st.composite
def markup(draw: st.DrawFn, tags: list[str], *, depth: int = 4, sloppy: bool = True) -> str:
    """Nested markup over a tag vocabulary, with odd text and entities; ``sloppy`` markup may be
    unbalanced and hold stray ``<``/``&`` (HTML parsers must cope, XML ones must refuse)."""
    parts: list[str] = []
    alphabet = TRICKY if sloppy else XML_SAFE
    entities = ["&amp;", "&#x2014;", "&lt;", "<!-- c -->", "<![CDATA[x <y> & z]]>", "<?pi x?>"]
    if sloppy:
        entities += ["&#0;", "&nbsp;", "&bogus;", "&#xD800;", "<br/>", "<br>", "</p>", "<"]
    for _ in range(draw(st.integers(0, 5))):
        choice = draw(st.integers(0, 9))
        if choice < 4 and depth > 0:
            tag = draw(st.sampled_from(tags))
            attrs = draw(st.sampled_from(["", ' class="x"', ' id="a"', " rend='bold'",
                                          ' sec-type="results"', ' xml:lang="en"']))  # fmt: skip
            inner = draw(markup(tags, depth=depth - 1, sloppy=sloppy))
            close = f"</{tag}>"
            if sloppy:
                close = draw(st.sampled_from([close, close, "", "</p>"]))
            parts.append(f"<{tag}{attrs}>{inner}{close}")
        elif choice < 6:
            parts.append(draw(st.text(alphabet=alphabet, max_size=40)))
        elif choice < 7:
            parts.append(draw(st.sampled_from(entities)))
        else:
            parts.append("Median PFS was 7.1 months (HR 0.46; P = .001) in the trial. ")
    return "".join(parts)


HTML_TAGS = ["p", "div", "h1", "h2", "h3", "table", "tr", "td", "th", "ul", "ol", "li", "pre",
             "article", "main", "nav", "script", "style", "a", "span", "section", "blockquote",
             "title", "head", "body", "html", "br", "figure", "figcaption", "aside"]  # fmt: skip
JATS_TAGS = ["front", "article-meta", "title-group", "article-title", "abstract", "body", "sec",
             "title", "p", "table-wrap", "table", "tr", "td", "th", "caption", "fig", "list",
             "list-item", "xref", "ext-link", "disp-formula", "inline-formula", "fn", "ref-list",
             "back", "label", "boxed-text", "disp-quote", "italic", "bold", "sup", "sub",
             "floats-group", "pub-date", "year", "contrib", "name", "surname"]  # fmt: skip


@st.composite
def html_documents(draw: st.DrawFn) -> bytes:
    body = draw(markup(HTML_TAGS))
    head = draw(st.sampled_from(["", "<!DOCTYPE html>", '<meta charset="latin-1">',
                                 '<?xml version="1.0" encoding="utf-8"?>',
                                 '<meta charset="utf-16">']))  # fmt: skip
    return (head + "<html><body>" + body + "</body></html>").encode(
        draw(st.sampled_from(["utf-8", "utf-8", "latin-1", "utf-16"])), errors="replace"
    )


@st.composite
def jats_documents(draw: st.DrawFn) -> bytes:
    """A JATS skeleton (front matter, abstract, body) with fuzzed markup in every slot."""
    sloppy = draw(st.integers(0, 4)) == 0

    def slot() -> str:
        return draw(markup(JATS_TAGS, sloppy=sloppy))

    title = f"<title-group><article-title>{slot()}</article-title></title-group>"
    abstract = f"<abstract>{slot()}</abstract>" if draw(st.booleans()) else ""
    front = f"<front><article-meta>{title}{abstract}</article-meta></front>"
    body = f"<body><sec><title>{slot()}</title><p>{slot()}</p>{slot()}</sec>{slot()}</body>"
    article = f'<article article-type="research-article">{front}{body}{slot()}</article>'
    wrapper = draw(st.sampled_from(["{}", "{}", "{}", "<pmc-articleset>{}</pmc-articleset>",
                                    "<html>{}</html>"]))  # fmt: skip
    decl = draw(st.sampled_from(["", '<?xml version="1.0"?>', '<?xml version="1.0" '
                                 'encoding="UTF-8"?>', "<!DOCTYPE article PUBLIC \"-//NLM//DTD "
                                 'JATS//EN" "JATS-archivearticle1.dtd">']))  # fmt: skip
    text = decl + wrapper.format(article)
    encoding = draw(st.sampled_from(["utf-8", "utf-8", "utf-16"]))
    return text.encode(encoding, errors="replace")


@st.composite
def mutated(draw: st.DrawFn, original: bytes, max_ops: int = 4) -> bytes:
    """A real file with a few random edits: flips, deletions, insertions, cuts, repeats."""
    data = bytearray(original)
    for _ in range(draw(st.integers(1, max_ops))):
        if not data:
            break
        op = draw(st.integers(0, 5))
        pos = draw(st.integers(0, len(data) - 1))
        if op <= 1:
            data[pos] = draw(st.integers(0, 255))
        elif op == 2:
            del data[pos : pos + draw(st.integers(1, 64))]
        elif op == 3:
            data[pos:pos] = draw(st.binary(min_size=1, max_size=32))
        elif op == 4:
            data[pos:pos] = draw(
                st.sampled_from(
                    [
                        b"<<",
                        b">>",
                        b"[",
                        b"]",
                        b" 0 R",
                        b"endobj",
                        b"stream",
                        b"%%EOF",
                        b"(",
                        b"\\",
                        b"<",
                    ]
                )
            )
        else:
            end = min(len(data), pos + draw(st.integers(1, 200)))
            data[end:end] = data[pos:end]
    if draw(st.integers(0, 3)) == 0 and len(data) > 10:
        data = data[: draw(st.integers(1, len(data)))] + (b"\n%%EOF\n" if draw(st.booleans())
                                                          else b"")  # fmt: skip
    return bytes(data)


PDF = (DOCS / "trial_report.pdf").read_bytes()
NEWS = (DOCS / "news_article.html").read_bytes()
NXML = (DOCS / "pmc_article.nxml").read_bytes()


# -- properties -------------------------------------------------------------------------------


@settings(FUZZ, max_examples=2000)
@given(data=encoded_text() | st.binary(max_size=800))
def test_text_loader(data: bytes) -> None:
    run_direct("text", data)


@settings(FUZZ, max_examples=2000)
@given(data=encoded_text() | st.binary(max_size=800))
def test_markdown_loader(data: bytes) -> None:
    run_direct("markdown", data)


@settings(FUZZ, max_examples=500)
@given(data=html_documents() | mutated(NEWS) | st.binary(max_size=400))
def test_html_loader(sandbox: LoaderProcess, data: bytes) -> None:
    run_sandboxed(sandbox, "html", data)


@settings(FUZZ, max_examples=800)
@given(data=jats_documents() | mutated(NXML) | st.binary(max_size=400))
def test_jats_loader(sandbox: LoaderProcess, data: bytes) -> None:
    run_sandboxed(sandbox, "jats", data)


@settings(FUZZ, max_examples=500)
@given(data=mutated(PDF))
def test_pdf_loader(sandbox: LoaderProcess, data: bytes) -> None:
    run_sandboxed(sandbox, "pdf", data)


def test_the_mutated_pdfs_are_mostly_still_pdfs() -> None:
    """Guard against a strategy that only ever produces garbage the header check refuses."""
    from hypothesis import find

    damaged = find(mutated(PDF), lambda d: d.startswith(b"%PDF-") and d != PDF and
                   b"%%EOF" in d[-4096:], settings=FUZZ)  # fmt: skip
    assert damaged.startswith(b"%PDF-")

"""JATS/PMC loader: metadata, structured abstract, nested sections, tables; hostile XML refused."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

from rag.errors import (
    CorruptFileError,
    EmptyDocumentError,
    UnsafeInputError,
    UnsupportedFormatError,
)
from rag.ingest import LoaderProcess, normalize_text
from rag.ingest.jats import load_jats
from rag.ingest.registry import load_file
from rag.settings import IngestSettings
from rag.types import Block, DocMeta, Document, LoadedDocument

DOCS = Path(__file__).resolve().parent.parent / "fixtures" / "docs"
ARTICLE = DOCS / "pmc_article.nxml"

TITLE = (
    "Examplinib versus docetaxel in previously treated advanced non-small-cell lung cancer "
    "(EXAMPLE-3): a randomised, open-label, phase 3 trial"
)
TABLE = (
    "Outcome | Examplinib (n=212) | Docetaxel (n=210)\n"
    "Median PFS, months (95% CI) | 8.4 (7.1–9.6) | 4.1 (3.5–4.8)\n"
    "Objective response, n (%) | 74 (35) | 27 (13)"
)
UNSAFE = "XML declares entities (possible billion-laughs / external-entity attack); refused"


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


def wrap(front: str, body: str) -> bytes:
    """A minimal article with the given article-meta additions and body."""
    return (
        '<?xml version="1.0"?>\n<article><front><article-meta>'
        "<title-group><article-title>T</article-title></title-group>"
        f"{front}</article-meta></front><body>{body}</body></article>"
    ).encode()


@pytest.fixture(scope="module")
def article() -> LoadedDocument:
    return load_jats(ARTICLE.read_bytes(), DocMeta())


def test_metadata(article: LoadedDocument) -> None:
    meta = article.meta
    assert meta.title == TITLE
    assert meta.authors == ["Ana M. Rivera", "Bo Chen", "EXAMPLE-3 Investigators"]
    assert meta.journal == "Journal of Example Oncology"
    assert meta.date == "2024-05-14"  # the epub date, not collection/ppub/received
    assert meta.year == 2024
    assert meta.pmid == "39000001"
    assert meta.pmcid == "PMC11000001"
    assert meta.doi == "10.5555/jeo.2024.0117"
    assert meta.kind == "research"
    assert meta.extra["keywords"] == ["Non-small-cell lung cancer", "Kinase inhibitor", "Docetaxel"]
    assert article.format == "jats"


def test_sidecar_metadata_wins() -> None:
    given = DocMeta(title="Given", pmid="1", year=1999, authors=["X Y"])
    meta = load_jats(ARTICLE.read_bytes(), given).meta
    assert (meta.title, meta.pmid, meta.year, meta.authors) == ("Given", "1", 1999, ["X Y"])
    assert meta.doi == "10.5555/jeo.2024.0117"


def test_blocks_in_reading_order(article: LoadedDocument) -> None:
    got = [(b.kind, flat(b)[:32], b.section) for b in article.blocks]
    methods = ("Methods",)
    results = ("Results",)
    assert got == [
        ("title", TITLE[:32], ()),
        ("abstract", "Patients with advanced non-small", ("Abstract", "Background")),
        ("abstract", "Median progression-free survival", ("Abstract", "Findings")),
        ("heading", "Introduction", ()),
        ("paragraph", "Docetaxel has been the standard ", ("Introduction",)),
        ("heading", "Methods", ()),
        ("heading", "Study design and participants", methods),
        (
            "paragraph",
            "EXAMPLE-3 was a randomised, open",
            (*methods, "Study design and participants"),
        ),
        ("heading", "Outcomes", methods),
        ("paragraph", "The primary endpoint was progres", (*methods, "Outcomes")),
        ("heading", "Results", ()),
        ("paragraph", "Between March 2021 and June 2022", results),
        ("caption", "Table 1. Efficacy outcomes in th", results),
        ("table", "Outcome | Examplinib (n=212) | D", results),
        ("caption", "PFS, progression-free survival; ", results),
        ("caption", "Figure 1. Kaplan–Meier estimates", results),
        ("paragraph", "Grade 3 or higher treatment-rela", results),
        ("heading", "Discussion", ()),
        ("paragraph", "Examplinib improved progression-", ("Discussion",)),
    ]


def test_exact_texts(article: LoadedDocument) -> None:
    texts = [flat(b) for b in article.blocks]
    assert texts[0] == TITLE
    assert texts[2] == (
        "Median progression-free survival was 8.4 months (95% CI 7.1–9.6) with examplinib and "
        "4.1 months (3.5–4.8) with docetaxel (hazard ratio 0.62, 95% CI 0.49–0.78; p<0.0001)."
    )
    # Citation markers are dropped with their brackets; italics are flattened.
    assert texts[4] == (
        "Docetaxel has been the standard second-line treatment for advanced NSCLC for two "
        "decades. Alterations in EXK1 occur in about 4% of lung adenocarcinomas."
    )
    assert "Table 1. Efficacy outcomes in the intention-to-treat population" in texts
    assert TABLE in texts
    assert (
        "Figure 1. Kaplan–Meier estimates of progression-free survival. "
        "Tick marks indicate censored patients."
    ) in texts


def test_back_matter_and_front_noise_are_left_out(article: LoadedDocument) -> None:
    text = "\n".join(b.text for b in article.blocks)
    for phrase in (
        "We thank the patients",  # ack
        "consulting fees",  # fn-group
        "Second-line chemotherapy for lung cancer revisited",  # ref-list
        "Docetaxel after platinum failure",
        "Department of Medical Oncology",  # aff
        "Creative Commons",  # license
        "a.rivera@example.org",
        "Handling",  # editor
    ):
        assert phrase not in text
    assert "Handling Editor" not in article.meta.authors


def test_pmc_articleset_wrapper(article: LoadedDocument) -> None:
    raw = ARTICLE.read_text(encoding="utf-8")
    inner = raw[raw.index("<article ") :]
    wrapped = f'<?xml version="1.0"?>\n<pmc-articleset>{inner}</pmc-articleset>'.encode()
    assert load_jats(wrapped, DocMeta()).blocks == article.blocks
    two = f"<pmc-articleset>{inner}{inner}</pmc-articleset>".encode()
    with pytest.raises(UnsupportedFormatError, match="holds 2 articles"):
        load_jats(two, DocMeta())


def test_jats_1_2_dates_and_dtd_entities() -> None:
    front = (
        '<pub-date date-type="pub" publication-format="print"><year>2020</year></pub-date>'
        '<pub-date date-type="pub" publication-format="electronic">'
        "<day>3</day><month>Feb</month><year>2019</year></pub-date>"
        '<article-id pub-id-type="pmcid">PMC42</article-id>'
    )
    data = wrap(front, "<p>5&nbsp;mg&#x000b7;m<sup>2</sup></p>")
    data = data.replace(
        b"<article>",
        b'<!DOCTYPE article PUBLIC "-//NLM//DTD JATS//EN" "JATS-archivearticle1.dtd">\n<article>',
    )
    loaded = load_jats(data, DocMeta())
    assert (loaded.meta.date, loaded.meta.year, loaded.meta.pmcid) == ("2019-02-03", 2019, "PMC42")
    assert flat(loaded.blocks[1]) == "5 mg·m2"  # &nbsp; (declared only in the DTD) kept


def test_table_inside_paragraph_is_its_own_block() -> None:
    body = (
        "<sec><title>Results</title><p>Before the table."
        "<table-wrap><label>Table 2</label><caption><title>Doses</title></caption>"
        "<table><tr><th>Dose</th><th>n</th></tr><tr><td>10 mg</td><td>5</td></tr></table>"
        "</table-wrap> After the table.</p>"
        "<list list-type='bullet'><list-item><p>first</p></list-item>"
        "<list-item><p>second</p></list-item></list></sec>"
    )
    blocks = load_jats(wrap("", body), DocMeta()).blocks
    assert [(b.kind, flat(b)) for b in blocks[2:]] == [
        ("paragraph", "Before the table. After the table."),
        ("caption", "Table 2. Doses"),
        ("table", "Dose | n\n10 mg | 5"),
        ("list", "first\nsecond"),
    ]
    assert all(b.section == ("Results",) for b in blocks[2:])


def test_citations_and_formulas_flatten_cleanly() -> None:
    body = (
        '<p>Known<sup><xref ref-type="bibr" rid="b1">1</xref>,'
        '<xref ref-type="bibr" rid="b2">2</xref></sup>. As reported '
        '(<xref ref-type="bibr" rid="b3">Smith et al., 2020</xref>; '
        '<xref ref-type="bibr" rid="b4">Lee, 2019</xref>), ranges '
        '[<xref ref-type="bibr">1</xref>&#x2013;<xref ref-type="bibr">3</xref>] and '
        "m<sup>2</sup> area. Formula <inline-formula><alternatives>"
        "<tex-math>\\documentclass{minimal} a+b</tex-math>"
        '<mml:math xmlns:mml="http://www.w3.org/1998/Math/MathML"><mml:mi>a</mml:mi>'
        "<mml:mo>+</mml:mo><mml:mi>b</mml:mi></mml:math></alternatives></inline-formula>.</p>"
    )
    blocks = load_jats(wrap("", body), DocMeta()).blocks
    assert flat(blocks[1]) == (
        "Known. As reported (Smith et al., 2020; Lee, 2019), ranges and m2 area. Formula a+b."
    )


@pytest.mark.parametrize(
    ("name", "error", "message"),
    [
        ("billion_laughs.xml", UnsafeInputError, UNSAFE),
        ("xxe.xml", UnsafeInputError, UNSAFE),
        (
            "malformed.xml",
            CorruptFileError,
            "malformed XML: Opening and ending tag mismatch: article-meta line 4 and front, "
            "line 6, column 11",
        ),
        ("not_jats.xml", UnsupportedFormatError, "XML is not a JATS/PMC article (root <rss>)"),
    ],
)
def test_bad_xml_fails_with_a_specific_reason(
    name: str, error: type[Exception], message: str
) -> None:
    with pytest.raises(error) as info:
        load_jats((DOCS / name).read_bytes(), DocMeta())
    assert type(info.value) is error
    assert str(info.value) == message


def test_utf16_entity_declarations_are_refused_too() -> None:
    data = (DOCS / "xxe.xml").read_text(encoding="utf-8").replace("UTF-8", "UTF-16")
    with pytest.raises(UnsafeInputError):
        load_jats(data.encode("utf-16"), DocMeta())


def test_article_without_text() -> None:
    data = b"<article><front><article-meta></article-meta></front><body/></article>"
    with pytest.raises(EmptyDocumentError, match="no abstract or body text"):
        load_jats(data, DocMeta())


@pytest.mark.parametrize("suffix", [".nxml", ".xml"])
def test_through_the_registry(tmp_path: Path, suffix: str) -> None:
    path = tmp_path / f"article{suffix}"
    shutil.copy(ARTICLE, path)
    doc = load_file(path, IngestSettings(), doc_id="x")
    assert doc.format == "jats"
    assert doc.meta.pmcid == "PMC11000001"
    assert_spans_are_blocks(doc)
    spans = {doc.text[s.start : s.end]: s for s in doc.spans}
    assert spans[TABLE].kind == "table"
    assert spans["Outcomes"].section == ("Methods",)
    assert doc.text.startswith(TITLE + "\n\n")


def test_registry_refuses_hostile_xml() -> None:
    with pytest.raises(UnsafeInputError, match="refused"):
        load_file(DOCS / "billion_laughs.xml", IngestSettings(), doc_id="x")


@pytest.fixture(scope="module")
def sandbox() -> Iterator[LoaderProcess]:
    with LoaderProcess(timeout_s=30, max_memory_mb=2048) as process:
        yield process


def test_sandbox_returns_the_same_blocks(sandbox: LoaderProcess, article: LoadedDocument) -> None:
    loaded = sandbox.load("jats", ARTICLE.read_bytes(), DocMeta())
    assert loaded.blocks == article.blocks
    assert loaded.meta == article.meta


@pytest.mark.parametrize(
    ("name", "error"),
    [
        ("billion_laughs.xml", UnsafeInputError),
        ("xxe.xml", UnsafeInputError),
        ("malformed.xml", CorruptFileError),
        ("not_jats.xml", UnsupportedFormatError),
    ],
)
def test_sandbox_sends_errors_back_by_class(
    sandbox: LoaderProcess, name: str, error: type[Exception]
) -> None:
    data = (DOCS / name).read_bytes()
    with pytest.raises(error) as direct:
        load_jats(data, DocMeta())
    with pytest.raises(error) as remote:
        sandbox.load("jats", data, DocMeta())
    assert type(remote.value) is type(direct.value)
    assert str(remote.value) == str(direct.value)

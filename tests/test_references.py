"""References out: every format parses back with a real parser and keeps what ingestion read."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import bibtexparser
import pytest
import rispy
from bibtexparser.middlewares import LatexDecodingMiddleware
from typer.testing import CliRunner

from rag.errors import DocumentNotFoundError, RequestError
from rag.references import check_format, export, split_name
from rag.types import DocMeta

FIXTURES = Path(__file__).parent / "fixtures"

AWKWARD = DocMeta(
    title="PD-1 & CTLA-4 {dual} blockade in 50% of T_cell-rich tumours: Müller's α-cohort",
    authors=["Müller, Jürgen", "Ana María López", "WHO Working Group"],
    date="2024-05-14",
    year=2024,
    journal="J. Immunother. Cancer",
    doi="10.1136/jitc-2024_0117",
    pmid="38000001",
    pmcid="PMC11000009",
)


def _bib(text: str) -> list[dict[str, str]]:
    library = bibtexparser.parse_string(text, append_middleware=[LatexDecodingMiddleware()])
    assert not library.failed_blocks
    return [
        {k: f.value for k, f in e.fields_dict.items()} | {"_key": e.key} for e in library.entries
    ]


def test_bibtex_round_trips_awkward_text_and_keeps_identifiers_verbatim() -> None:
    text = export([("doc-1", AWKWARD), ("doc-2", DocMeta(title="Untitled note"))], "bibtex")
    first, second = _bib(text)
    assert first["title"] == AWKWARD.title  # &, %, _, braces and non-ASCII survive
    assert first["author"] == "Müller, Jürgen and López, Ana María and WHO Working Group"
    assert first["journal"] == "J. Immunother. Cancer" and first["year"] == "2024"
    assert first["doi"] == AWKWARD.doi and "\\_" not in text.split("doi = ")[1].split("\n")[0]
    assert (first["pmid"], first["pmcid"]) == ("38000001", "PMC11000009")
    assert first["_key"] == "muller2024ctla"
    # Nothing guessed: a document without authors, date or journal has none of those fields.
    assert set(second) == {"title", "note", "_key"} and second["title"] == "Untitled note"


def test_ris_and_csl_json_parse_back_with_the_same_fields() -> None:
    (entry,) = rispy.loads(export([("doc-1", AWKWARD)], "ris"))
    assert entry["type_of_reference"] == "JOUR" and entry["title"] == AWKWARD.title
    assert entry["authors"] == ["Müller, Jürgen", "López, Ana María", "WHO Working Group"]
    assert (entry["year"], entry["doi"], entry["accession_number"]) == (
        "2024",
        AWKWARD.doi,
        "38000001",
    )
    assert entry["notes"] == ["PMCID: PMC11000009"]

    (item,) = json.loads(export([("doc-1", AWKWARD)], "csl-json"))
    assert item["type"] == "article-journal" and item["title"] == AWKWARD.title
    assert item["author"][:2] == [
        {"family": "Müller", "given": "Jürgen"},
        {"family": "López", "given": "Ana María"},
    ]
    assert item["issued"] == {"date-parts": [[2024, 5, 14]]}
    assert (item["DOI"], item["PMID"], item["PMCID"]) == (AWKWARD.doi, "38000001", "PMC11000009")


def test_names_and_formats() -> None:
    assert split_name("Rivera, Ana M.") == ("Rivera", "Ana M.")
    assert split_name("Ana M. Rivera") == ("Rivera", "Ana M.")
    assert check_format("BibTeX") == "bibtex" and check_format("csl") == "csl-json"
    with pytest.raises(RequestError, match=r"unknown citation format 'endnote'.*bibtex, ris"):
        check_format("endnote")


def test_an_ingested_jats_article_exports_what_its_front_matter_says(assistant, tmp_path) -> None:
    source = tmp_path / "article.nxml"
    shutil.copy(FIXTURES / "docs" / "pmc_article.nxml", source)
    (doc_id,) = [r.doc_id for r in assistant.add([source]).results]
    (entry,) = _bib(assistant.references([doc_id], "bibtex"))
    assert entry["title"].startswith("Examplinib versus docetaxel")
    assert entry["author"].startswith("Rivera, Ana M. and Chen, Bo")
    assert "Editor" not in entry["author"]  # an editor is not an author
    assert entry["journal"] == "Journal of Example Oncology" and entry["year"] == "2024"
    assert (entry["doi"], entry["pmid"]) == ("10.5555/jeo.2024.0117", "39000001")
    assert entry["pmcid"] == "PMC11000001"
    with pytest.raises(DocumentNotFoundError, match="no indexed document with id 'nope'"):
        assistant.references([doc_id, "nope"], "ris")


def test_cli_exports_the_library_to_a_file(tmp_path: Path) -> None:
    from rag.cli import app

    index, out = str(tmp_path / "idx"), tmp_path / "refs.ris"
    source = tmp_path / "docs"
    source.mkdir()
    shutil.copy(FIXTURES / "docs" / "pmc_article.nxml", source / "article.nxml")
    runner = CliRunner()
    assert runner.invoke(app, ["index", "add", str(source), "--index", index]).exit_code == 0
    done = runner.invoke(
        app, ["index", "cite", "--format", "ris", "--out", str(out), "--index", index]
    )
    assert done.exit_code == 0, done.output
    (entry,) = rispy.loads(out.read_text(encoding="utf-8"))
    assert entry["doi"] == "10.5555/jeo.2024.0117"
    bad = runner.invoke(app, ["index", "cite", "--format", "endnote", "--index", index])
    assert bad.exit_code != 0 and "unknown citation format 'endnote'" in bad.output
    assert not list(tmp_path.glob(".refs.ris*"))  # no temp file left behind


def test_ask_cite_exports_the_answers_cited_documents_in_citation_order(seed_index) -> None:
    from rag.cli import answer as cli
    from rag.cli import app
    from rag.schemas import AnswerResponse, Citation

    docs = {d.title: d.doc_id for d in seed_index.documents()}
    review = next(v for k, v in docs.items() if k.startswith("Chemo-Radio"))
    news = next(v for k, v in docs.items() if k.startswith("Innovative"))

    def cite(n: int, doc_id: str) -> Citation:
        return Citation(
            number=n, chunk_id=f"{doc_id}#x", doc_id=doc_id, title="", char_start=0,
            char_end=1, passage="p",
        )  # fmt: skip

    cited = [cite(1, review), cite(2, news), cite(3, review)]
    response = AnswerResponse(question="q", answer="a", abstained=False, citations=cited)
    entries = _bib(cli._references(seed_index, response, "bibtex"))
    assert [e["note"] for e in entries] == [f"onco-rag document {d}" for d in (review, news)]
    assert entries[0]["doi"] == "10.3390/cancers18010137"
    # A format typo is refused before any model loads.
    bad = CliRunner().invoke(app, ["ask", "What was the ORR?", "--cite", "endnote"])
    assert bad.exit_code != 0 and "unknown citation format 'endnote'" in bad.output

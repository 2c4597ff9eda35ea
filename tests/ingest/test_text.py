from __future__ import annotations

from pathlib import Path

import pytest

from rag.errors import BinaryFileError, DecodeError, EmptyDocumentError, UnsupportedFormatError
from rag.ingest.registry import load_file
from rag.settings import IngestSettings
from rag.types import DocMeta


def _load(path: Path):
    return load_file(path, IngestSettings(), doc_id="doc")


def test_seed_news_text_keeps_paragraphs_and_drops_ads(seeds: Path) -> None:
    doc = _load(seeds / "000_e0a9c25fbc4c4afa.txt")
    assert doc.meta.title == "Innovative Strategies Target Immunotherapy Resistance in NSCLC"
    assert doc.meta.kind == "news"  # from the sidecar metadata file
    assert "HR, 0.46; P < .001" in doc.text
    assert "Fake Ad Placeholder" not in doc.text
    assert "Advertisement" not in doc.text
    assert "cancerNSCLCimmunotherapy" not in doc.text  # the tag cloud is not prose
    for span in doc.spans:
        piece = doc.text[span.start : span.end]
        assert piece and piece == piece.strip()


def test_seed_markdown_style_text_gets_sections(seeds: Path) -> None:
    doc = _load(seeds / "002_b22e3dff1adcf684.txt")
    sections = {s.section for s in doc.spans if s.kind == "paragraph"}
    assert ("Abstract",) in sections
    assert ("Key findings",) in {s.section for s in doc.spans if s.kind == "list"}
    assert "**" not in doc.text  # emphasis markers are formatting, not content
    assert doc.meta.authors[0] == "Renata-Andrea Rusu-Patraulea"


def test_markdown_headings_tables_and_links(tmp_path: Path) -> None:
    md = tmp_path / "paper.md"
    md.write_text(
        "# Trial report\n\nIntro with a [link](http://x.org) and *emphasis*.\n\n"
        "## Results\n\n### Efficacy\n\n| Arm | mPFS |\n|---|---|\n| A | 7.1 |\n| B | 4.8 |\n\n"
        "Median PFS was 7.1 months.\n",
        encoding="utf-8",
    )
    doc = _load(md)
    assert doc.meta.title == "Trial report"
    table = next(s for s in doc.spans if s.kind == "table")
    assert doc.text[table.start : table.end] == "Arm | mPFS\nA | 7.1\nB | 4.8"
    assert table.section == ("Results", "Efficacy")
    assert "Intro with a link and emphasis." in doc.text


def test_bad_text_inputs_have_specific_reasons(tmp_path: Path) -> None:
    latin1 = tmp_path / "latin1.txt"
    latin1.write_bytes("caf\xe9 na\xefve".encode("latin-1"))
    with pytest.raises(DecodeError, match="not valid UTF-8"):
        _load(latin1)
    binary = tmp_path / "blob.txt"
    binary.write_bytes(b"\x00\x01\x02binary" * 100)
    with pytest.raises(BinaryFileError):
        _load(binary)
    empty = tmp_path / "empty.md"
    empty.write_text("   \n\n  ")
    with pytest.raises(EmptyDocumentError):
        _load(empty)
    with pytest.raises(UnsupportedFormatError, match=r"unsupported file type '\.docx'"):
        _load(tmp_path / "x.docx")


def test_utf16_with_bom_is_read(tmp_path: Path) -> None:
    path = tmp_path / "u16.txt"
    path.write_bytes("Résumé of pembrolizumab data.".encode("utf-16"))
    assert "Résumé" in _load(path).text


def test_sidecar_metadata_must_be_an_object(tmp_path: Path) -> None:
    path = tmp_path / "a.txt"
    path.write_text("Some text.")
    (tmp_path / "a.meta.json").write_text("[1, 2]")
    with pytest.raises(Exception, match="must hold a JSON object"):
        _load(path)
    assert DocMeta.from_dict({"title": "t", "x": 1}).extra == {"x": 1}

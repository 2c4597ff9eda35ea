"""JATS / PubMed Central XML loader (``.nxml`` from the PMC Open Access subset, efetch output).

JATS says exactly what every piece of text is, so nothing is guessed: title, abstract (with
its structured sections), body sections with their nested titles, table and figure captions,
and tables as ``cell | cell`` rows. References, acknowledgements, footnotes and the rest of
``<back>`` are left out: they would flood retrieval with other papers' titles.

The parser never resolves entities, loads DTDs or touches the network, and documents that
declare their own entities are refused before parsing (billion laughs, XXE).
"""

from __future__ import annotations

import codecs
import html.entities
import re
from collections.abc import Iterator
from typing import Any

from lxml import etree

from rag.errors import (
    CorruptFileError,
    EmptyDocumentError,
    UnsafeInputError,
    UnsupportedFormatError,
)
from rag.types import Block, BlockKind, DocMeta, LoadedDocument

_INTERNAL_SUBSET = re.compile(r"<!DOCTYPE[^>\[]*\[")
_KINDS = {"research-article": "research", "review-article": "review", "case-report": "case report"}
_MONTHS = {m: i for i, m in enumerate(("jan", "feb", "mar", "apr", "may", "jun", "jul", "aug",
                                       "sep", "oct", "nov", "dec"), start=1)}  # fmt: skip
# Preferred publication dates: the online date, then print, then anything else.
_DATE_RANK = ("epub", "ppub", "epub-ppub", "pub", "collection", "pmc-release")
_SKIPPED_ABSTRACTS = {"graphical", "teaser", "toc", "web-summary"}
# Elements inside <p> that are blocks of their own; their text is kept out of the paragraph.
_NESTED_BLOCKS = {
    "table-wrap", "table-wrap-group", "fig", "fig-group", "list", "disp-quote", "boxed-text",
    "def-list", "supplementary-material", "preformat", "code", "fn", "array",
}  # fmt: skip
_NOT_CONTENT = {
    "ref-list", "fn-group", "ack", "app-group", "glossary", "notes", "sec-meta", "graphic",
    "media", "supplementary-material", "disp-formula-group", "object-id", "label", "title",
    "alt-text", "long-desc", "permissions", "attrib",
}  # fmt: skip
_NUMERIC_CITATION = re.compile(r"^[\s\d,;\u2013\u2014\-\[\]()]*$")
_NOT_TEXT_ALTERNATIVES = {"graphic", "inline-graphic", "media", "tex-math"}
_EMPTY_BRACKETS = re.compile(r"\s*[\[(][\s,;\u2013\u2014-]*[\])]")


def _parser() -> etree.XMLParser:
    return etree.XMLParser(
        resolve_entities=False,
        no_network=True,
        load_dtd=False,
        huge_tree=False,
        remove_comments=True,
        remove_pis=True,
    )


def load_jats(data: bytes, meta: DocMeta) -> LoadedDocument:
    _refuse_entity_declarations(data)
    try:
        root = etree.fromstring(data, _parser())
    except etree.XMLSyntaxError as exc:
        raise CorruptFileError(f"malformed XML: {_syntax_message(exc)}") from exc
    article = _article(root)
    front = _child(article, "front")
    article_meta = _child(front, "article-meta") if front is not None else None
    _fill_meta(meta, article, front, article_meta)

    blocks: list[Block] = []
    title = _title(article_meta)
    if title:
        blocks.append(Block(title, "title"))
    if article_meta is not None:
        for abstract in _children(article_meta, "abstract"):
            if abstract.get("abstract-type", "") not in _SKIPPED_ABSTRACTS:
                name = _one_line(_text(_child(abstract, "title"))) or "Abstract"
                blocks.extend(_content(abstract, (name,), "abstract", headings=False))
    for part in ("body", "floats-group"):
        el = _child(article, part)
        if el is not None:
            blocks.extend(_content(el, (), "paragraph", headings=True))
    blocks = [b for b in blocks if b.text.strip()]
    if not any(b.kind != "title" for b in blocks):
        raise EmptyDocumentError("JATS article has no abstract or body text")
    return LoadedDocument(blocks=blocks, meta=meta, format="jats")


# --- safety and structure ---------------------------------------------------------------------


def _refuse_entity_declarations(data: bytes) -> None:
    """Refuse DOCTYPEs with an internal subset that declares entities, before lxml sees them.

    PMC files only reference the public JATS DTD (never loaded here), so this costs nothing
    for real articles and shuts out entity expansion and external-entity reads entirely.
    """
    if data.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        text = data.decode("utf-16", errors="replace")
    elif data.startswith((b"<\x00\x00\x00", b"\x00\x00\x00<")):  # UTF-32, no BOM
        text = data.decode("utf-32-le" if data[0] else "utf-32-be", errors="replace")
    elif data.startswith((b"<\x00", b"\x00<")):  # UTF-16 without a BOM: libxml2 reads it too
        text = data.decode("utf-16-le" if data[0] else "utf-16-be", errors="replace")
    else:
        text = data.decode("latin-1")  # byte-preserving; the markup we look for is ASCII
    match = _INTERNAL_SUBSET.search(text)
    if match and "<!ENTITY" in text[match.end() :]:
        raise UnsafeInputError(
            "XML declares entities (possible billion-laughs / external-entity attack); refused"
        )


def _syntax_message(exc: etree.XMLSyntaxError) -> str:
    message = " ".join((exc.msg or str(exc)).split())  # libxml2 messages can end in a newline
    if "line" not in message and exc.position:
        message += f", line {exc.position[0]}, column {exc.position[1]}"
    return message


def _local(el: Any) -> str:
    tag = el.tag
    return etree.QName(tag).localname if isinstance(tag, str) else ""


def _children(el: Any, name: str) -> Iterator[Any]:
    return (c for c in el if _local(c) == name)


def _child(el: Any, name: str) -> Any:
    return next(_children(el, name), None) if el is not None else None


def _article(root: Any) -> Any:
    name = _local(root)
    if name == "article":
        return root
    if name == "pmc-articleset":
        articles = list(_children(root, "article"))
        if len(articles) == 1:
            return articles[0]
        raise UnsupportedFormatError(
            f"pmc-articleset holds {len(articles)} articles; save each <article> as its own file"
        )
    raise UnsupportedFormatError(f"XML is not a JATS/PMC article (root <{name}>)")


# --- text -------------------------------------------------------------------------------------


def _text(el: Any, skip: frozenset[str] | set[str] = frozenset()) -> str:
    """Inline text: formatting flattened, citation numbers dropped, nested blocks skipped."""
    if el is None:
        return ""
    parts: list[str] = []
    _collect(el, parts, skip)
    return _EMPTY_BRACKETS.sub("", "".join(parts))


def _collect(el: Any, parts: list[str], skip: frozenset[str] | set[str]) -> None:
    parts.append(el.text or "")
    for child in el:
        if isinstance(child, etree._Entity):
            # Named entities from the (unloaded) JATS DTD, e.g. &nbsp;: keep the character.
            codepoint = html.entities.name2codepoint.get(child.name)
            parts.append(chr(codepoint) if codepoint else "")
        else:
            name = _local(child)
            if name in skip or _is_citation_marker(child, name):
                pass
            elif name == "alternatives":  # the same formula or table several ways: take one
                options = [c for c in child if _local(c) not in _NOT_TEXT_ALTERNATIVES]
                options.sort(key=lambda c: _local(c) != "math")  # MathML before anything else
                if options:
                    _collect(options[0], parts, skip)
            elif name == "break":
                parts.append("\n")
            else:
                _collect(child, parts, skip)
        parts.append(child.tail or "")


def _is_citation_marker(el: Any, name: str) -> bool:
    """Numeric reference citations ("[3]", superscript "1,2") carry no meaning once flattened.

    Author-year citations ("Smith et al., 2020") are kept: they are part of the sentence.
    """
    if name == "xref":
        return el.get("ref-type") == "bibr" and bool(
            _NUMERIC_CITATION.match("".join(el.itertext()))
        )
    if name == "sup":
        xrefs = [x for x in el.iter("{*}xref") if x.get("ref-type") == "bibr"]
        return bool(xrefs) and bool(_NUMERIC_CITATION.match("".join(el.itertext())))
    return False


def _one_line(text: str) -> str:
    return " ".join(text.split())


def _labelled(el: Any) -> str:
    """``<label>`` plus ``<title>``: "2.1 Patients", "Table 1. Efficacy outcomes"."""
    label = _one_line(_text(_child(el, "label")))
    title = _one_line(_text(_child(el, "title")))
    if label and title:
        sep = " " if label[-1] in ".:" or label[0].isdigit() else ". "
        return f"{label}{sep}{title}"
    return label or title


def _title(article_meta: Any) -> str:
    group = _child(article_meta, "title-group") if article_meta is not None else None
    return _one_line(_text(_child(group, "article-title"))) if group is not None else ""


# --- content ----------------------------------------------------------------------------------


def _content(el: Any, path: tuple[str, ...], kind: BlockKind, *, headings: bool) -> Iterator[Block]:
    for child in el:
        name = _local(child)
        if name == "sec":
            title = _labelled(child)
            if title and headings:
                yield Block(title, "heading", path)
            yield from _content(child, (*path, title) if title else path, kind, headings=headings)
        elif name == "p":
            yield Block(_text(child, _NESTED_BLOCKS), kind, path)
            nested = [c for c in child.iter() if _local(c) in _NESTED_BLOCKS]
            outermost = [c for c in nested if not any(a in nested for a in c.iterancestors())]
            for block in outermost:
                yield from _block(block, path, kind)
        elif name in _NOT_CONTENT or name in ("sub-article", "response"):
            continue
        else:
            yield from _block(child, path, kind)


def _block(el: Any, path: tuple[str, ...], kind: BlockKind) -> Iterator[Block]:
    name = _local(el)
    if name in ("table-wrap", "fig", "boxed-text", "chem-struct-wrap"):
        caption = _caption(el)
        if caption:
            yield Block(caption, "caption", path)
        if name == "table-wrap":
            for table in el.iter("{*}table"):
                yield Block("\n".join(_rows(table)), "table", path)
            for foot in _children(el, "table-wrap-foot"):
                yield Block(_one_line(_text(foot)), "caption", path)
        elif name == "boxed-text":
            yield from _content(el, path, kind, headings=True)
    elif name in ("table-wrap-group", "fig-group", "disp-quote", "statement", "sec"):
        yield from _content(el, path, kind, headings=True)
    elif name == "list":
        yield Block("\n".join(_list_lines(el)), "list", path)
    elif name == "def-list":
        lines = []
        for item in _children(el, "def-item"):
            term = _one_line(_text(_child(item, "term")))
            definition = _one_line(_text(_child(item, "def")))
            lines.append(f"{term}: {definition}" if term and definition else term or definition)
        yield Block("\n".join(lines), "list", path)
    elif name == "table":
        yield Block("\n".join(_rows(el)), "table", path)
    elif name in ("preformat", "code"):
        yield Block("".join(el.itertext()), "list", path)
    elif name not in _NOT_CONTENT and name not in ("fn", "disp-formula", "array"):
        yield Block(_text(el), kind, path)


def _caption(el: Any) -> str:
    label = _one_line(_text(_child(el, "label")))
    caption = _child(el, "caption")
    title = _one_line(_text(_child(caption, "title"))) if caption is not None else ""
    paras = [_one_line(_text(p)) for p in _children(caption, "p")] if caption is not None else []
    head = f"{label}. {title}" if label and title and label[-1] not in ".:" else f"{label} {title}"
    head = head.strip()
    if head and paras and head[-1] not in ".:;!?":
        head += "."
    return " ".join(part for part in (head, *paras) if part)


def _rows(table: Any) -> list[str]:
    rows = []
    for tr in table.iter("{*}tr"):
        cells = [_one_line(_text(c)) for c in tr if _local(c) in ("td", "th")]
        if any(cells):
            rows.append(" | ".join(cells))
    return rows


def _list_lines(el: Any, depth: int = 0) -> list[str]:
    lines = []
    for item in _children(el, "list-item"):
        own = _one_line(_text(item, {"list"}))
        label = _one_line(_text(_child(item, "label")))
        if own:
            lines.append("  " * depth + (f"{label} {own}" if label and label not in own else own))
        for nested in item.iter("{*}list"):
            if next(nested.iterancestors("{*}list")) is el:  # direct sub-lists only
                lines.extend(_list_lines(nested, depth + 1))
    return lines


# --- metadata ---------------------------------------------------------------------------------


def _fill_meta(meta: DocMeta, article: Any, front: Any, article_meta: Any) -> None:
    if not meta.kind and article.get("article-type") in _KINDS:
        meta.kind = _KINDS[article.get("article-type")]
    journal_meta = _child(front, "journal-meta") if front is not None else None
    if journal_meta is not None and not meta.journal:
        titles = [t for t in journal_meta.iter("{*}journal-title") if _text(t).strip()]
        ids = [
            i for i in _children(journal_meta, "journal-id") if i.get("journal-id-type") == "nlm-ta"
        ]
        if titles or ids:
            meta.journal = _one_line(_text((titles or ids)[0]))
    if meta.journal and not meta.source:
        meta.source = meta.journal
    if article_meta is None:
        return
    if not meta.title:
        meta.title = _title(article_meta)
    if not meta.authors:
        meta.authors = _authors(article_meta)
    for aid in _children(article_meta, "article-id"):
        value = _one_line(_text(aid))
        kind = aid.get("pub-id-type", "")
        if kind == "pmid" and not meta.pmid:
            meta.pmid = value
        elif kind in ("pmc", "pmcid") and not meta.pmcid and value:
            meta.pmcid = value if value.upper().startswith("PMC") else f"PMC{value}"
        elif kind == "doi" and not meta.doi:
            meta.doi = value
    date, year = _pub_date(article_meta)
    if date and not meta.date:
        meta.date = date
    if year and meta.year is None:
        meta.year = year
    keywords = [_one_line(_text(k)) for k in article_meta.iter("{*}kwd")]
    if keywords and "keywords" not in meta.extra:
        meta.extra["keywords"] = [k for k in keywords if k]


def _authors(article_meta: Any) -> list[str]:
    authors = []
    for group in _children(article_meta, "contrib-group"):
        for contrib in _children(group, "contrib"):
            if contrib.get("contrib-type", "author") != "author":
                continue
            name = _child(contrib, "name")
            if name is not None:
                given = _one_line(_text(_child(name, "given-names")))
                surname = _one_line(_text(_child(name, "surname")))
                full = f"{given} {surname}".strip()
            else:
                other = _child(contrib, "string-name")
                if other is None:
                    other = _child(contrib, "collab")
                full = _one_line(_text(other, {"contrib-group"})) if other is not None else ""
            if full:
                authors.append(full)
    return authors


def _pub_date(article_meta: Any) -> tuple[str, int | None]:
    dates = list(_children(article_meta, "pub-date"))

    def rank(el: Any) -> int:
        kind = el.get("pub-type") or el.get("date-type", "")
        if kind == "pub":  # JATS 1.2 style: date-type="pub" publication-format="electronic"
            kind = "epub" if el.get("publication-format") == "electronic" else "ppub"
        return _DATE_RANK.index(kind) if kind in _DATE_RANK else len(_DATE_RANK)

    for el in sorted(dates, key=rank):
        year_text = _one_line(_text(_child(el, "year")))
        if not re.fullmatch(r"\d{4}", year_text):
            continue
        parts = [year_text]
        month = _month(_one_line(_text(_child(el, "month"))))
        if month:
            parts.append(f"{month:02d}")
            day = _one_line(_text(_child(el, "day")))
            if day.isdigit() and 1 <= int(day) <= 31:
                parts.append(f"{int(day):02d}")
        return "-".join(parts), int(year_text)
    return "", None


def _month(text: str) -> int | None:
    if text.isdigit() and 1 <= int(text) <= 12:
        return int(text)
    return _MONTHS.get(text[:3].lower())

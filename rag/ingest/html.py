"""HTML loader: the article itself, not the page around it.

trafilatura removes navigation, ads, share bars, related links and comments and hands back the
main content as XML (``<head>``, ``<p>``, ``<list>``, ``<table>``), which we walk into blocks
whose section paths follow the page's ``h2``/``h3`` headings. When trafilatura finds nothing
(tiny or unusual pages) a plain lxml walk of ``<body>`` is the fallback. Nothing is fetched:
URLs in the page are only read as metadata.
"""

from __future__ import annotations

import codecs
import re
from typing import Any

import lxml.html
import trafilatura
from lxml import etree

from rag.errors import BinaryFileError, EmptyDocumentError
from rag.types import Block, DocMeta, LoadedDocument

_EMPTY = "no main text found in HTML"
_CHARSET = re.compile(rb"""<meta[^>]+charset\s*=\s*["']?\s*([A-Za-z0-9._:-]+)""", re.I)
_XML_ENCODING = re.compile(rb"""^\s*<\?xml[^>]+encoding\s*=\s*["']([A-Za-z0-9._:-]+)""")
_XML_DECL = re.compile(r"^\s*<\?xml[^>]*\?>")
# Browsers read these labels as windows-1252 (WHATWG Encoding Standard).
_AS_CP1252 = {"ascii", "us-ascii", "iso-8859-1", "iso8859-1", "latin1", "latin-1", "l1"}
_BLOCK_TAGS = {
    "address", "article", "aside", "blockquote", "body", "dd", "div", "dl", "dt", "figcaption",
    "figure", "h1", "h2", "h3", "h4", "h5", "h6", "li", "main", "ol", "p", "pre", "section",
    "table", "ul",
}  # fmt: skip
_FURNITURE = re.compile(
    r"\b(ads?|advert\w*|banner|breadcrumbs?|comments?|cookie\w*|newsletter|promo\w*|related|"
    r"share\w*|sidebar|skip-link|social)\b",
    re.I,
)
_HEADINGS = {"h1": 1, "h2": 2, "h3": 3, "h4": 4, "h5": 5, "h6": 6}
_DROP = (
    "script",
    "style",
    "noscript",
    "template",
    "nav",
    "header",
    "footer",
    "aside",
    "form",
    "iframe",
    "svg",
    "button",
    "select",
)


def load_html(data: bytes, meta: DocMeta) -> LoadedDocument:
    text = decode_html(data)
    blocks = _trafilatura_blocks(text, meta)
    if not any(b.kind != "title" for b in blocks):
        blocks = _fallback_blocks(text)
    if not any(b.kind != "title" for b in blocks):
        raise EmptyDocumentError(_EMPTY)
    if blocks[0].kind == "title" and not meta.title:
        meta.title = " ".join(blocks[0].text.split())
    return LoadedDocument(blocks=blocks, meta=meta, format="html")


def decode_html(data: bytes) -> str:
    """Decode as a browser would: BOM, then ``<meta charset>``/XML declaration, then UTF-8.

    Undeclared pages that are not valid UTF-8 are read as windows-1252, the web's legacy default.
    """
    if data.startswith(codecs.BOM_UTF8):
        return data[3:].decode("utf-8", errors="replace")
    if data.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        return data.decode("utf-16", errors="replace")
    if b"\x00" in data[:8192]:
        raise BinaryFileError("binary data (NUL bytes), not HTML")
    head = data[:8192]
    match = _XML_ENCODING.match(head) or _CHARSET.search(head)
    if match:
        label = match.group(1).decode("ascii").lower()
        if label in _AS_CP1252:
            label = "cp1252"
        try:
            codec = codecs.lookup(label).name
        except LookupError:
            codec = ""
        if codec and not codec.startswith("utf-16"):  # a meta tag read as ASCII can't be UTF-16
            return data.decode(codec, errors="replace")
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        return data.decode("cp1252", errors="replace")


# --- trafilatura ------------------------------------------------------------------------------


def _trafilatura_blocks(text: str, meta: DocMeta) -> list[Block]:
    xml = trafilatura.extract(
        text,
        output_format="xml",
        include_tables=True,
        include_comments=False,
        include_images=False,
        include_links=False,
        with_metadata=True,
    )
    if not xml:
        return []
    try:
        doc = etree.fromstring(xml, etree.XMLParser(resolve_entities=False, no_network=True))
    except etree.XMLSyntaxError:
        return []
    _fill_meta(meta, doc.attrib)
    main = doc.find("main")
    if main is None:
        return []
    walker = _Walker()
    walker.walk(main)
    blocks = walker.blocks
    title = " ".join((doc.get("title") or "").split())
    if title and not (blocks and blocks[0].kind == "title"):
        blocks.insert(0, Block(title, "title"))
    return blocks


def _fill_meta(meta: DocMeta, attrs: Any) -> None:
    if not meta.title and attrs.get("title"):
        meta.title = attrs["title"]
    if not meta.authors and attrs.get("author"):
        meta.authors = [a.strip() for a in attrs["author"].split(";") if a.strip()]
    if not meta.date and attrs.get("date"):
        meta.date = attrs["date"]
    if meta.year is None:
        match = re.match(r"(19|20)\d{2}", meta.date)
        if match:
            meta.year = int(match.group(0))
    if not meta.url and attrs.get("url"):
        meta.url = attrs["url"]
    if not meta.source and (attrs.get("sitename") or attrs.get("hostname")):
        meta.source = attrs.get("sitename") or attrs.get("hostname")


def _inline(el: Any) -> str:
    """Text of an element with ``<lb/>`` as a line break and formatting tags dropped."""
    parts = [el.text or ""]
    for child in el:
        if child.tag == "lb":
            parts.append("\n")
        elif child.tag not in ("graphic", "list", "table"):
            parts.append(_inline(child))
        parts.append(child.tail or "")
    return "".join(parts)


def _one_line(text: str) -> str:
    return " ".join(text.split())


class _Walker:
    """Turns trafilatura's XML into blocks, tracking the heading path."""

    def __init__(self) -> None:
        self.blocks: list[Block] = []
        self.path: list[tuple[int, str]] = []

    def section(self) -> tuple[str, ...]:
        return tuple(h for _, h in self.path)

    def add(self, text: str, kind: Any) -> None:
        if text.strip():
            self.blocks.append(Block(text, kind, self.section()))

    def walk(self, el: Any) -> None:
        self.add(el.text or "", "paragraph")
        for child in el:
            self.element(child)
            self.add(child.tail or "", "paragraph")

    def element(self, el: Any) -> None:
        tag = el.tag
        if tag == "head":
            self.heading(_one_line(_inline(el)), el.get("rend", ""))
        elif tag == "p":
            self.add(_inline(el), "paragraph")
            for nested in el:
                if nested.tag in ("list", "table"):
                    self.element(nested)
        elif tag == "list":
            self.add("\n".join(_list_lines(el)), "list")
        elif tag == "table":
            self.add("\n".join(_table_rows(el, "row", "cell")), "table")
        elif tag == "code":
            self.add("".join(el.itertext()), "list")  # keeps its line breaks
        elif tag in ("quote", "div", "main", "section"):
            if len(el) and any(c.tag in ("p", "list", "table", "head", "quote") for c in el):
                self.walk(el)
            else:
                self.add(_inline(el), "paragraph")
        elif tag != "graphic":
            self.add(_inline(el), "paragraph")

    def heading(self, text: str, rend: str) -> None:
        if not text:
            return
        level = _HEADINGS.get(rend.lower(), 2)
        if level == 1 and not any(b.kind != "title" for b in self.blocks):
            self.blocks = [Block(text, "title")]
            self.path = []
            return
        while self.path and self.path[-1][0] >= level:
            self.path.pop()
        self.blocks.append(Block(text, "heading", self.section()))
        self.path.append((level, text))


def _list_lines(el: Any, depth: int = 0) -> list[str]:
    lines = []
    for item in el:
        if item.tag != "item":
            continue
        own = _one_line(_inline(item))
        if own:
            lines.append(("  " * depth) + own)
        for nested in item.iter("list"):
            if next(nested.iterancestors("list")) is el:  # direct sub-lists, not deeper ones
                lines.extend(_list_lines(nested, depth + 1))
    return lines


def _table_rows(el: Any, row_tag: str | tuple[str, ...], cell_tags: Any) -> list[str]:
    rows = []
    tags = (row_tag,) if isinstance(row_tag, str) else row_tag
    for row in el.iter(*tags):
        cells = [_one_line(" ".join(c.itertext())) for c in row if c.tag in cell_tags]
        if any(cells):
            rows.append(" | ".join(cells))
    return rows


# --- fallback ---------------------------------------------------------------------------------


def _fallback_blocks(text: str) -> list[Block]:
    """Headings, paragraphs, lists and tables of ``<body>``, minus obvious page furniture."""
    text = _XML_DECL.sub("", text, count=1)  # lxml refuses str input that declares an encoding
    if not text.strip():
        return []
    try:
        root = lxml.html.document_fromstring(text)
    except (etree.ParserError, ValueError):
        return []
    for el in list(root.iter(*_DROP)):
        if el.getparent() is not None:
            el.drop_tree()
    body = root.find("body")
    if body is None:
        body = root
    blocks: list[Block] = []
    path: list[tuple[int, str]] = []

    def add(text: str, kind: Any) -> None:
        if text.strip():
            blocks.append(Block(text, kind, tuple(h for _, h in path)))

    def visit(el: Any) -> None:
        nonlocal path
        tag = el.tag if isinstance(el.tag, str) else ""
        if not tag or tag == "a":
            return  # comments, processing instructions, bare links (menus, "skip to content")
        marks = f"{el.get('class', '')} {el.get('id', '')}"
        if tag not in ("body", "main", "article") and _FURNITURE.search(marks):
            return  # ads, share bars, related links, cookie banners
        if tag in _HEADINGS:
            heading = _one_line(el.text_content())
            level = _HEADINGS[tag]
            if not heading:
                return
            if level == 1 and not any(b.kind in ("title", "heading") for b in blocks):
                blocks.append(Block(heading, "title"))
                path = []
                return
            while path and path[-1][0] >= level:
                path.pop()
            add(heading, "heading")
            path.append((level, heading))
        elif tag in ("ul", "ol"):
            add(
                "\n".join(i for i in (_one_line(li.text_content()) for li in el.iter("li")) if i),
                "list",
            )
        elif tag == "table":
            add("\n".join(_table_rows(el, "tr", ("td", "th"))), "table")
        elif tag == "pre":
            add(el.text_content(), "list")
        elif tag in ("p", "blockquote", "dd", "dt", "figcaption") or not any(
            isinstance(d.tag, str) and d.tag in _BLOCK_TAGS for d in el.iterdescendants()
        ):
            add(_html_inline(el), "paragraph")
        else:
            add(el.text or "", "paragraph")
            for child in el:
                visit(child)
                add(child.tail or "", "paragraph")

    visit(body)
    title = _one_line(root.findtext(".//title") or "")
    if title and not (blocks and blocks[0].kind == "title"):
        blocks.insert(0, Block(title, "title"))
    return blocks


def _html_inline(el: Any) -> str:
    """Text content with ``<br>`` kept as a line break."""
    for br in el.iter("br"):
        br.tail = "\n" + (br.tail or "")
    return el.text_content()

"""The quote where it stands: a cited span shown in its document, highlighted.

A span of a PDF opens its page, rendered by pdfium, with the quoted words boxed where they
stand on the page (found by pdfplumber's text search over the page's characters, a few words
at a time, so a quote broken across lines, columns or a hyphen is still found). Any other
document, or a PDF whose file has moved or changed since it was indexed, opens as its indexed
text with the span marked. Either way the page is one self-contained HTML document: no script,
the page image inline, and the highlight carries ``id="quote"`` so a link ending in ``#quote``
scrolls to it.
"""

from __future__ import annotations

import base64
import html
import io
import re
from dataclasses import dataclass
from pathlib import Path

from rag.errors import IngestError, RequestError
from rag.ingest import content_hash
from rag.ingest.registry import read_sidecar
from rag.types import Document

SCALE = 2.0  # 144 dpi: small print stays legible
WINDOW = 5  # words searched at a time
_STYLE = """
body{font:15px/1.5 system-ui,sans-serif;margin:0;background:#f4f4f5;color:#18181b}
header{padding:12px 20px;background:#fff;border-bottom:1px solid #d4d4d8}
header h1{font-size:17px;margin:0 0 4px}
header p{margin:2px 0;color:#52525b}
.quote{margin:8px 0 0;padding:6px 10px;border-left:3px solid #ca8a04;background:#fefce8}
.page{position:relative;margin:20px auto;width:min(95vw,900px);box-shadow:0 1px 4px #0003}
.page img{display:block;width:100%}
.hl{position:absolute;background:#facc1566;outline:2px solid #ca8a04;border-radius:2px}
.text{margin:20px auto;width:min(95vw,900px);background:#fff;padding:20px 28px;
white-space:pre-wrap;box-shadow:0 1px 4px #0003}
mark{background:#fde68a;outline:2px solid #ca8a04}
"""


@dataclass(frozen=True, slots=True)
class Box:
    """A highlight rectangle as fractions of the page's width and height."""

    left: float
    top: float
    width: float
    height: float


def check_span(doc: Document, start: int, end: int) -> None:
    if not 0 <= start < end <= len(doc.text):
        raise RequestError(
            422,
            "ValidationError",
            f"span {start}..{end} is not inside the document (0..{len(doc.text)}, start < end)",
        )


def page_of(doc: Document, position: int) -> int | None:
    for span in doc.spans:
        if span.start <= position < span.end:
            return span.page
    return None


def original_pdf(doc: Document) -> bytes | None:
    """The PDF the document was read from, if it is still there with the same bytes."""
    if not doc.format.startswith("pdf"):
        return None
    path = Path(doc.source)
    try:
        data = path.read_bytes()
        _, sidecar = read_sidecar(path)
    except (OSError, IngestError):  # gone, unreadable, or a sidecar that no longer parses
        return None
    return data if content_hash(data, sidecar) == doc.content_hash else None


def quote_boxes(pdf: bytes, page_number: int, quote: str) -> list[Box]:
    """Where the words of ``quote`` stand on the page, one box per line of each match."""
    import pdfplumber

    words = re.findall(r"\w+", quote)
    if not words:
        return []
    boxes: list[Box] = []
    with pdfplumber.open(io.BytesIO(pdf)) as document:
        page = document.pages[page_number - 1]
        width, height = float(page.width), float(page.height)
        for i in range(0, len(words), WINDOW):
            window = words[i : i + WINDOW]
            if len(window) < 2 and i:
                window = words[max(0, len(words) - 2) :]
            pattern = r"\W*".join(re.escape(w) for w in window)
            for match in page.search(pattern, regex=True, case=False, return_chars=True)[:1]:
                lines: dict[int, list[dict]] = {}
                for char in match["chars"]:
                    lines.setdefault(round(float(char["top"])), []).append(char)
                for chars in lines.values():
                    x0 = min(float(c["x0"]) for c in chars)
                    x1 = max(float(c["x1"]) for c in chars)
                    top = min(float(c["top"]) for c in chars)
                    bottom = max(float(c["bottom"]) for c in chars)
                    boxes.append(
                        Box(x0 / width, top / height, (x1 - x0) / width, (bottom - top) / height)
                    )
    return boxes


def render_page(pdf: bytes, page_number: int) -> bytes:
    """The page as a PNG."""
    import pypdfium2 as pdfium

    document = pdfium.PdfDocument(pdf)
    try:
        page = document[page_number - 1]
        image = page.render(scale=SCALE).to_pil()
        page.close()
    finally:
        document.close()
    buffer = io.BytesIO()
    image.save(buffer, format="PNG", optimize=True)
    return buffer.getvalue()


def document_view(doc: Document, start: int, end: int) -> str:
    """The HTML page showing ``doc.text[start:end]`` where it stands."""
    check_span(doc, start, end)
    quote = doc.text[start:end]
    page = page_of(doc, start)
    pdf = original_pdf(doc) if page else None
    if pdf is not None and page is not None:
        boxes = [] if doc.format == "pdf-ocr" else quote_boxes(pdf, page, quote)
        image = base64.b64encode(render_page(pdf, page)).decode()
        marks = "".join(
            f"<div class='hl'{' id=quote' if i == 0 else ''} style='left:{b.left:.2%};"
            f"top:{b.top:.2%};width:{b.width:.2%};height:{b.height:.2%}'></div>"
            for i, b in enumerate(boxes)
        )
        where = f"page {page}" + ("" if boxes else " (the quote's place on the page not found)")
        if doc.format == "pdf-ocr":
            where = f"page {page} (text read by OCR from a scan: see the quote above)"
        body = (
            f"<div class='page'><img alt='page {page} of {html.escape(doc.title)}' "
            f"src='data:image/png;base64,{image}'>{marks}</div>"
        )
    else:
        where = f"page {page}, indexed text" if page else "indexed text"
        if doc.format.startswith("pdf"):
            where += " (the original PDF has moved or changed since it was indexed)"
        body = (
            f"<div class='text'>{html.escape(doc.text[:start])}<mark id='quote'>"
            f"{html.escape(quote)}</mark>{html.escape(doc.text[end:])}</div>"
        )
    return (
        "<!doctype html><html lang='en'><head><meta charset='utf-8'>"
        f"<title>{html.escape(doc.title)}: quote</title><style>{_STYLE}</style></head><body>"
        f"<header><h1>{html.escape(doc.title)}</h1><p>{html.escape(where)} · "
        f"{html.escape(doc.doc_id)}</p><p class='quote'>{html.escape(quote)}</p></header>"
        f"{body}</body></html>"
    )

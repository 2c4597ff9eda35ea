"""PDF loader: running text in reading order, ruled tables as rows, headings from font sizes.

pdfplumber gives every character with its position and font. From those we

1. lift ruled tables out as ``cell | cell`` rows and drop their characters from the running
   text, so table words do not leak into paragraphs as word soup;
2. order the remaining words by recursive XY-cut, so a two-column page reads column by column
   instead of line by line across the gutter;
3. split paragraphs on vertical gaps wider than the page's usual line gap, on first-line
   indents and on font changes;
4. call a paragraph a heading when its font is clearly larger than the body text (or it is a
   short, all-bold line), which gives PDF chunks a section path as well.

Steps 1-3 see one page at a time and live in ``rag.ingest.pdf_layout``; this module opens the
file, walks its pages, drops running heads, re-joins paragraphs split across columns or pages
and finds the headings.

A page without a text layer (a scan) is read by OCR (``rag.ingest.ocr``: pdfium renders it,
Tesseract reads it); the document is then marked ``pdf-ocr`` and lists those pages in its
metadata (``ocr_pages``).

Failures are reported by cause: not a PDF, truncated, encrypted, no text even after OCR, OCR
needed but not installed, or too big to be a plausible article (a PDF bomb guard).
"""

from __future__ import annotations

import contextlib
import io
import logging
import re
from collections import Counter
from typing import Any

import pdfplumber
from pdfminer.pdfdocument import PDFEncryptionError, PDFPasswordIncorrect
from pdfplumber.utils.exceptions import PdfminerException

from rag.errors import (
    CorruptFileError,
    EmptyDocumentError,
    EncryptedFileError,
    FileTooLargeError,
    IngestError,
)
from rag.ingest import ocr
from rag.ingest.pdf_layout import Para, page_paragraphs
from rag.types import Block, DocMeta, LoadedDocument

MAX_PAGES = 2000
MAX_CHARS = 20_000_000

_ENCRYPTED = "PDF is encrypted (password protected)"
_PAGE_NUMBER = re.compile(r"^(page\s*)?\d{1,4}(\s*(of|/)\s*\d{1,4})?$", re.I)
_JUNK_TITLE = re.compile(
    r"^(\(?untitled\)?|slide \d+|powerpoint presentation|document\d*|title|none)$"
    r"|\.(docx?|pdf|tex|dvi|indd|qxd|rtf|odt)$",
    re.I,
)
_JUNK_AUTHOR = re.compile(r"^\(?(anonymous|unknown|user|admin|administrator|author)\)?$", re.I)
_PDF_DATE = re.compile(r"^(?:D:)?(\d{4})(\d{2})?(\d{2})?")

# pdfminer and pypdf log every recoverable oddity of a damaged file; callers get our errors.
logging.getLogger("pdfminer").setLevel(logging.ERROR)
logging.getLogger("pypdf").setLevel(logging.ERROR)


def load_pdf(data: bytes, meta: DocMeta) -> LoadedDocument:
    if data.find(b"%PDF-", 0, 1024) == -1:
        raise CorruptFileError("not a PDF (missing %PDF header)")
    if b"%%EOF" not in data[-4096:]:
        raise CorruptFileError(
            "PDF is truncated (no %%EOF end marker); download or export it again"
        )
    _check_encryption_and_size(data)
    pdf = None
    try:
        pdf = pdfplumber.open(io.BytesIO(data))
        _fill_meta(meta, pdf.metadata)
        paras, undecodable, textless = _read_pages(pdf)
    except (IngestError, MemoryError):
        raise
    except PdfminerException as exc:
        raise _pdfminer_error(exc) from exc
    except Exception as exc:  # pdfplumber raises plain errors for broken page trees and boxes
        raise _damaged(exc) from exc
    finally:
        if pdf is not None:
            with contextlib.suppress(Exception):  # close() walks the same broken page tree
                pdf.close()
    fmt = "pdf"
    if textless:
        read = [p for p in ocr.ocr_pages(data, textless) if p.paras]
        if read:
            fmt = "pdf-ocr"
            meta.extra["ocr_pages"] = [p.page for p in read]
            meta.extra["ocr_confidence"] = round(
                sum(p.mean_confidence * p.words for p in read) / sum(p.words for p in read), 1
            )
            paras = sorted(paras + [x for p in read for x in p.paras], key=lambda x: x.page)
            _drop_running_heads(paras, len(textless) + len({x.page for x in paras}))
            paras = _join_broken_paragraphs(paras)
    blocks = _to_blocks(paras, meta)
    if not blocks and undecodable:
        raise EmptyDocumentError(
            "PDF text cannot be decoded (fonts without a Unicode map); run OCR on it first"
        )
    if not blocks:
        raise EmptyDocumentError(
            "PDF has no extractable text: no text layer, and OCR found no words on its "
            f"{len(textless)} page(s)"
        )
    return LoadedDocument(blocks=blocks, meta=meta, format=fmt)


# --- opening ---------------------------------------------------------------------------------


def _check_encryption_and_size(data: bytes) -> None:
    """Use pypdf for what pdfminer answers late or badly: passwords and the page count.

    A file encrypted with an empty user password opens in any viewer, so it is read; pypdf's
    page count comes from the page tree's /Count, so a PDF bomb is refused before parsing.
    """
    from pypdf import PdfReader
    from pypdf.errors import DependencyError, PyPdfError

    try:
        reader = PdfReader(io.BytesIO(data), strict=False)
        if reader.is_encrypted and not reader.decrypt(""):
            raise EncryptedFileError(_ENCRYPTED)
        n_pages = len(reader.pages)
    except (
        PyPdfError,
        DependencyError,
        NotImplementedError,
        ValueError,
        KeyError,
        TypeError,
        AttributeError,
        OSError,
        RecursionError,
    ):
        return  # pdfminer gets its own chance and reports the damage in its own words
    if n_pages > MAX_PAGES:
        raise FileTooLargeError(f"PDF has {n_pages} pages; the limit is {MAX_PAGES}")


def _pdfminer_error(exc: PdfminerException) -> Exception:
    cause = exc.args[0] if exc.args else exc
    if isinstance(cause, PDFPasswordIncorrect | PDFEncryptionError):
        return EncryptedFileError(_ENCRYPTED)
    return _damaged(cause)


def _damaged(exc: BaseException, where: str = "") -> CorruptFileError:
    """One line naming the damage (parser messages can span lines and run long)."""
    if isinstance(exc, RecursionError):
        detail = "objects nested or linked too deeply"
    else:
        detail = " ".join(str(exc).split())[:200] or type(exc).__name__
    return CorruptFileError(f"PDF is truncated or damaged: {where}{detail}")


def _fill_meta(meta: DocMeta, info: dict[str, Any]) -> None:
    title = _info_str(info.get("Title"))
    title = re.sub(r"^Microsoft (Word|PowerPoint) - ", "", title)
    if title and not meta.title and not _JUNK_TITLE.search(title):
        meta.title = title
    author = _info_str(info.get("Author"))
    if author and not meta.authors:
        names = [a.strip() for a in re.split(r"[;\n]", author)]
        meta.authors = [a for a in names if a and not _JUNK_AUTHOR.match(a)]
    match = _PDF_DATE.match(_info_str(info.get("CreationDate")))
    if match and 1900 < int(match.group(1)) < 2200:
        if not meta.date:
            meta.date = "-".join(g for g in match.groups() if g)
        if meta.year is None:
            meta.year = int(match.group(1))


def _info_str(value: Any) -> str:
    if isinstance(value, bytes):
        value = value.decode("latin-1", errors="replace")
    return " ".join(value.split()) if isinstance(value, str) else ""


# --- pages -----------------------------------------------------------------------------------


def _read_pages(pdf: Any) -> tuple[list[Para], int, list[int]]:
    """Paragraphs of every page, how many glyphs had no Unicode mapping ("(cid:N)"), and the
    pages with no text layer at all (1-based: for OCR)."""
    pages = pdf.pages
    if len(pages) > MAX_PAGES:
        raise FileTooLargeError(f"PDF has {len(pages)} pages; the limit is {MAX_PAGES}")
    paras: list[Para] = []
    total_chars = 0
    undecodable = 0
    textless: list[int] = []
    for page in pages:
        try:
            chars = page.chars
            total_chars += len(chars)
            if total_chars > MAX_CHARS:
                raise FileTooLargeError(
                    f"PDF holds more than {MAX_CHARS:,} characters of text; split it first"
                )
            undecodable += sum(1 for c in chars if c["text"].startswith("(cid:"))
            if chars:
                paras.extend(page_paragraphs(page))
            else:
                textless.append(page.page_number)
        except PdfminerException as exc:
            raise _pdfminer_error(exc) from exc
        except (IngestError, MemoryError):
            raise
        except Exception as exc:  # pdfminer raises plain errors from deep inside broken streams
            raise _damaged(exc, f"page {page.page_number}: ") from exc
        finally:
            page.close()  # drop pdfplumber's per-page caches; long PDFs otherwise pile up
    _drop_running_heads(paras, len(pages))
    return _join_broken_paragraphs(paras), undecodable, textless


def _drop_running_heads(paras: list[Para], n_pages: int) -> None:
    """Remove page numbers and running heads/feet repeated at the edges of most pages."""
    edges: dict[int, list[int]] = {}
    for n, para in enumerate(paras):
        edges.setdefault(para.page, []).append(n)
    edge_ids = {n for ids in edges.values() for n in ids[:2] + ids[-2:]}
    drop = {n for n in edge_ids if _PAGE_NUMBER.match(paras[n].text.strip())}
    if n_pages >= 3:
        # Same text (digits aside) at a page edge on two or more pages: a running head/foot.
        keys = {n: re.sub(r"\d+", "#", " ".join(paras[n].text.lower().split())) for n in edge_ids}
        pages_with: dict[str, set[int]] = {}
        for n, key in keys.items():
            pages_with.setdefault(key, set()).add(paras[n].page)
        drop |= {n for n, key in keys.items() if len(pages_with[key]) >= 2}
    for n in sorted(drop, reverse=True):
        if paras[n].kind != "table":
            del paras[n]


def _join_broken_paragraphs(paras: list[Para]) -> list[Para]:
    """Re-join a paragraph that a column or page break cut mid-sentence."""
    out: list[Para] = []
    for para in paras:
        prev = out[-1] if out else None
        if (
            prev is not None
            and prev.kind == para.kind == "paragraph"
            and prev.size == para.size
            and prev.bold == para.bold
            and not prev.text.rstrip().endswith((".", "!", "?", ":", ";"))
            and para.text[:1].islower()
        ):
            prev.text += "\n" + para.text
            prev.n_lines += para.n_lines
        else:
            out.append(para)
    return out


# --- blocks ----------------------------------------------------------------------------------


def _to_blocks(paras: list[Para], meta: DocMeta) -> list[Block]:
    text_paras = [p for p in paras if p.kind != "table"]
    if not text_paras:
        return [Block(p.text, "table", (), p.page) for p in paras]
    weights: Counter[float] = Counter()
    for p in text_paras:
        weights[p.size] += len(p.text)
    body = weights.most_common(1)[0][0]
    body_bold = sum(len(p.text) for p in text_paras if p.bold) > sum(weights.values()) / 2

    def is_heading(p: Para) -> bool:
        if p.n_lines > 3 or len(p.text) > 200 or not re.search(r"[A-Za-z]{2}", p.text):
            return False
        if p.size >= body + 1.0 and p.size >= body * 1.1:
            return True
        return (
            p.bold
            and not body_bold
            and p.n_lines == 1
            and len(p.text) <= 80
            and abs(p.size - body) <= 0.5
            and not p.text.rstrip().endswith((".", ",", ";"))
        )

    heading_sizes = sorted({p.size for p in text_paras if is_heading(p)}, reverse=True)
    top_size = heading_sizes[0] if heading_sizes else 0.0
    blocks: list[Block] = []
    path: list[tuple[int, str]] = []
    title_done = False
    for p in paras:
        section = tuple(h for _, h in path)
        if p.kind == "table":
            blocks.append(Block(p.text, "table", section, p.page))
            continue
        if not is_heading(p):
            blocks.append(Block(p.text, "paragraph", section, p.page))
            continue
        text = " ".join(p.text.split())
        if not title_done and p.page == 1 and p.size == top_size and p.size >= body + 2:
            title_done = True
            path = []
            if not meta.title:
                meta.title = text
            blocks.append(Block(p.text, "title", (), p.page))
            continue
        level = heading_sizes.index(p.size) + 1 if p.size in heading_sizes else 99
        while path and path[-1][0] >= level:
            path.pop()
        blocks.append(Block(p.text, "heading", tuple(h for _, h in path), p.page))
        path.append((level, text))
    return [b for b in blocks if b.text.strip()]

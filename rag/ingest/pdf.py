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

Failures are reported by cause: not a PDF, truncated, encrypted, scanned (no text layer), or
too big to be a plausible article (a PDF bomb guard).
"""

from __future__ import annotations

import contextlib
import io
import itertools
import logging
import re
import statistics
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

import pdfplumber
from pdfminer.pdfdocument import PDFEncryptionError, PDFPasswordIncorrect
from pdfplumber.utils import cluster_objects, extract_words
from pdfplumber.utils.exceptions import PdfminerException

from rag.errors import (
    CorruptFileError,
    EmptyDocumentError,
    EncryptedFileError,
    FileTooLargeError,
    IngestError,
)
from rag.types import Block, DocMeta, LoadedDocument

MAX_PAGES = 2000
MAX_CHARS = 20_000_000

_ENCRYPTED = "PDF is encrypted (password protected)"
_BOLD = re.compile(r"bold|black|heavy|semibold|demi", re.I)
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


@dataclass(slots=True)
class _Item:
    """A run of words on one line (no gutter inside it), or a whole table."""

    x0: float
    top: float
    x1: float
    bottom: float
    words: list[dict[str, Any]] = field(default_factory=list)
    rows: list[str] | None = None  # rendered table rows


@dataclass(slots=True)
class _Para:
    text: str
    page: int
    size: float
    bold: bool
    n_lines: int
    kind: str = "paragraph"  # or "table"


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
        paras, undecodable = _read_pages(pdf)
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
    blocks = _to_blocks(paras, meta)
    if not blocks and undecodable:
        raise EmptyDocumentError(
            "PDF text cannot be decoded (fonts without a Unicode map); run OCR on it first"
        )
    if not blocks:
        raise EmptyDocumentError("PDF has no extractable text (scanned image? run OCR first)")
    return LoadedDocument(blocks=blocks, meta=meta, format="pdf")


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


def _read_pages(pdf: Any) -> tuple[list[_Para], int]:
    """Paragraphs of every page, and how many glyphs had no Unicode mapping ("(cid:N)")."""
    pages = pdf.pages
    if len(pages) > MAX_PAGES:
        raise FileTooLargeError(f"PDF has {len(pages)} pages; the limit is {MAX_PAGES}")
    paras: list[_Para] = []
    total_chars = 0
    undecodable = 0
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
                paras.extend(_page_paragraphs(page))
        except PdfminerException as exc:
            raise _pdfminer_error(exc) from exc
        except (IngestError, MemoryError):
            raise
        except Exception as exc:  # pdfminer raises plain errors from deep inside broken streams
            raise _damaged(exc, f"page {page.page_number}: ") from exc
        finally:
            page.close()  # drop pdfplumber's per-page caches; long PDFs otherwise pile up
    _drop_running_heads(paras, len(pages))
    return _join_broken_paragraphs(paras), undecodable


def _page_paragraphs(page: Any) -> list[_Para]:
    tables = [t for t in page.find_tables() if _is_real_table(t)]
    items: list[_Item] = []
    boxes: list[tuple[float, ...]] = []
    for table in tables:
        rows = _render_table(table.extract())
        if rows:
            x0, top, x1, bottom = table.bbox
            items.append(_Item(x0, top, x1, bottom, rows=rows))
            boxes.append((x0 - 1, top - 1, x1 + 1, bottom + 1))

    words = extract_words(
        _running_chars(page.chars, boxes), x_tolerance_ratio=0.2, extra_attrs=["size", "fontname"]
    )
    upright = [w for w in words if w.get("upright", True)]
    if len(upright) >= len(words) / 2:
        words = upright  # drop sideways margin stamps ("Downloaded from ...")
    if not words and not items:
        return []
    size = statistics.median(w["size"] for w in words) if words else 10.0
    gutter = max(6.0, 1.2 * size)
    ytol = 0.35 * size
    items.extend(_fragments(words, gutter, ytol))
    para_gap = _usual_line_gap(items, size) + 0.35 * size
    paras: list[_Para] = []
    for leaf in _xy_cut(items, gutter, para_gap, ytol):
        paras.extend(_leaf_paragraphs(leaf, page.page_number, ytol))
    return paras


def _running_chars(chars: list[dict[str, Any]], boxes: list[tuple[float, ...]]) -> list[Any]:
    """Characters outside tables, each once (fake bold prints a glyph twice, slightly offset).

    Glyphs without a Unicode mapping (pdfminer writes them as "(cid:N)") are dropped as noise.
    """
    seen: set[tuple[str, int, int]] = set()
    kept = []
    for char in chars:
        if char["text"].startswith("(cid:"):
            continue
        key = (char["text"], round(char["x0"]), round(char["top"]))
        if key in seen:
            continue
        seen.add(key)
        cx = (char["x0"] + char["x1"]) / 2
        cy = (char["top"] + char["bottom"]) / 2
        if not any(b[0] <= cx <= b[2] and b[1] <= cy <= b[3] for b in boxes):
            kept.append(char)
    return kept


def _is_real_table(table: Any) -> bool:
    """A ruled box around a single cell or a single row is a frame, not a table."""
    rows = table.rows
    return len(rows) >= 2 and max(len(r.cells) for r in rows) >= 2


def _render_table(rows: list[list[str | None]]) -> list[str]:
    rendered = []
    for row in rows:
        cells = [" ".join((cell or "").split()) for cell in row]
        if any(cells):
            rendered.append(" | ".join(cells))
    return rendered


def _fragments(words: list[dict[str, Any]], gutter: float, ytol: float) -> list[_Item]:
    """Words sharing a baseline, split wherever the horizontal gap could be a column gutter."""
    out: list[_Item] = []
    for row in cluster_objects(words, "bottom", ytol):
        row.sort(key=lambda w: w["x0"])
        current: list[dict[str, Any]] = [row[0]]
        for word in row[1:]:
            if word["x0"] - current[-1]["x1"] >= gutter:
                out.append(_item(current))
                current = []
            current.append(word)
        out.append(_item(current))
    return out


def _item(words: list[dict[str, Any]]) -> _Item:
    return _Item(
        min(w["x0"] for w in words),
        min(w["top"] for w in words),
        max(w["x1"] for w in words),
        max(w["bottom"] for w in words),
        words,
    )


def _usual_line_gap(items: list[_Item], size: float) -> float:
    """Typical gap from a line to the next line below it in the same column.

    The lower quartile, not the median: on a page of short paragraphs and headings the
    paragraph gaps can outnumber the line gaps.
    """
    text = sorted((i for i in items if i.rows is None), key=lambda i: i.top)
    gaps = []
    for n, item in enumerate(text):
        for other in text[n + 1 :]:
            if other.top > item.bottom + 3 * size:
                break  # sorted by top: nothing nearer below
            if other.top < item.bottom - 0.5 * size:
                continue  # same line, or overlapping it
            if other.x0 < item.x1 and item.x0 < other.x1:
                gap = other.top - item.bottom
                if gap < 3 * size:
                    gaps.append(gap)
                break
    return max(sorted(gaps)[len(gaps) // 4], 0.0) if gaps else 0.25 * size


def _cuts(intervals: Iterable[tuple[float, float]], min_gap: float) -> list[float]:
    """Positions of empty stretches at least ``min_gap`` wide between the intervals."""
    cuts: list[float] = []
    end: float | None = None
    for start, stop in sorted(intervals):
        if end is not None and start - end >= min_gap:
            cuts.append((start + end) / 2)
        end = stop if end is None else max(end, stop)
    return cuts


def _split(items: list[_Item], cuts: list[float], *, vertical: bool) -> list[list[_Item]]:
    groups: list[list[_Item]] = [[] for _ in range(len(cuts) + 1)]
    for item in items:
        centre = (item.x0 + item.x1) / 2 if vertical else (item.top + item.bottom) / 2
        groups[sum(1 for c in cuts if centre > c)].append(item)
    return [g for g in groups if g]


def _n_rows(items: list[_Item], ytol: float) -> int:
    return len(cluster_objects(items, lambda i: i.bottom, ytol))


def _xy_cut(items: list[_Item], gutter: float, para_gap: float, ytol: float) -> list[list[_Item]]:
    """Recursive XY-cut: columns left to right, then blocks top to bottom.

    A vertical cut needs a gutter that is empty over the whole region and at least one side
    with two or more lines (a single line with wide word spacing is not two columns).
    Horizontal cuts happen only where no gutter exists, at gaps wider than a line gap.
    """
    if len(items) < 2:
        return [items] if items else []
    vcuts = _cuts(((i.x0, i.x1) for i in items), gutter)
    if vcuts:
        groups = _split(items, vcuts, vertical=True)
        if len(groups) > 1 and max(_n_rows(g, ytol) for g in groups) >= 2:
            return [leaf for g in groups for leaf in _xy_cut(g, gutter, para_gap, ytol)]
    hcuts = _cuts(((i.top, i.bottom) for i in items), para_gap)
    if hcuts:
        groups = _split(items, hcuts, vertical=False)
        if len(groups) > 1:
            return [leaf for g in groups for leaf in _xy_cut(g, gutter, para_gap, ytol)]
    return [items]


@dataclass(slots=True)
class _Line:
    text: str
    x0: float
    size: float
    bold: bool
    n_chars: int


def _leaf_paragraphs(items: list[_Item], page_no: int, ytol: float) -> list[_Para]:
    """Lines of one block, split into paragraphs at font changes and first-line indents."""
    out: list[_Para] = []
    text_items = []
    for item in sorted(items, key=lambda i: i.top):
        if item.rows is not None:
            out.extend(_paragraphs(_lines(text_items, ytol), page_no))
            text_items = []
            out.append(_Para("\n".join(item.rows), page_no, 0.0, False, 0, kind="table"))
        else:
            text_items.append(item)
    out.extend(_paragraphs(_lines(text_items, ytol), page_no))
    return out


def _lines(items: list[_Item], ytol: float) -> list[_Line]:
    words = [w for item in items for w in item.words]
    lines = []
    for row in sorted(cluster_objects(words, "bottom", ytol), key=lambda r: r[0]["bottom"]):
        row.sort(key=lambda w: w["x0"])
        sizes: Counter[float] = Counter()
        for w in row:
            sizes[round(w["size"], 1)] += len(w["text"])
        lines.append(
            _Line(
                text=_join_words(row),
                x0=row[0]["x0"],
                size=sizes.most_common(1)[0][0],
                bold=all(_BOLD.search(w["fontname"]) for w in row),
                n_chars=sum(sizes.values()),
            )
        )
    return lines


def _join_words(row: list[dict[str, Any]]) -> str:
    """Words of one line; no space where a font change split a word (``m`` + superscript)."""
    parts = [row[0]["text"]]
    for prev, word in itertools.pairwise(row):
        if word["x0"] - prev["x1"] > 0.1 * min(prev["size"], word["size"]):
            parts.append(" ")
        parts.append(word["text"])
    return "".join(parts)


def _paragraphs(lines: list[_Line], page_no: int) -> list[_Para]:
    if not lines:
        return []
    margin = min(line.x0 for line in lines)
    em = statistics.median(line.size for line in lines)

    def aligned(line: _Line) -> bool:
        return line.x0 <= margin + 0.3 * em

    # First-line indents mark paragraphs only in left-aligned text (not in centred titles).
    use_indents = len(lines) >= 3 and sum(map(aligned, lines)) > len(lines) / 2
    groups: list[list[_Line]] = [[lines[0]]]
    for n in range(1, len(lines)):
        prev, line = lines[n - 1], lines[n]
        style_change = abs(line.size - prev.size) > 0.5 or line.bold != prev.bold
        indent = (
            use_indents
            and line.x0 > margin + 0.8 * em
            and aligned(prev)
            and (n + 1 == len(lines) or aligned(lines[n + 1]))
        )
        if style_change or indent:
            groups.append([])
        groups[-1].append(line)
    out = []
    for group in groups:
        n_chars = sum(line.n_chars for line in group) or 1
        size = sum(line.size * line.n_chars for line in group) / n_chars
        out.append(
            _Para(
                "\n".join(line.text for line in group),
                page_no,
                round(size, 1),
                all(line.bold for line in group),
                len(group),
            )
        )
    return out


def _drop_running_heads(paras: list[_Para], n_pages: int) -> None:
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


def _join_broken_paragraphs(paras: list[_Para]) -> list[_Para]:
    """Re-join a paragraph that a column or page break cut mid-sentence."""
    out: list[_Para] = []
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


def _to_blocks(paras: list[_Para], meta: DocMeta) -> list[Block]:
    text_paras = [p for p in paras if p.kind != "table"]
    if not text_paras:
        return [Block(p.text, "table", (), p.page) for p in paras]
    weights: Counter[float] = Counter()
    for p in text_paras:
        weights[p.size] += len(p.text)
    body = weights.most_common(1)[0][0]
    body_bold = sum(len(p.text) for p in text_paras if p.bold) > sum(weights.values()) / 2

    def is_heading(p: _Para) -> bool:
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

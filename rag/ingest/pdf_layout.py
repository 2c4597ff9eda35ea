"""One PDF page as paragraphs in reading order: tables lifted out, columns found by XY-cut.

Steps 1-3 of the PDF loader (``rag.ingest.pdf``), kept apart because they see one page only:
ruled tables become ``cell | cell`` rows and leave the running text; the remaining words are
ordered by recursive XY-cut, so a two-column page reads column by column; paragraphs split on
gaps wider than the page's usual line gap, on first-line indents and on font changes. Headings
need the whole document's font sizes, so the loader finds those.
"""

from __future__ import annotations

import itertools
import re
import statistics
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from pdfplumber.utils import cluster_objects, extract_words

_BOLD = re.compile(r"bold|black|heavy|semibold|demi", re.I)


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
class Para:
    """A paragraph (or table) of one page, with the font facts heading detection needs."""

    text: str
    page: int
    size: float
    bold: bool
    n_lines: int
    kind: str = "paragraph"  # or "table"


def page_paragraphs(page: Any) -> list[Para]:
    """Paragraphs and tables of one pdfplumber page, in reading order."""
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
    paras: list[Para] = []
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


def _leaf_paragraphs(items: list[_Item], page_no: int, ytol: float) -> list[Para]:
    """Lines of one block, split into paragraphs at font changes and first-line indents."""
    out: list[Para] = []
    text_items = []
    for item in sorted(items, key=lambda i: i.top):
        if item.rows is not None:
            out.extend(_paragraphs(_lines(text_items, ytol), page_no))
            text_items = []
            out.append(Para("\n".join(item.rows), page_no, 0.0, False, 0, kind="table"))
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


def _paragraphs(lines: list[_Line], page_no: int) -> list[Para]:
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
            Para(
                "\n".join(line.text for line in group),
                page_no,
                round(size, 1),
                all(line.bold for line in group),
                len(group),
            )
        )
    return out

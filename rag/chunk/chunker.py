"""Structure-aware chunking: sections -> paragraphs -> sentences, never inside a sentence.

Budgets are counted with the embedder's own tokenizer, so a chunk never silently loses its
tail to the embedder's truncation. Every chunk is an exact slice of the document text:
``doc.text[chunk.start:chunk.end] == chunk.text``.
"""

from __future__ import annotations

import bisect
import hashlib
import itertools
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import blingfire

from rag.settings import ChunkSettings
from rag.text.bibliography import is_reference_list, reference_entries
from rag.types import Chunk, Document, Span

TokenCounter = Callable[[Sequence[str]], list[int]]

# Bumped whenever the same settings would cut different chunks; indexes record it and cached
# benchmark/eval indexes are keyed by it.
ALGORITHM = "sections>paragraphs>sentences/v3"  # v3: a reference list, entry by entry


@dataclass(frozen=True, slots=True)
class _Unit:
    """A piece that is never split: a sentence, a table row or a list line."""

    start: int
    end: int
    tokens: int
    paragraph: int  # index of the span it came from; a change marks a paragraph boundary


def chunk_id(doc_id: str, start: int, end: int, text: str) -> str:
    digest = hashlib.sha1(f"{doc_id}\x00{start}\x00{end}\x00{text}".encode()).hexdigest()
    return f"{doc_id}#{digest[:12]}"


class Chunker:
    """Splits documents into overlapping, token-budgeted chunks with provenance."""

    def __init__(self, settings: ChunkSettings, count_tokens: TokenCounter) -> None:
        self.settings = settings
        self.count_tokens = count_tokens

    def describe(self) -> dict[str, int | str]:
        """What the index manifest records: a different chunker means a rebuild."""
        return {
            "algorithm": ALGORITHM,
            "max_tokens": self.settings.max_tokens,
            "overlap_tokens": self.settings.overlap_tokens,
        }

    def run(self, doc: Document) -> list[Chunk]:
        chunks: list[Chunk] = []
        for section_spans in _entry_groups(doc.text, _sections(doc.spans)):
            units = self._units(doc.text, section_spans)
            # Spans are sorted and disjoint: bisect instead of a scan per chunk (a document of
            # 300,000 one-line paragraphs took minutes with the scan).
            span_starts = [s.start for s in section_spans]
            for start, end, tokens in self._pack(units):
                text = doc.text[start:end]
                at = bisect.bisect_right(span_starts, start) - 1
                holder = section_spans[at] if at >= 0 else None
                first = (
                    holder
                    if holder is not None and holder.start <= start < holder.end
                    else section_spans[0]
                )
                chunks.append(
                    Chunk(
                        chunk_id=chunk_id(doc.doc_id, start, end, text),
                        doc_id=doc.doc_id,
                        ordinal=len(chunks),
                        start=start,
                        end=end,
                        text=text,
                        section=first.section,
                        page=first.page,
                        n_tokens=tokens,
                    )
                )
        return chunks

    # -- units --------------------------------------------------------------------------------

    def _units(self, text: str, spans: list[Span]) -> list[_Unit]:
        pieces: list[tuple[int, int, int]] = []  # start, end, paragraph
        whole = [text[s.start : s.end] for s in spans]
        whole_tokens = self.count_tokens(whole)
        for index, (span, tokens) in enumerate(zip(spans, whole_tokens, strict=True)):
            if tokens <= self.settings.max_tokens:
                pieces.append((span.start, span.end, index))
            elif span.kind in ("table", "list"):
                pieces.extend((a, b, index) for a, b in _lines(text, span))
            else:
                pieces.extend((a, b, index) for a, b in self._sentences(text, span))
        counts = self.count_tokens([text[a:b] for a, b, _ in pieces])
        return [_Unit(a, b, n, p) for (a, b, p), n in zip(pieces, counts, strict=True)]

    @staticmethod
    def _sentences(text: str, span: Span) -> list[tuple[int, int]]:
        """Sentence spans covering ``span``, cut where Bling Fire starts a sentence.

        Bling Fire (a compiled finite-state splitter) rather than pysbd: pysbd spent a third of
        SciFact's indexing time recompiling its abbreviation regexes, and it cut inside
        sentences at list markers ("included if: | 1) they were ..."). Bling Fire's misses are
        merges (a sentence opening with a lower-case gene name), which cost only packing
        granularity, never a cut inside a sentence.
        """
        segment = text[span.start : span.end]
        _, offsets = blingfire.text_to_sentences_and_offsets(segment)
        starts = [a for a, _ in offsets]
        if not starts:
            return [(span.start, span.end)]
        starts[0] = 0
        out = []
        for a, b in itertools.pairwise([*starts, len(segment)]):
            a, b = _trim(segment, a, b)
            if b > a:
                out.append((span.start + a, span.start + b))
        return out

    # -- packing ------------------------------------------------------------------------------

    def _pack(self, units: list[_Unit]) -> list[tuple[int, int, int]]:
        """Greedy packing with sentence-level overlap; prefers paragraph boundaries."""
        budget = self.settings.max_tokens
        overlap = self.settings.overlap_tokens
        out: list[tuple[int, int, int]] = []
        current: list[_Unit] = []
        used = 0
        fresh = 0  # units in `current` not already emitted in the previous chunk
        remaining = self._paragraph_remaining(units)
        for index, unit in enumerate(units):
            starts_paragraph = bool(current) and unit.paragraph != current[-1].paragraph
            paragraph_fits = remaining[index] <= budget - used
            soft_break = starts_paragraph and not paragraph_fits and used >= budget // 2
            if current and (used + unit.tokens > budget or soft_break):
                if fresh:
                    out.append((current[0].start, current[-1].end, used))
                current, used = self._overlap_tail(current, overlap, budget - unit.tokens)
                fresh = 0
            current.append(unit)
            used += unit.tokens
            fresh += 1
        if current and fresh:
            out.append((current[0].start, current[-1].end, used))
        return out

    @staticmethod
    def _paragraph_remaining(units: list[_Unit]) -> list[int]:
        """Tokens from each unit to the end of its paragraph (one backward pass, not a scan
        per unit: that was quadratic in the sentences of one long paragraph)."""
        remaining = [0] * len(units)
        total = 0
        for index in range(len(units) - 1, -1, -1):
            if index + 1 < len(units) and units[index + 1].paragraph != units[index].paragraph:
                total = 0
            total += units[index].tokens
            remaining[index] = total
        return remaining

    @staticmethod
    def _overlap_tail(units: list[_Unit], overlap: int, room: int) -> tuple[list[_Unit], int]:
        tail: list[_Unit] = []
        used = 0
        for unit in reversed(units):
            if used + unit.tokens > min(overlap, room):
                break
            tail.insert(0, unit)
            used += unit.tokens
        return tail, used


def _sections(spans: list[Span]) -> list[list[Span]]:
    """Consecutive content spans that share a section path; titles and headings are metadata.

    A document made only of headings (a bare title) is chunked as it is, so it stays findable.
    """
    if all(span.kind in ("title", "heading") for span in spans):
        return [list(spans)] if spans else []
    groups: list[list[Span]] = []
    for span in spans:
        if span.kind in ("title", "heading"):
            groups.append([])
            continue
        if not groups or (groups[-1] and groups[-1][-1].section != span.section):
            groups.append([])
        groups[-1].append(span)
    return [g for g in groups if g]


def _entry_groups(text: str, groups: list[list[Span]]) -> list[list[Span]]:
    """Groups with each reference-list entry made a group of its own.

    Packed together, five unrelated entries make one chunk whose embedding and BM25 length
    belong to none of them: a question about one trial's design or first author, answered only
    by its entry, did not retrieve it. An entry is one paper's record, so it is one chunk.
    """
    out: list[list[Span]] = []
    for group in groups:
        run: list[Span] = []
        for span in group:
            if not _is_bibliography(text, span):
                run.append(span)
                continue
            if run:
                out.append(run)
                run = []
            out.extend([piece] for piece in _entries(text, span))
        if run:
            out.append(run)
    return out


def _is_bibliography(text: str, span: Span) -> bool:
    return is_reference_list(span.section, text[span.start : span.end])


def _entries(text: str, span: Span) -> list[Span]:
    """``span`` cut at its entries; a lead-in ("References:") stays with the first entry."""
    body = text[span.start : span.end]
    bounds = reference_entries(body)
    if len(bounds) < 2:
        return [span]
    if body.lstrip()[:1] not in "[0123456789":  # a lead-in
        bounds = [(0, bounds[1][1]), *bounds[2:]]
    pieces = []
    for a, b in bounds:
        a, b = _trim(text, span.start + a, span.start + b)
        if b > a:
            pieces.append(Span(a, b, span.kind, span.section, span.page))
    return pieces or [span]


def _lines(text: str, span: Span) -> list[tuple[int, int]]:
    out: list[tuple[int, int]] = []
    cursor = span.start
    for line in text[span.start : span.end].split("\n"):
        if line.strip():
            out.append((cursor, cursor + len(line)))
        cursor += len(line) + 1
    return out or [(span.start, span.end)]


def _trim(text: str, a: int, b: int) -> tuple[int, int]:
    while a < b and text[a].isspace():
        a += 1
    while b > a and text[b - 1].isspace():
        b -= 1
    return a, b


def embedding_text(title: str, section: tuple[str, ...], text: str) -> str:
    """What the embedder sees for a chunk: a short header gives context a passage lacks."""
    header = " > ".join(p for p in (title[:200], *section) if p)
    return f"{header}\n{text}" if header else text

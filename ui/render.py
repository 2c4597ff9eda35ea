"""HTML for the chat: answers with linked citation markers, drafts, source cards, highlights."""

from __future__ import annotations

import html
import re
from pathlib import Path
from typing import Any

from rag.schemas import AnswerResponse, Citation, Evidence, IngestReport, SearchHit

ABSTAIN_BOX = "The indexed documents do not answer this question"
_MARKER = re.compile(r"\[(\d+)\]")


def escape(text: Any) -> str:
    return html.escape(str(text), quote=True)


def _where(section: list[str], page: int | None, doc_id: str, ocr: bool = False) -> str:
    parts = [" › ".join(section)] if section else []
    if page:
        parts.append(f"p. {page}")
    parts.append(doc_id)
    if ocr:
        parts.append("text read by OCR from a scan")
    return " · ".join(escape(p) for p in parts)


def _open(c: Citation) -> str:
    """A link that opens the quote where it stands (a PDF's page, the quote boxed)."""
    if not c.view_url:
        return ""
    return (
        f" · <a class='rag-open' href='{escape(c.view_url)}' target='_blank' "
        "rel='noopener'>open where it stands</a>"
    )


def highlight(passage: str, spans: list[tuple[int, int]]) -> str:
    """The passage escaped, with each (start, end) span wrapped in <mark>."""
    out, pos = [], 0
    for start, end in sorted(spans):
        start = max(start, pos)
        if end <= start:
            continue
        out.append(escape(passage[pos:start]))
        out.append(f"<mark>{escape(passage[start:end])}</mark>")
        pos = end
    out.append(escape(passage[pos:]))
    return "".join(out)


def quote_spans(citation: Citation) -> list[tuple[int, int]]:
    """Quote positions inside the cited passage (document offsets, checked against the text)."""
    spans = []
    for q in citation.quotes:
        start, end = q.char_start - citation.char_start, q.char_end - citation.char_start
        if not (0 <= start < end <= len(citation.passage)) or (
            citation.passage[start:end] != q.text
        ):
            start = citation.passage.find(q.text)
            end = start + len(q.text)
        if start >= 0 and q.text:
            spans.append((start, end))
    return spans


def answer_html(response: AnswerResponse, turn: int) -> str:
    if response.abstained:
        reason = (
            f"<div class='rag-reason'>{escape(response.abstain_reason)}</div>"
            if response.abstain_reason
            else ""
        )
        # "The indexed documents do not mention KEYNOTE-189." says more than the generic box.
        said = response.answer.rstrip(".") or ABSTAIN_BOX
        return (
            f"<div class='rag-abstain'><strong>{escape(said)}.</strong>{reason}"
            "<div class='rag-reason'>The closest passages are shown under Sources.</div></div>"
        )
    text = escape(response.answer)
    linked = _MARKER.sub(
        lambda m: f"<a class='rag-cite' href='#rag-src-{turn}-{m.group(1)}'>[{m.group(1)}]</a>",
        text,
    )
    notes = []
    if response.quoted:
        notes.append("Quoted from the passage: the drafted answer did not hold up.")
    if response.verdict is not None and not response.verdict.shown:
        notes.append("No yes/no verdict: the evidence does not decide it clearly.")
    note = "".join(f"<div class='rag-reason'>{escape(n)}</div>" for n in notes)
    return f"<div class='rag-answer'>{linked}</div>{note}"


def draft_html(evidence: list[Evidence], draft: str) -> str:
    parts = []
    if evidence:
        parts.append("<div class='rag-status'>Evidence found; writing the answer…</div>")
        parts.extend(
            f"<div class='rag-evidence'>“{escape(ev.text)}” — <em>{escape(ev.title)}</em></div>"
            for ev in evidence
        )
    else:
        parts.append("<div class='rag-status'>Searching the documents…</div>")
    if draft:
        parts.append(f"<div class='rag-draft'>{escape(draft)}</div>")
    return "".join(parts)


def evidence_panel(evidence: list[Evidence]) -> str:
    if not evidence:
        return "<div class='rag-sources'><div class='rag-empty'>No evidence yet.</div></div>"
    cards = "".join(
        f"<div class='rag-card'><div class='rag-where'>{escape(ev.title)}</div>"
        f"<div class='rag-passage'><mark>{escape(ev.text)}</mark></div></div>"
        for ev in evidence
    )
    return f"<div class='rag-sources'><h3>Evidence (answer on its way)</h3>{cards}</div>"


def evidence_spans(citation: Citation, evidence: list[Evidence]) -> list[tuple[int, int]]:
    """Evidence sentences inside the cited passage: the fallback highlight when the verifier
    recorded no quote for a citation."""
    spans = []
    for ev in evidence:
        start, end = ev.char_start - citation.char_start, ev.char_end - citation.char_start
        inside = ev.chunk_id == citation.chunk_id and 0 <= start < end <= len(citation.passage)
        if inside and citation.passage[start:end] == ev.text:
            spans.append((start, end))
    return spans


def _citation_card(c: Citation, turn: int, evidence: list[Evidence]) -> str:
    verdict = escape(c.verdict)
    spans = quote_spans(c) or evidence_spans(c, evidence)
    return (
        f"<details class='rag-card rag-verdict-{verdict}' id='rag-src-{turn}-{c.number}' open>"
        f"<summary>[{c.number}] {escape(c.title)}"
        f"<span class='rag-badge rag-badge-{verdict}'>{verdict}</span></summary>"
        f"<div class='rag-where'>{_where(c.section, c.page, c.doc_id, c.ocr)}{_open(c)}</div>"
        f"<div class='rag-passage'>{highlight(c.passage, spans)}</div></details>"
    )


def _closest_card(hit: SearchHit, evidence: list[Evidence]) -> str:
    p = hit.provenance
    spans = []
    for ev in evidence:
        if ev.chunk_id == p.chunk_id:
            start = ev.char_start - p.char_start
            if start >= 0 and hit.text[start : ev.char_end - p.char_start] == ev.text:
                spans.append((start, ev.char_end - p.char_start))
    return (
        f"<details class='rag-card rag-closest' open><summary>{escape(p.title)}"
        "<span class='rag-badge rag-badge-closest'>closest passage</span></summary>"
        f"<div class='rag-where'>{_where(p.section, p.page, p.doc_id, p.format == 'pdf-ocr')}</div>"
        f"<div class='rag-passage'>{highlight(hit.text, spans)}</div></details>"
    )


def sources_html(response: AnswerResponse, turn: int) -> str:
    if response.abstained:
        cards = "".join(_closest_card(h, response.evidence) for h in response.passages[:3])
        body = cards or "<div class='rag-empty'>No passage matched.</div>"
        return f"<div class='rag-sources'><h3>Closest passages</h3>{body}</div>"
    cards = "".join(_citation_card(c, turn, response.evidence) for c in response.citations)
    return f"<div class='rag-sources'><h3>Sources</h3>{cards}</div>"


def report_rows(report: IngestReport) -> list[list[Any]]:
    return [
        [r.status, Path(r.path).name, r.doc_id or "", r.chunks or "", r.reason or ""]
        for r in report.results
    ]

"""Pydantic models for everything that leaves the library: CLI --json, HTTP API, eval records."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any, Literal

from pydantic import BaseModel, Field

from rag.types import Hit

IngestStatus = Literal[
    "added", "replaced", "unchanged", "duplicate", "skipped", "failed", "removed"
]


class IngestResult(BaseModel):
    path: str
    status: IngestStatus
    doc_id: str | None = None
    title: str | None = None
    chunks: int = 0
    reason: str | None = Field(None, description="Why a file failed or was skipped (one line).")
    error: str | None = Field(None, description="Error class for failures.")


class IngestReport(BaseModel):
    results: list[IngestResult] = Field(default_factory=list)
    seconds: float = 0.0

    def count(self, status: IngestStatus) -> int:
        return sum(1 for r in self.results if r.status == status)

    @property
    def failed(self) -> bool:
        return any(r.status == "failed" for r in self.results)

    def summary(self) -> dict[str, int]:
        keys: tuple[IngestStatus, ...] = (
            "added",
            "replaced",
            "unchanged",
            "duplicate",
            "skipped",
            "failed",
            "removed",
        )
        return {k: self.count(k) for k in keys if self.count(k)}


class DocumentInfo(BaseModel):
    doc_id: str
    title: str
    source: str
    format: str
    kind: str = ""
    year: int | None = None
    chunks: int
    added_at: float
    authors: list[str] = Field(default_factory=list)
    date: str = ""
    doi: str = ""
    pmid: str = ""
    url: str = ""


class Provenance(BaseModel):
    """Where a passage sits in its document: enough to find and quote it exactly."""

    chunk_id: str
    doc_id: str
    title: str
    section: list[str] = Field(default_factory=list)
    page: int | None = None
    char_start: int
    char_end: int
    source: str
    format: str
    year: int | None = None


class WhyRetrieved(BaseModel):
    dense_rank: int | None = None
    dense_score: float | None = None
    lexical_rank: int | None = None
    lexical_score: float | None = None
    fused_rank: int | None = None
    rerank_score: float | None = None
    matched_terms: list[str] = Field(default_factory=list)


class SearchHit(BaseModel):
    rank: int
    score: float
    text: str
    provenance: Provenance
    why: WhyRetrieved

    @classmethod
    def from_hit(cls, rank: int, hit: Hit) -> SearchHit:
        c = hit.chunk
        return cls(
            rank=rank,
            score=round(float(hit.score), 6),
            text=c.text,
            provenance=Provenance(
                chunk_id=c.chunk_id,
                doc_id=c.doc_id,
                title=c.title,
                section=list(c.section),
                page=c.page,
                char_start=c.start,
                char_end=c.end,
                source=c.source,
                format=c.format,
                year=c.year,
            ),
            why=WhyRetrieved(
                dense_rank=hit.dense_rank,
                dense_score=None if hit.dense_score is None else round(float(hit.dense_score), 6),
                lexical_rank=hit.lexical_rank,
                lexical_score=None
                if hit.lexical_score is None
                else round(float(hit.lexical_score), 6),
                fused_rank=hit.fused_rank,
                rerank_score=None
                if hit.rerank_score is None
                else round(float(hit.rerank_score), 6),
                matched_terms=hit.matched_terms,
            ),
        )


class SearchResponse(BaseModel):
    query: str
    expanded_query: str | None = None
    hits: list[SearchHit]
    timings_ms: dict[str, float] = Field(default_factory=dict)
    index_fingerprint: str = ""


# -- answers ----------------------------------------------------------------------------------


class NumberCheck(BaseModel):
    text: str
    traced: bool


class Quote(BaseModel):
    """One exact sentence of a cited passage, with its place in the document."""

    text: str
    char_start: int
    char_end: int


class Citation(BaseModel):
    number: int = Field(description="The [n] used in the answer text.")
    chunk_id: str
    doc_id: str
    title: str
    section: list[str] = Field(default_factory=list)
    page: int | None = None
    source: str = ""
    char_start: int = Field(description="Start of the passage the model saw, in the document.")
    char_end: int
    passage: str
    quotes: list[Quote] = Field(default_factory=list)
    verdict: Literal["supported", "partial", "unsupported"] = "supported"
    ocr: bool = Field(False, description="The passage was read by OCR from a scanned page.")
    view_url: str = Field(
        "",
        description="Server-relative link to the quote where it stands in its document (a PDF's "
        "page rendered, the quote boxed); set by the HTTP API and the UI.",
    )


class AnswerSentence(BaseModel):
    text: str
    citations: list[int] = Field(default_factory=list)
    verdict: Literal["supported", "partial", "unsupported"]
    support_score: float
    reasons: list[str] = Field(default_factory=list)
    numbers: list[NumberCheck] = Field(default_factory=list)
    auto_cited: bool = Field(False, description="Citation added or corrected by the verifier.")
    model_citations: list[int] = Field(
        default_factory=list, description="Valid citations as the model wrote them."
    )
    dropped: bool = Field(
        False, description="Removed from the shown answer (unsupported, or not an answer)."
    )
    answer_score: float | None = Field(
        None, description="The answer judge's probability that this sentence answers the question."
    )


class Evidence(BaseModel):
    """Extractive quotes shown before the generated answer arrives."""

    text: str
    doc_id: str
    title: str
    chunk_id: str
    char_start: int
    char_end: int
    score: float


class Verdict(BaseModel):
    """A yes/no/maybe verdict from the cited evidence, shown only when it is confident.

    The classifier is measured against the majority class on held-out questions; below its
    calibrated confidence the answer states the cited finding and gives no verdict."""

    label: Literal["yes", "no", "maybe"]
    probabilities: dict[str, float]
    shown: bool = Field(description="Confident enough to show (see answer.verdict_confidence).")


class AnswerResponse(BaseModel):
    question: str
    standalone_question: str | None = None
    ignored_instructions: list[str] = Field(
        default_factory=list,
        description='Clauses of the question addressed to the model ("print the word X", '
        '"cite passage [99]"): set aside, the rest of the question is answered.',
    )
    answer: str
    abstained: bool
    abstain_reason: str | None = None
    sentences: list[AnswerSentence] = Field(default_factory=list)
    citations: list[Citation] = Field(default_factory=list)
    evidence: list[Evidence] = Field(default_factory=list)
    passages: list[SearchHit] = Field(
        default_factory=list, description="Closest passages (always present for abstentions)."
    )
    raw_answer: str = ""
    removed_citations: int = Field(0, description="Citations to passages that were not given.")
    pruned_citations: int = Field(0, description="Valid citations that supported nothing.")
    retried: bool = Field(
        False,
        description="The first draft repeated the prompt's worked example and was discarded; "
        "this answer comes from a second, verified draft.",
    )
    quoted: bool = Field(
        False,
        description="The generated draft did not hold, and the answer is the passage sentence "
        "that answers the question, quoted as it stands and cited.",
    )
    verdict: Verdict | None = Field(
        None, description="For a yes/no question: the verdict read from the evidence, if any."
    )
    timings: dict[str, float] = Field(default_factory=dict)
    fingerprints: dict[str, str] = Field(default_factory=dict)


class ClassifyResponse(BaseModel):
    """A one-word answer (yes/no/maybe) chosen by the generator's log-probabilities."""

    question: str
    label: str
    logprobs: dict[str, float]
    # Each label's log-probability with no passages and no question (the model's own lean);
    # with answer.classify_calibration=content-free the label maximises logprobs - prior.
    prior_logprobs: dict[str, float] = Field(default_factory=dict)
    verdict: Verdict | None = Field(
        None, description="From the trained verdict classifier (label, probabilities, shown)."
    )
    passages: list[SearchHit] = Field(default_factory=list)
    timings: dict[str, float] = Field(default_factory=dict)
    fingerprints: dict[str, str] = Field(default_factory=dict)


@dataclass
class StreamEvent:
    """One event of a streamed answer: status, evidence, token, retry, final or error."""

    type: Literal["status", "evidence", "token", "retry", "final", "error"]
    data: Any

    def to_dict(self) -> dict[str, Any]:
        payload = (
            self.data.model_dump(mode="json") if hasattr(self.data, "model_dump") else self.data
        )
        return {"type": self.type, "data": payload}


def final_response(events: Iterable[StreamEvent]) -> AnswerResponse:
    """Drain an answer stream to its ``final`` response (for callers that do not stream)."""
    final: AnswerResponse | None = None
    for event in events:
        if event.type == "final":
            final = event.data
    assert final is not None, "an answer stream ends with a final event"
    return final

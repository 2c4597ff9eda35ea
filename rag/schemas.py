"""Pydantic models for everything that leaves the library: CLI --json, HTTP API, eval records."""

from __future__ import annotations

from typing import Literal

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

"""Plain data types passed between pipeline stages (pydantic lives at the boundaries only)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

BlockKind = Literal["title", "heading", "paragraph", "list", "table", "caption", "abstract"]


@dataclass(frozen=True, slots=True)
class Block:
    """A structural unit a loader found, before normalisation.

    ``section`` is the heading path above the block (outermost first); ``page`` is 1-based for
    paginated formats.
    """

    text: str
    kind: BlockKind = "paragraph"
    section: tuple[str, ...] = ()
    page: int | None = None


@dataclass(slots=True)
class DocMeta:
    title: str = ""
    authors: list[str] = field(default_factory=list)
    date: str = ""  # ISO date or year as written by the source
    year: int | None = None
    source: str = ""  # where it came from: URL, journal, publisher
    kind: str = ""  # article kind: news, review, research, guideline...
    journal: str = ""
    pmid: str = ""
    pmcid: str = ""
    doi: str = ""
    url: str = ""
    extra: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {
            k: getattr(self, k)
            for k in self.__slots__
            if getattr(self, k) not in ("", [], {}, None)
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> DocMeta:
        known = {k: v for k, v in data.items() if k in cls.__slots__}
        extra = {k: v for k, v in data.items() if k not in cls.__slots__}
        meta = cls(**known)
        meta.extra.update(extra)
        return meta


@dataclass(frozen=True, slots=True)
class Span:
    """A block's place in the normalised document text."""

    start: int
    end: int
    kind: BlockKind
    section: tuple[str, ...] = ()
    page: int | None = None


@dataclass(slots=True)
class LoadedDocument:
    """What a loader returns: blocks in reading order plus bibliographic metadata."""

    blocks: list[Block]
    meta: DocMeta
    format: str  # pdf, html, markdown, text, jats, record


@dataclass(slots=True)
class Document:
    """A normalised document: every chunk is an exact slice of ``text``."""

    doc_id: str
    text: str
    spans: list[Span]
    meta: DocMeta
    format: str
    source: str  # path or identifier the document was added from
    content_hash: str

    @property
    def title(self) -> str:
        return self.meta.title or self.doc_id


@dataclass(frozen=True, slots=True)
class Chunk:
    chunk_id: str
    doc_id: str
    ordinal: int
    start: int
    end: int
    text: str
    section: tuple[str, ...] = ()
    page: int | None = None
    n_tokens: int = 0


@dataclass(slots=True)
class StoredChunk:
    """A chunk as read back from the index, with the document fields callers show."""

    row_id: int
    chunk_id: str
    doc_id: str
    ordinal: int
    start: int
    end: int
    text: str
    section: tuple[str, ...]
    page: int | None
    title: str
    format: str
    year: int | None
    source: str


@dataclass(slots=True)
class Hit:
    """A retrieved chunk and why it was retrieved."""

    chunk: StoredChunk
    score: float
    dense_rank: int | None = None
    dense_score: float | None = None
    lexical_rank: int | None = None
    lexical_score: float | None = None
    fused_rank: int | None = None
    rerank_score: float | None = None
    matched_terms: list[str] = field(default_factory=list)


@dataclass(frozen=True, slots=True)
class Filters:
    """Metadata filters; ``None`` means unconstrained."""

    doc_ids: tuple[str, ...] | None = None
    formats: tuple[str, ...] | None = None
    kinds: tuple[str, ...] | None = None
    year_min: int | None = None
    year_max: int | None = None

    def is_empty(self) -> bool:
        return all(
            v is None
            for v in (self.doc_ids, self.formats, self.kinds, self.year_min, self.year_max)
        )

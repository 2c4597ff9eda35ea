"""Hybrid retrieval: BM25 + dense, fused (z-scores or RRF), optionally reranked, diversified."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Protocol, runtime_checkable

import numpy as np

from rag.embed import Embedder
from rag.retrieve.expand import QueryExpander
from rag.retrieve.fusion import cap_per_doc, mmr, rrf, zscore_fusion
from rag.settings import RetrieveSettings
from rag.store.index import CorpusIndex
from rag.store.lexical import query_terms
from rag.text import mentions
from rag.types import Filters, Hit


@runtime_checkable
class Reranker(Protocol):
    """What the retriever needs from a reranker (implementations live in ``rag.rerank``)."""

    name: str

    def rerank(self, query: str, hits: list[Hit]) -> list[Hit]:
        """Return ``hits`` reordered best first, each with ``rerank_score`` and ``score`` set."""
        ...


@dataclass
class Retrieval:
    query: str
    expanded: str | None
    hits: list[Hit]
    timings_ms: dict[str, float] = field(default_factory=dict)
    best_dense: float | None = None  # highest cosine among dense candidates (for abstention)


class Retriever:
    def __init__(
        self,
        index: CorpusIndex,
        embedder: Embedder,
        settings: RetrieveSettings,
        *,
        reranker: Reranker | None = None,
        rerank_depth: int = 30,
    ) -> None:
        self.index = index
        self.embedder = embedder
        self.settings = settings
        self.reranker = reranker
        self.rerank_depth = rerank_depth
        self._expander: tuple[int, QueryExpander] | None = None

    def expander(self) -> QueryExpander:
        """Aliases learned from the corpus, rebuilt when the index generation changes."""
        derived = self.index.derived
        if self._expander is None or self._expander[0] != derived.generation:
            self._expander = (derived.generation, QueryExpander(derived.aliases))
        return self._expander[1]

    def mentions(self, term: str, filters: Filters | None = None, depth: int = 50) -> bool:
        """Whether any indexed passage (or its document's title) names ``term`` or an alias.

        A name is rare, so the passages that hold it rank first for it lexically: the best
        ``depth`` BM25 matches of the term (and of each alias) are read for a mention.
        """
        self.index.refresh()
        allowed = self.index.filter_ids(filters or Filters())
        if allowed is not None and len(allowed) == 0:
            return False
        for form in (term, *sorted(self.expander().related(term))):
            _, ids = self.index.lexical_search(form, depth, allowed)
            chunks = self.index.chunks(ids.tolist()) if len(ids) else {}
            if any(mentions(f"{c.title}\n{c.text}", form) for c in chunks.values()):
                return True
        return False

    def run(
        self,
        query: str,
        *,
        k: int | None = None,
        filters: Filters | None = None,
        mode: str | None = None,
        rerank: bool | None = None,
        diversify: bool = True,
        reranker: Reranker | None = None,
    ) -> Retrieval:
        """Retrieve ``k`` hits; ``reranker`` overrides the configured one for this call."""
        s = self.settings
        reranker = reranker or self.reranker
        k = k or s.k
        mode = mode or s.mode
        timings: dict[str, float] = {}
        t0 = time.perf_counter()
        self.index.refresh()
        allowed = self.index.filter_ids(filters or Filters())
        if allowed is not None and len(allowed) == 0:
            return Retrieval(query, None, [], {"total": 0.0})
        additions = self.expander().additions(query) if s.expand_queries else []
        expanded = f"{query} {' '.join(additions)}" if additions else None
        timings["prepare"] = _ms(t0)

        dense_ids: list[int] = []
        dense_scores: dict[int, float] = {}
        best_dense: float | None = None
        if mode in ("hybrid", "dense"):
            t = time.perf_counter()
            qvec = self.embedder.embed_query(query)
            scores, ids = self.index.dense_search(qvec, s.dense_depth, allowed)
            dense_ids = ids.tolist()
            dense_scores = dict(zip(dense_ids, scores.tolist(), strict=True))
            best_dense = float(scores[0]) if len(scores) else None
            timings["dense"] = _ms(t)
        lexical_ids: list[int] = []
        lexical_scores: dict[int, float] = {}
        context_ids: list[int] = []  # BM25 of the text around each chunk
        context_scores: dict[int, float] = {}
        expansion_ids: list[int] = []  # BM25 of the alias spellings the question lacks
        expansion_scores: dict[int, float] = {}
        if mode in ("hybrid", "lexical"):
            t = time.perf_counter()
            lexical_ids, lexical_scores = self._bm25(query, allowed)
            if additions and s.expansion_weight > 0:
                # The other spellings score as a run of their own: appended to the question
                # they would outweigh its own words.
                expansion_ids, expansion_scores = self._bm25(" ".join(additions), allowed)
            if s.context_weight > 0:
                context_ids, context_scores = self._bm25(query, allowed, "context")
            timings["lexical"] = _ms(t)

        t = time.perf_counter()
        if s.fusion == "zscore":
            fused = zscore_fusion(
                [
                    (dense_scores, s.dense_weight, None),
                    (lexical_scores, s.lexical_weight, 0.0),
                    (context_scores, s.context_weight, 0.0),
                    (expansion_scores, s.expansion_weight, 0.0),
                ]
            )
        else:
            fused = rrf(
                [
                    (dense_ids, s.dense_weight),
                    (lexical_ids, s.lexical_weight),
                    (context_ids, s.context_weight),
                    (expansion_ids, s.expansion_weight),
                ],
                k=s.rrf_k,
            )
        dense_rank = {i: r for r, i in enumerate(dense_ids, start=1)}
        lexical_rank = {i: r for r, i in enumerate(lexical_ids, start=1)}
        use_rerank = reranker is not None and rerank is not False
        depth = max(k, self.rerank_depth if use_rerank else k * 4)
        candidates = fused[:depth]
        chunks = self.index.chunks([i for i, _ in candidates])
        terms = query_terms(expanded or query)
        hits: list[Hit] = []
        for fused_rank, (row_id, score) in enumerate(candidates, start=1):
            chunk = chunks.get(row_id)
            if chunk is None:  # deleted since the derived index was loaded
                continue
            lower = chunk.text.lower()
            hits.append(
                Hit(
                    chunk=chunk,
                    score=score,
                    dense_rank=dense_rank.get(row_id),
                    dense_score=dense_scores.get(row_id),
                    lexical_rank=lexical_rank.get(row_id),
                    lexical_score=lexical_scores.get(row_id),
                    fused_rank=fused_rank,
                    matched_terms=sorted({w for w in terms if w.lower() in lower}),
                )
            )
        timings["fuse"] = _ms(t)

        if use_rerank and reranker is not None and hits:
            # Only the head is reranked; deeper candidates keep their fused order behind it.
            t = time.perf_counter()
            head, tail = hits[: self.rerank_depth], hits[self.rerank_depth :]
            hits = reranker.rerank(query, head) + tail
            timings["rerank"] = _ms(t)

        t = time.perf_counter()
        hits = self._diversify(hits, k) if diversify else hits[:k]
        timings["diversify"] = _ms(t)
        timings["total"] = _ms(t0)
        return Retrieval(query, expanded, hits, timings, best_dense)

    def _bm25(
        self, query: str, allowed: np.ndarray | None, field: str = "chunk"
    ) -> tuple[list[int], dict[int, float]]:
        scores, ids = self.index.lexical_search(query, self.settings.lexical_depth, allowed, field)
        ranked = ids.tolist()
        return ranked, dict(zip(ranked, scores.tolist(), strict=True))

    def _diversify(self, hits: list[Hit], k: int) -> list[Hit]:
        s = self.settings
        if s.diversity == "none" or len(hits) <= 1:
            return hits[:k]
        if s.diversity == "per_doc":
            return [hits[i] for i in cap_per_doc([h.chunk.doc_id for h in hits], k, s.max_per_doc)]
        found = self.index.vectors_for([h.chunk.row_id for h in hits])
        # A writer may have deleted a chunk since its text was read (a separate read): drop it,
        # as the fusion step drops ids whose chunk is already gone.
        hits = [h for h in hits if h.chunk.row_id in found]
        if not hits:
            return hits
        vectors = np.stack([found[h.chunk.row_id] for h in hits])
        relevance = np.asarray([h.score for h in hits], dtype=np.float64)
        order = mmr(relevance, vectors, k, s.mmr_lambda)
        return [hits[i] for i in order]


def _ms(start: float) -> float:
    return round((time.perf_counter() - start) * 1000, 3)

"""Passages for an answer: retrieval shaped for answering, windows for the prompt, the
relevance gate and the evidence shown before generation."""

from __future__ import annotations

import re

import numpy as np

from rag.embed import Embedder
from rag.generate.prompt import (
    Passage,
    build_messages,
    build_passages,
)
from rag.retrieve import Retrieval, Retriever
from rag.schemas import (
    Evidence,
)
from rag.settings import AnswerSettings
from rag.text.bibliography import is_reference_list
from rag.text.entities import mentions, named_entities
from rag.text.sentences import content_stems, passage_sentences
from rag.types import Filters, Hit

_ASKS_FOR_REFERENCES = re.compile(
    r"\b(referenc|cite[sd]?\b|citation|author|journal|doi\b|bibliograph|wrote\b|written by\b|"
    r"published in\b|(where|when)\b.{0,80}\bpublished\b)",
    re.I,
)
# "the review", "the chemo-radio-immunotherapy review", "the review's outlook", "the case report"
_NAMED_KIND = re.compile(
    r"\bthe\s+(?:[\w-]+\s+){0,3}?(review|case report|news (?:piece|article|story|report))\b",
    re.I,
)


def term_coverage(question: str, passages: list[str]) -> float:
    """Share of the question's content words (stemmed) present in the passages."""
    wanted = content_stems(question)
    if not wanted:
        return 1.0
    found = set().union(*(content_stems(p) for p in passages)) if passages else set()
    return len(wanted & found) / len(wanted)


class PassageSteps:
    """The Answerer's passage steps (a mixin: it holds the retriever, embedder and settings)."""

    retriever: Retriever
    embedder: Embedder
    settings: AnswerSettings

    def prompt(
        self,
        query: str,
        retrieval: Retrieval,
        *,
        instruction: str | None = None,
        documents: dict[str, str] | None = None,
    ) -> tuple[list[Passage], list[dict[str, str]]]:
        """The numbered passages and chat messages the generator sees for ``query``
        (``documents``: the hits' document texts, when the caller has read them already)."""
        budget = self.settings.max_passage_tokens
        if self.settings.passage_context == "neighbours":
            focus = retrieval.expanded or query  # "DCR" also finds "disease control rate"
            if documents is None:
                documents = self._document_texts(retrieval.hits)
            regions = self._regions(retrieval.hits, documents)
        else:
            focus, regions = query, None
        passages = build_passages(
            retrieval.hits, focus, budget, self.embedder.count_tokens, regions=regions
        )
        return passages, build_messages(query, passages, instruction=instruction)

    def _regions(self, hits: list[Hit], documents: dict[str, str]) -> dict[int, tuple[int, str]]:
        """Each hit's chunk with the chunks before and after it, as one exact document span."""
        regions: dict[int, tuple[int, str]] = {}
        for hit in hits:
            around = self.retriever.index.neighbours(hit.chunk) or [hit.chunk]
            start, end = min(c.start for c in around), max(c.end for c in around)
            text = documents.get(hit.chunk.doc_id, "")[start:end]
            if text:
                regions[hit.chunk.row_id] = (start, text)
        return regions

    def _document_texts(self, hits: list[Hit]) -> dict[str, str]:
        """The full text of each document the hits come from ("" if it is gone)."""
        texts: dict[str, str] = {}
        for hit in hits:
            doc_id = hit.chunk.doc_id
            if doc_id not in texts:
                doc = self.retriever.index.load_document(doc_id)
                texts[doc_id] = doc.text if doc is not None else ""
        return texts

    def _retrieve(
        self, query: str, k: int | None, filters: Filters | None, rerank: bool | None
    ) -> Retrieval:
        """Passages for the prompt; reference lists only when the question is about them, or
        an entry that names the trial the question names.

        A bibliography names every trial and drug of its article, so it ranks high lexically
        but answers nothing; a few spare hits replace it. A question about a document itself
        (who wrote it, where it was published) gets the opening chunks of the top documents,
        where the byline is, since no sentence of the body resembles "who wrote this".
        """
        k = k or self.settings.max_passages
        named = None
        if filters is None or filters.is_empty():  # an explicit filter wins over the wording
            named = self._named_kind(query)
            filters = named or filters
        if _ASKS_FOR_REFERENCES.search(query):
            retrieval = self._pool(query, k + 3, filters, named, rerank)
            retrieval.hits = self._with_bylines(retrieval.hits)[:k]
            return retrieval
        studies = [e.text for e in named_entities(query) if e.kind in ("trial", "trial-id")]
        pool = k + 3
        while True:
            retrieval = self._pool(query, pool, filters, named, rerank)
            hits = [h for h in retrieval.hits if _not_bibliography_or_about(h, studies)]
            # Entries are chunks of their own, so several can take the spare hits: look
            # further rather than give the model fewer passages.
            if len(hits) >= k or len(retrieval.hits) < pool or pool > 4 * k:
                retrieval.hits = (hits or retrieval.hits)[:k]
                return retrieval
            pool += k

    def _pool(
        self,
        query: str,
        n: int,
        filters: Filters | None,
        named: Filters | None,
        rerank: bool | None,
    ) -> Retrieval:
        """The top ``n`` hits, within the named kind of document when the question names one."""
        retrieval = self.retriever.run(query, k=n, filters=filters, rerank=rerank)
        if named is not None:
            retrieval.hits = self._within_named(query, retrieval.hits, named, n, rerank)
        return retrieval

    def _named_kind(self, query: str) -> Filters | None:
        """A question about "the review" searches the reviews, when the index holds any.

        Without it, "which types of resistance does the review discuss?" was answered from a
        news piece that lists other types; the words that say which document is meant are
        the ones neither BM25 nor the embedder weighs.
        """
        match = _NAMED_KIND.search(query)
        if match is None:
            return None
        named = match.group(1).lower()
        kind = "news" if named.startswith("news") else named
        filters = Filters(kinds=(kind,))
        found = self.retriever.index.filter_ids(filters)
        return filters if found is not None and len(found) else None

    def _within_named(
        self, query: str, hits: list[Hit], named: Filters, k: int, rerank: bool | None
    ) -> list[Hit]:
        """Passages of the documents a question names, ranked by what it asks of them.

        "The chemo-radio-immunotherapy review covers which kinds of resistance?": the words
        naming the document pick it (the top documents of the whole question), but within it
        they rank its title and metadata lines first; the rest of the question ranks the body.
        """
        match = _NAMED_KIND.search(query)
        rest = (query[: match.start()] + " " + query[match.end() :]).strip() if match else ""
        docs = tuple(dict.fromkeys(h.chunk.doc_id for h in hits))[:2]
        if not docs or len(content_stems(rest)) < 2:
            return hits
        within = Filters(doc_ids=docs, kinds=named.kinds)
        return self.retriever.run(rest, k=k, filters=within, rerank=rerank).hits or hits

    def _with_bylines(self, hits: list[Hit], documents: int = 2) -> list[Hit]:
        """The opening chunk of each of the top documents first, then the other hits."""
        openers: list[Hit] = []
        for doc_id in list(dict.fromkeys(h.chunk.doc_id for h in hits))[:documents]:
            first = self.retriever.index.first_chunk(doc_id)
            if first is not None:
                score = next(h.score for h in hits if h.chunk.doc_id == doc_id)
                openers.append(Hit(chunk=first, score=score))
        opened = {h.chunk.row_id for h in openers}
        return [*openers, *(h for h in hits if h.chunk.row_id not in opened)]

    def _relevance_gate(self, retrieval: Retrieval) -> str | None:
        """Abstain before generating when neither meaning nor words of the question match.

        Dense similarity alone is a weak signal with a small embedder (answerable questions
        scored as low as 0.11 on the seed set), so the gate also needs the passages to miss
        most of the question's content words.
        """
        if not retrieval.hits:
            return "no passage matched the question"
        best = retrieval.best_dense if retrieval.best_dense is not None else 0.0
        coverage = term_coverage(retrieval.query, [h.chunk.text for h in retrieval.hits[:3]])
        s = self.settings
        if best < s.min_relevance and coverage < s.min_term_coverage:
            return (
                f"no passage is relevant enough (similarity {best:.2f} < answer.min_relevance "
                f"{s.min_relevance:.2f}; {coverage:.0%} of the question's terms found)"
            )
        return None

    def _evidence(self, query: str, retrieval: Retrieval) -> list[Evidence]:
        """The passage sentences closest to the question, for showing before the answer."""
        wanted = self.settings.evidence_quotes
        if not wanted or not retrieval.hits:
            return []
        # Neighbouring chunks overlap, and a document may repeat a sentence (an abstract and
        # its summary): each sentence is shown once, at its first place.
        candidates = []
        seen: set[tuple[str, int] | str] = set()
        for hit in retrieval.hits[:3]:
            for s in passage_sentences(1, hit.chunk.text):
                place = (hit.chunk.doc_id, hit.chunk.start + s.start)
                said = " ".join(s.text.lower().split())
                if len(s.text) >= 20 and place not in seen and said not in seen:
                    seen.update((place, said))
                    candidates.append((hit, s))
        if not candidates:
            return []
        vectors = self.embedder.embed([query, *(s.text for _, s in candidates)])
        sims = vectors[1:] @ vectors[0]
        out: list[Evidence] = []
        for i in np.argsort(-sims)[:wanted]:
            hit, s = candidates[int(i)]
            out.append(
                Evidence(
                    text=s.text,
                    doc_id=hit.chunk.doc_id,
                    title=hit.chunk.title,
                    chunk_id=hit.chunk.chunk_id,
                    char_start=hit.chunk.start + s.start,
                    char_end=hit.chunk.start + s.end,
                    score=round(float(sims[int(i)]), 4),
                )
            )
        return out


def _not_bibliography_or_about(hit: Hit, studies: list[str]) -> bool:
    """Prose, or a reference entry naming a trial the question names: an entry is one
    paper's record, and its title is often the only place the documents give that trial's
    design or population ("a randomized, double-blind, phase 3 trial in EGFR-mutant ...")."""
    chunk = hit.chunk
    if not is_reference_list(chunk.section, chunk.text):
        return True
    return any(mentions(chunk.text, study) for study in studies)

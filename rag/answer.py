"""Answering: retrieve -> evidence first -> prompt -> stream generation -> verify -> response.

The stream yields events a shell can forward as they come:
``evidence`` (extractive quotes, within about a second), ``token`` (generated text),
``retry`` (the draft so far is discarded: it repeated the prompt's worked example, and a second
draft follows as ``token`` events), ``final`` (the verified AnswerResponse). Abstention happens
before generation when retrieval finds nothing relevant enough, when the model says the
passages do not answer, and when verification leaves no supported sentence.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable, Iterator
from collections.abc import Generator as PyGenerator  # rag.generate.Generator is the model
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np

from rag.embed import Embedder
from rag.generate import GenerationStats, Generator
from rag.generate.prompt import (
    ALTERNATE_SYSTEM_PROMPT,
    Passage,
    build_messages,
    build_passages,
    classify_instruction,
    copies_example,
)
from rag.retrieve import Retrieval, Retriever
from rag.schemas import (
    AnswerResponse,
    AnswerSentence,
    Citation,
    ClassifyResponse,
    Evidence,
    NumberCheck,
    Quote,
    SearchHit,
)
from rag.settings import AnswerSettings, GenerateSettings
from rag.types import Filters, Hit
from rag.verify import SupportChecker, Verification, Verifier, extract_numbers
from rag.verify.injection import split_question
from rag.verify.support import content_stems, passage_sentences

ABSTAIN_TEXT = "The indexed documents do not answer this question."
RETRY_REASON = "the draft repeated the prompt's worked example; writing a second draft"
OFF_TARGET_REASON = "the draft answered another question than the one asked; writing a second draft"
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
_REFERENCE_SECTION = re.compile(r"^(references?|bibliography|literature cited|ref-list)$", re.I)
# "doi:10.1200/...", "2024;42(suppl 16):8508", "Zhang L, Feng W, Zhao Y, et al. Ivonescimab"
_CITATION_MARK = re.compile(
    r"\bdoi:\s*10\.\d{4,}|\b(?:19|20)\d\d;\s*\d+(?:\s*\([^)]{1,20}\))?:\s*\w+|\bet al\.\s+[A-Z*]"
)


def is_reference_list(section: tuple[str, ...], text: str = "") -> bool:
    """A bibliography, by its heading or, in documents without one, by its citation marks."""
    if any(_REFERENCE_SECTION.match(part.strip()) for part in section):
        return True
    return len(_CITATION_MARK.findall(text)) >= 3


@dataclass
class StreamEvent:
    type: Literal["status", "evidence", "token", "retry", "final", "error"]
    data: Any

    def to_dict(self) -> dict[str, Any]:
        payload = (
            self.data.model_dump(mode="json") if hasattr(self.data, "model_dump") else self.data
        )
        return {"type": self.type, "data": payload}


class Answerer:
    def __init__(
        self,
        *,
        retriever: Retriever,
        embedder: Embedder,
        generator: Callable[[], Generator],
        checker: Callable[[], SupportChecker],
        answer: AnswerSettings,
        generate: GenerateSettings,
        fingerprints: Callable[[], dict[str, str]],
    ) -> None:
        self.retriever = retriever
        self.embedder = embedder
        self._generator = generator
        self._priors: dict[tuple[str, ...], dict[str, float]] = {}
        self._checker = checker
        self.settings = answer
        self.generate = generate
        self.fingerprints = fingerprints

    # -- public -------------------------------------------------------------------------------

    def ask(self, question: str, **kwargs: Any) -> AnswerResponse:
        final: AnswerResponse | None = None
        for event in self.stream(question, **kwargs):
            if event.type == "final":
                final = event.data
        assert final is not None
        return final

    def stream(
        self,
        question: str,
        *,
        k: int | None = None,
        filters: Filters | None = None,
        rerank: bool | None = None,
        standalone: str | None = None,
    ) -> Iterator[StreamEvent]:
        started = time.perf_counter()
        timings: dict[str, float] = {}
        query, ignored = split_question(standalone or question)
        retrieval = self._retrieve(query, k, filters, rerank)
        timings["retrieval_ms"] = _ms(started)
        hits = [SearchHit.from_hit(i, h) for i, h in enumerate(retrieval.hits, start=1)]

        evidence = self._evidence(query, retrieval)
        timings["evidence_ms"] = _ms(started)
        yield StreamEvent("evidence", evidence)

        base = AnswerResponse(
            question=question,
            standalone_question=standalone if standalone and standalone != question else None,
            ignored_instructions=ignored,
            answer=ABSTAIN_TEXT,
            abstained=True,
            evidence=evidence,
            passages=hits,
            fingerprints=self.fingerprints(),
        )
        gate = self._relevance_gate(retrieval)
        if gate is not None:
            base.abstain_reason = gate
            base.timings = timings | {"total_ms": _ms(started)}
            yield StreamEvent("final", base)
            return

        generator = self._generator()
        base.fingerprints = self.fingerprints()
        passages, messages = self.prompt(query, retrieval)
        t_gen = time.perf_counter()
        raw, stats, first_token = yield from self._draft(generator, messages)
        timings["ttft_ms"] = _ms(started, first_token) if first_token else _ms(started)
        timings["generation_ms"] = _ms(t_gen)
        if stats is not None:
            timings |= {
                "prompt_tokens": stats.prompt_tokens,
                "cached_prompt_tokens": stats.cached_prompt_tokens,
                "new_tokens": stats.new_tokens,
                "decode_tokens_per_s": round(stats.decode_tokens_per_s, 2),
                "prefill_tokens_per_s": round(stats.prefill_tokens_per_s, 2),
            }

        t_verify = time.perf_counter()
        response, verification = self._verified(base, raw, passages, query)
        timings["verify_ms"] = _ms(t_verify)
        retry = self._retry_reason(response, verification, raw)
        if retry is not None:
            # One more draft under a prompt with a different example, which also says to
            # answer exactly what was asked (and, for an off-target draft, with what); it is
            # verified the same way.
            yield StreamEvent("retry", {"reason": retry})
            t_retry = time.perf_counter()
            hint = verification.hint if retry == OFF_TARGET_REASON else None
            messages = build_messages(
                query,
                passages,
                system=ALTERNATE_SYSTEM_PROMPT,
                instruction=f"{hint}\nAnswer:" if hint else None,
            )
            raw, _, _ = yield from self._draft(generator, messages)
            response, _ = self._verified(base, raw, passages, query)
            response.retried = True
            timings["retry_ms"] = _ms(t_retry)
        timings["total_ms"] = _ms(started)
        response.timings = timings
        yield StreamEvent("final", response)

    def _draft(
        self, generator: Generator, messages: list[dict[str, str]]
    ) -> PyGenerator[StreamEvent, None, tuple[str, GenerationStats | None, float | None]]:
        """Stream one draft as ``token`` events; returns (text, stats, first-token time)."""
        pieces: list[str] = []
        stats: GenerationStats | None = None
        first_token: float | None = None
        for item in generator.stream(
            messages,
            max_new_tokens=self.generate.max_new_tokens,
            temperature=self.generate.temperature,
        ):
            if isinstance(item, GenerationStats):
                stats = item
                continue
            if first_token is None:
                first_token = time.perf_counter()
            pieces.append(item)
            yield StreamEvent("token", item)
        return "".join(pieces).strip(), stats, first_token

    def _verified(
        self, base: AnswerResponse, raw: str, passages: list[Passage], query: str
    ) -> tuple[AnswerResponse, Verification]:
        verifier = Verifier(self._checker(), drop_unsupported=self.settings.drop_unsupported)
        verification = verifier.run(
            raw,
            {p.number: p.text for p in passages},
            query,
            labels={p.number: p.label for p in passages},
        )
        return self._response(base, raw, passages, verification), verification

    @staticmethod
    def _retry_reason(response: AnswerResponse, verification: Verification, raw: str) -> str | None:
        """Why the first draft earns a second one, if it does.

        Only when its every sentence was dropped, and only for two failures that say the
        passages may still hold the answer: the draft repeats the prompt's worked example (the
        model answered the example), or it answers another question (another endpoint; no
        population where one was asked for). A restatement or a reported absence is what the
        model writes when the passages do not answer; retrying those would give unanswerable
        questions a second chance to slip through.
        """
        if not response.abstained or not response.sentences:
            return None
        if copies_example(raw):
            return RETRY_REASON
        return OFF_TARGET_REASON if verification.off_target else None

    def classify(
        self,
        question: str,
        choices: tuple[str, ...] = ("yes", "no", "maybe"),
        *,
        k: int | None = None,
        filters: Filters | None = None,
        rerank: bool | None = None,
    ) -> ClassifyResponse:
        """Pick one of ``choices`` from the passages in one forward pass (no free text)."""
        started = time.perf_counter()
        retrieval = self._retrieve(question, k, filters, rerank)
        retrieval_ms = _ms(started)
        _, messages = self.prompt(question, retrieval, instruction=classify_instruction(choices))
        logprobs = self._generator().choice_logprobs(messages, list(choices))
        prior = self._label_prior(tuple(choices))
        calibrate = self.settings.classify_calibration == "content-free"
        label = max(logprobs, key=lambda c: logprobs[c] - (prior[c] if calibrate else 0.0))
        return ClassifyResponse(
            question=question,
            label=label,
            logprobs={c: round(v, 4) for c, v in logprobs.items()},
            prior_logprobs={c: round(v, 4) for c, v in prior.items()},
            passages=[SearchHit.from_hit(i, h) for i, h in enumerate(retrieval.hits, start=1)],
            timings={"retrieval_ms": retrieval_ms, "total_ms": _ms(started)},
            fingerprints=self.fingerprints(),
        )

    def _label_prior(self, choices: tuple[str, ...]) -> dict[str, float]:
        """The labels' log-probabilities on a content-free prompt (no passage, question "N/A").

        "Calibrate before use" (Zhao et al., 2021): one forward pass per label set, cached.
        """
        if choices not in self._priors:
            messages = build_messages("N/A", [], instruction=classify_instruction(choices))
            self._priors[choices] = self._generator().choice_logprobs(messages, list(choices))
        return self._priors[choices]

    def prompt(
        self, query: str, retrieval: Retrieval, *, instruction: str | None = None
    ) -> tuple[list[Passage], list[dict[str, str]]]:
        """The numbered passages and chat messages the generator sees for ``query``."""
        budget = self.settings.max_passage_tokens
        passages = build_passages(retrieval.hits, query, budget, self.embedder.count_tokens)
        return passages, build_messages(query, passages, instruction=instruction)

    # -- steps ------------------------------------------------------------------------------

    def _retrieve(
        self, query: str, k: int | None, filters: Filters | None, rerank: bool | None
    ) -> Retrieval:
        """Passages for the prompt; reference lists only when the question is about them.

        A bibliography names every trial and drug of its article, so it ranks high lexically
        but answers nothing; a few spare hits replace it. A question about a document itself
        (who wrote it, where it was published) gets the opening chunks of the top documents,
        where the byline is, since no sentence of the body resembles "who wrote this".
        """
        k = k or self.settings.max_passages
        if filters is None or filters.is_empty():  # an explicit filter wins over the wording
            filters = self._named_kind(query) or filters
        retrieval = self.retriever.run(query, k=k + 3, filters=filters, rerank=rerank)
        hits = retrieval.hits
        if not _ASKS_FOR_REFERENCES.search(query):
            hits = [h for h in hits if not is_reference_list(h.chunk.section, h.chunk.text)] or hits
        else:
            hits = self._with_bylines(hits)
        retrieval.hits = hits[:k]
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

    def _response(
        self,
        base: AnswerResponse,
        raw: str,
        passages: list[Passage],
        verification: Verification,
    ) -> AnswerResponse:
        response = base.model_copy(deep=True)
        response.raw_answer = raw
        response.removed_citations = verification.removed_citations
        response.pruned_citations = verification.pruned_citations
        if verification.model_abstained:
            response.abstain_reason = "the model found no answer in the passages"
            return response
        by_number = {p.number: p for p in passages}
        sentences: list[AnswerSentence] = []
        cited: dict[int, Citation] = {}
        for s in verification.sentences:
            cited_texts = [by_number[n].text for n in s.citations if n in by_number]
            traced = {n.canonical for n in extract_numbers(" ".join(cited_texts))}
            sentences.append(
                AnswerSentence(
                    text=s.text,
                    citations=s.citations,
                    verdict=s.verdict,
                    support_score=round(s.support.score, 4),
                    reasons=[*s.support.reasons, *([s.non_answer] if s.non_answer else [])],
                    numbers=[
                        NumberCheck(text=n.text, traced=n.canonical in traced)
                        for n in extract_numbers(s.text)
                    ],
                    auto_cited=s.auto_cited,
                    model_citations=s.original_citations,
                    dropped=s.dropped,
                )
            )
            if s.dropped:
                continue
            for n in s.citations:
                passage = by_number[n]
                citation = cited.get(n) or _citation(passage, s.verdict)
                for q in s.quotes:
                    if q.passage == n:
                        quote = Quote(
                            text=q.text,
                            char_start=passage.start + q.start,
                            char_end=passage.start + q.end,
                        )
                        if quote not in citation.quotes:
                            citation.quotes.append(quote)
                if s.verdict != "supported":
                    citation.verdict = s.verdict
                cited[n] = citation
        response.sentences = sentences
        kept = [s for s in sentences if not s.dropped]
        if not any(s.verdict == "supported" for s in kept):
            if verification.sentences and all(s.non_answer for s in verification.sentences):
                response.abstain_reason = "the generated answer does not answer the question"
            else:
                response.abstain_reason = "no sentence of the generated answer was supported"
            return response
        response.abstained = False
        response.answer = _render(kept)
        response.citations = [cited[n] for n in sorted(cited)]
        return response


def term_coverage(question: str, passages: list[str]) -> float:
    """Share of the question's content words (stemmed) present in the passages."""
    wanted = content_stems(question)
    if not wanted:
        return 1.0
    found = set().union(*(content_stems(p) for p in passages)) if passages else set()
    return len(wanted & found) / len(wanted)


def _citation(passage: Passage, verdict: str) -> Citation:
    c = passage.hit.chunk
    return Citation(
        number=passage.number,
        chunk_id=c.chunk_id,
        doc_id=c.doc_id,
        title=c.title,
        section=list(c.section),
        page=c.page,
        source=c.source,
        char_start=passage.start,
        char_end=passage.end,
        passage=passage.text,
        verdict=verdict,  # type: ignore[arg-type]
    )


def _render(sentences: list[AnswerSentence]) -> str:
    parts: list[str] = []
    for s in sentences:
        markers = "".join(f"[{n}]" for n in s.citations)
        flag = "" if s.verdict == "supported" else " (partly supported)"
        body = s.text
        if body.endswith((".", "!", "?")):
            parts.append(f"{body[:-1]}{flag} {markers}{body[-1]}".replace("  ", " "))
        else:
            parts.append(f"{body}{flag} {markers}".strip())
    return " ".join(parts)


def _ms(start: float, end: float | None = None) -> float:
    return round(((end or time.perf_counter()) - start) * 1000, 1)

"""Answering: retrieve -> evidence first -> prompt -> stream generation -> verify -> response.

The stream yields events a shell can forward as they come:
``evidence`` (extractive quotes, within about a second), ``token`` (generated text),
``retry`` (the draft so far is discarded: it repeated the prompt's worked example, and a second
draft follows as ``token`` events), ``final`` (the verified AnswerResponse). Abstention happens
before generation when retrieval finds nothing relevant enough, when the model says the
passages do not answer, and when verification leaves no supported sentence.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from collections.abc import Generator as PyGenerator  # rag.generate.Generator is the model
from typing import Any

import numpy as np

from rag.answer.render import build_response, join_names, ms, quote_response
from rag.answer.verdicts import VerdictSteps
from rag.embed import Embedder
from rag.generate import GenerationStats, Generator
from rag.generate.prompt import (
    ALTERNATE_SYSTEM_PROMPT,
    EXAMPLE_NAMES,
    Passage,
    build_messages,
    copies_example,
)
from rag.retrieve import Retriever
from rag.schemas import (
    AnswerResponse,
    SearchHit,
    StreamEvent,
    final_response,
)
from rag.settings import AnswerSettings, GenerateSettings
from rag.text.entities import Cited, Entity, named_entities
from rag.text.instructions import split_question
from rag.text.sentences import passage_sentences
from rag.types import Filters
from rag.verify import SupportChecker, Verification, Verifier
from rag.verify.answerness import non_answer_reason
from rag.verify.grounding import Grounding
from rag.verify.judge import Judge, VerdictClassifier

ABSTAIN_TEXT = "The indexed documents do not answer this question."
_CONTEXT_CHARS = 2000  # document text read before a passage, for what it continues
RETRY_REASON = "the draft repeated the prompt's worked example; writing a second draft"
OFF_TARGET_REASON = "the draft answered another question than the one asked; writing a second draft"


class Answerer(VerdictSteps):
    """Retrieve, show evidence, draft, verify, ground; quote or abstain when the draft fails."""

    def __init__(
        self,
        *,
        retriever: Retriever,
        embedder: Embedder,
        generator: Callable[[], Generator],
        checker: Callable[[], SupportChecker],
        answer: AnswerSettings,
        judge: Callable[[], Judge | None] = lambda: None,
        verdicts: Callable[[], VerdictClassifier | None] = lambda: None,
        ground: bool = True,
        generate: GenerateSettings,
        fingerprints: Callable[[], dict[str, str]],
    ) -> None:
        self.retriever = retriever
        self.embedder = embedder
        self._generator = generator
        self._priors: dict[tuple[str, ...], dict[str, float]] = {}
        self._checker = checker
        self._judge = judge
        self._verdicts = verdicts
        self.ground = ground
        self.settings = answer
        self.generate = generate
        self.fingerprints = fingerprints

    # -- public -------------------------------------------------------------------------------

    def ask(self, question: str, **kwargs: Any) -> AnswerResponse:
        return final_response(self.stream(question, **kwargs))

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
        timings["retrieval_ms"] = ms(started)
        hits = [SearchHit.from_hit(i, h) for i, h in enumerate(retrieval.hits, start=1)]

        evidence = self._evidence(query, retrieval)
        timings["evidence_ms"] = ms(started)
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
        named = named_entities(query) if self.ground else []
        absent = [e.text for e in named if not self.retriever.mentions(e.text, filters)]
        if absent:
            # Nothing indexed names it: whatever the passages say is about something else.
            base.answer = f"The indexed documents do not mention {join_names(absent)}."
            base.abstain_reason = f"no indexed document mentions {join_names(absent)}"
            base.timings = timings | {"total_ms": ms(started)}
            yield StreamEvent("final", base)
            return
        gate = self._relevance_gate(retrieval)
        if gate is not None:
            base.abstain_reason = gate
            base.timings = timings | {"total_ms": ms(started)}
            yield StreamEvent("final", base)
            return

        generator = self._generator()
        base.fingerprints = self.fingerprints()
        documents = self._document_texts(retrieval.hits)  # read once for windows and grounding
        passages, messages = self.prompt(query, retrieval, documents=documents)
        t_gen = time.perf_counter()
        raw, stats, first_token = yield from self._draft(generator, messages)
        timings["ttft_ms"] = ms(started, first_token) if first_token else ms(started)
        timings["generation_ms"] = ms(t_gen)
        if stats is not None:
            timings |= {
                "prompt_tokens": stats.prompt_tokens,
                "cached_prompt_tokens": stats.cached_prompt_tokens,
                "new_tokens": stats.new_tokens,
                "decode_tokens_per_s": round(stats.decode_tokens_per_s, 2),
                "prefill_tokens_per_s": round(stats.prefill_tokens_per_s, 2),
            }

        grounding = self._grounding(query, named, passages, documents) if self.ground else None
        t_verify = time.perf_counter()
        response, verification = self._verified(base, raw, passages, query, grounding)
        timings["verify_ms"] = ms(t_verify)
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
            response, verification = self._verified(base, raw, passages, query, grounding)
            response.retried = True
            timings["retry_ms"] = ms(t_retry)
        if response.abstained and self._quote_allowed(verification):
            t_quote = time.perf_counter()
            response = self._quoted(response, query, passages, grounding)
            timings["quote_ms"] = ms(t_quote)
        response = self._with_verdict(response, query)
        timings["total_ms"] = ms(started)
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
        self,
        base: AnswerResponse,
        raw: str,
        passages: list[Passage],
        query: str,
        grounding: Grounding | None = None,
    ) -> tuple[AnswerResponse, Verification]:
        verifier = Verifier(
            self._checker(),
            drop_unsupported=self.settings.drop_unsupported,
            judge=self._judge(),
            example_names=EXAMPLE_NAMES,
        )
        verification = verifier.run(
            raw,
            {p.number: p.text for p in passages},
            query,
            labels={p.number: p.label for p in passages},
            grounding=grounding,
        )
        return build_response(base, raw, passages, verification), verification

    def _grounding(
        self,
        query: str,
        named: list[Entity],
        passages: list[Passage],
        documents: dict[str, str],
    ) -> Grounding:
        """The question's names and, per passage, the document text it continues."""
        cited: dict[int, Cited] = {}
        for p in passages:
            text = documents.get(p.hit.chunk.doc_id, "")
            before = text[max(0, p.start - _CONTEXT_CHARS) : p.start]
            cited[p.number] = Cited(text=p.text, label=p.label, before=before)
        return Grounding(query, named, cited, self.retriever.expander().related)

    def _quote_allowed(self, verification: Verification) -> bool:
        """Whether an abstention may fall back to quoting the sentence that answers."""
        mode = self.settings.quote_fallback
        if mode == "never" or self._judge() is None:
            return False
        return mode == "always" or not verification.model_abstained

    def _quoted(
        self,
        response: AnswerResponse,
        query: str,
        passages: list[Passage],
        grounding: Grounding | None,
    ) -> AnswerResponse:
        """The passage sentence that answers, quoted and cited, when the draft did not hold.

        Candidates are the sentences of the passages the model saw; the judge scores how well
        each answers, and the hard rules still apply: the passage must be about what the
        question names, and a figure must sit under it; a quantity asked needs a number.
        """
        judge = self._judge()
        assert judge is not None
        candidates = [
            (p, s)
            for p in passages
            for s in passage_sentences(p.number, p.text)
            if len(s.text) >= 30
        ]
        if not candidates:
            return response
        scores = judge.answers(query, [s.text for _, s in candidates])
        threshold = self.settings.quote_threshold or judge.threshold("answer", "accept")
        for i in np.argsort(-scores):
            if scores[i] < threshold:
                break
            passage, sentence = candidates[int(i)]
            if grounding and grounding.sentence_problem(sentence.text, [passage.number]):
                continue
            if non_answer_reason(query, sentence.text, passage.text) is not None:
                continue
            return quote_response(response, passage, sentence, float(scores[i]))
        return response

    @staticmethod
    def _retry_reason(response: AnswerResponse, verification: Verification, raw: str) -> str | None:
        """Why the first draft earns a second one, if it does.

        Only when its every sentence was dropped, and only for two failures that say the
        passages may still hold the answer: the draft repeats the prompt's worked example or
        names its made-up drug (the model answered the example), or it answers another
        question (another endpoint; no population where one was asked for; the passage of
        another trial or drug cited while one about the asked one was given). A restatement or a
        reported absence is what the model writes when the passages do not answer; retrying
        those would give unanswerable questions a second chance to slip through.
        """
        if not response.abstained or not response.sentences:
            return None
        if copies_example(raw) or verification.copied_example:
            return RETRY_REASON
        return OFF_TARGET_REASON if verification.off_target else None

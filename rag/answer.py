"""Answering: retrieve -> evidence first -> prompt -> stream generation -> verify -> response.

The stream yields events a shell can forward as they come:
``evidence`` (extractive quotes, within about a second), ``token`` (generated text),
``retry`` (the draft so far is discarded: it repeated the prompt's worked example, and a second
draft follows as ``token`` events), ``final`` (the verified AnswerResponse). Abstention happens
before generation when retrieval finds nothing relevant enough, when the model says the
passages do not answer, and when verification leaves no supported sentence.
"""

from __future__ import annotations

import math
import re
import time
from collections.abc import Callable, Iterator
from collections.abc import Generator as PyGenerator  # rag.generate.Generator is the model
from typing import Any

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
    StreamEvent,
    Verdict,
)
from rag.settings import AnswerSettings, GenerateSettings
from rag.text.entities import Cited, Entity, named_entities
from rag.text.instructions import split_question
from rag.text.sentences import PassageSentence, content_stems, passage_sentences
from rag.types import Filters, Hit
from rag.verify import SupportChecker, Verification, Verifier, extract_numbers
from rag.verify.answerness import non_answer_reason
from rag.verify.grounding import Grounding
from rag.verify.judge import VERDICT_LABELS, Judge, VerdictClassifier

ABSTAIN_TEXT = "The indexed documents do not answer this question."
_CONTEXT_CHARS = 2000  # document text read before a passage, for what it continues
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
# A question answered by yes or no, and a draft's own leading verdict ("No; overall ...").
_YES_NO = re.compile(
    r"^\W*(is|are|was|were|does|do|did|can|could|has|have|had|will|would|should|may|might)\b",
    re.I,
)
_LEADING_VERDICT = re.compile(r"^\s*(yes|no)\b[\s,;:.—–-]*", re.I)
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


class Answerer:
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
        named = named_entities(query) if self.ground else []
        absent = [e.text for e in named if not self.retriever.mentions(e.text, filters)]
        if absent:
            # Nothing indexed names it: whatever the passages say is about something else.
            base.answer = f"The indexed documents do not mention {_join(absent)}."
            base.abstain_reason = f"no indexed document mentions {_join(absent)}"
            base.timings = timings | {"total_ms": _ms(started)}
            yield StreamEvent("final", base)
            return
        gate = self._relevance_gate(retrieval)
        if gate is not None:
            base.abstain_reason = gate
            base.timings = timings | {"total_ms": _ms(started)}
            yield StreamEvent("final", base)
            return

        generator = self._generator()
        base.fingerprints = self.fingerprints()
        documents = self._document_texts(retrieval.hits)  # read once for windows and grounding
        passages, messages = self.prompt(query, retrieval, documents=documents)
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

        grounding = self._grounding(query, named, passages, documents) if self.ground else None
        t_verify = time.perf_counter()
        response, verification = self._verified(base, raw, passages, query, grounding)
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
            response, verification = self._verified(base, raw, passages, query, grounding)
            response.retried = True
            timings["retry_ms"] = _ms(t_retry)
        if response.abstained and self._quote_allowed(verification):
            t_quote = time.perf_counter()
            response = self._quoted(response, query, passages, grounding)
            timings["quote_ms"] = _ms(t_quote)
        response = self._with_verdict(response, query)
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
        self,
        base: AnswerResponse,
        raw: str,
        passages: list[Passage],
        query: str,
        grounding: Grounding | None = None,
    ) -> tuple[AnswerResponse, Verification]:
        verifier = Verifier(
            self._checker(), drop_unsupported=self.settings.drop_unsupported, judge=self._judge()
        )
        verification = verifier.run(
            raw,
            {p.number: p.text for p in passages},
            query,
            labels={p.number: p.label for p in passages},
            grounding=grounding,
        )
        return self._response(base, raw, passages, verification), verification

    def _document_texts(self, hits: list[Hit]) -> dict[str, str]:
        """The full text of each document the hits come from ("" if it is gone)."""
        texts: dict[str, str] = {}
        for hit in hits:
            doc_id = hit.chunk.doc_id
            if doc_id not in texts:
                doc = self.retriever.index.load_document(doc_id)
                texts[doc_id] = doc.text if doc is not None else ""
        return texts

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
            return self._quote_response(response, passage, sentence, float(scores[i]))
        return response

    def _quote_response(
        self,
        response: AnswerResponse,
        passage: Passage,
        sentence: PassageSentence,
        score: float,
    ) -> AnswerResponse:
        quoted = response.model_copy(deep=True)
        citation = _citation(passage, "supported")
        citation.quotes.append(
            Quote(
                text=sentence.text,
                char_start=passage.start + sentence.start,
                char_end=passage.start + sentence.end,
            )
        )
        text = sentence.text.rstrip()
        quoted.answer = f"“{text}” [{passage.number}]"
        quoted.sentences = [
            *quoted.sentences,
            AnswerSentence(
                text=text,
                citations=[passage.number],
                verdict="supported",
                support_score=1.0,
                reasons=["quoted from the passage: the draft did not hold"],
                numbers=[NumberCheck(text=n.text, traced=True) for n in extract_numbers(text)],
                answer_score=round(score, 4),
            ),
        ]
        quoted.citations = [citation]
        quoted.abstained = False
        quoted.quoted = True
        quoted.abstain_reason = None
        return quoted

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
        """Pick one of ``choices`` from the passages (no free text).

        yes/no/maybe goes to the trained verdict classifier when there is one (what the
        evidence says, measured against the majority class on held-out questions); other
        label sets, or ``answer.verdict=generator``, to the generator's label log-probabilities.
        """
        started = time.perf_counter()
        retrieval = self._retrieve(question, k, filters, rerank)
        retrieval_ms = _ms(started)
        classifier = self._verdicts()
        if classifier is not None and tuple(choices) == VERDICT_LABELS:
            verdict = self._verdict(classifier, question, [h.chunk.text for h in retrieval.hits])
            return ClassifyResponse(
                question=question,
                label=verdict.label,
                logprobs={
                    c: round(math.log(max(p, 1e-12)), 4) for c, p in verdict.probabilities.items()
                },
                verdict=verdict,
                passages=[SearchHit.from_hit(i, h) for i, h in enumerate(retrieval.hits, start=1)],
                timings={"retrieval_ms": retrieval_ms, "total_ms": _ms(started)},
                fingerprints=self.fingerprints(),
            )
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

    def _verdict(
        self, classifier: VerdictClassifier, question: str, evidence: list[str]
    ) -> Verdict:
        """The verdict the evidence gives, shown only at the classifier's confidence."""
        probs = classifier.probabilities([(question, " ".join(evidence[:3]))])[0]
        labelled = {
            label: round(float(p), 4) for label, p in zip(VERDICT_LABELS, probs, strict=True)
        }
        label = max(labelled, key=labelled.__getitem__)
        confidence = classifier.confidence
        shown = confidence is not None and labelled[label] >= confidence
        return Verdict(label=label, probabilities=labelled, shown=shown)  # type: ignore[arg-type]

    def _with_verdict(self, response: AnswerResponse, question: str) -> AnswerResponse:
        """A yes/no question's answer: the verdict first when it is confident, else the cited
        finding alone (a leading "Yes"/"No" of the draft is taken out)."""
        classifier = self._verdicts()
        if classifier is None or response.abstained or not _YES_NO.match(question):
            return response
        evidence = [c.passage for c in response.citations]
        response.verdict = self._verdict(classifier, question, evidence)
        body = _LEADING_VERDICT.sub("", response.answer, count=1)
        body = body[:1].upper() + body[1:]
        if response.verdict.shown and response.verdict.label != "maybe":
            response.answer = f"{response.verdict.label.capitalize()}. {body}"
        else:
            response.answer = body
        return response

    def _label_prior(self, choices: tuple[str, ...]) -> dict[str, float]:
        """The labels' log-probabilities on a content-free prompt (no passage, question "N/A").

        "Calibrate before use" (Zhao et al., 2021): one forward pass per label set, cached.
        """
        if choices not in self._priors:
            messages = build_messages("N/A", [], instruction=classify_instruction(choices))
            self._priors[choices] = self._generator().choice_logprobs(messages, list(choices))
        return self._priors[choices]

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
                    answer_score=None if s.answer_score is None else round(s.answer_score, 4),
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


def _join(names: list[str]) -> str:
    names = list(dict.fromkeys(names))
    return names[0] if len(names) == 1 else f"{', '.join(names[:-1])} or {names[-1]}"


def _ms(start: float, end: float | None = None) -> float:
    return round(((end or time.perf_counter()) - start) * 1000, 1)

"""From a verification to the response a shell shows: sentences, citations, quotes, text."""

from __future__ import annotations

import time

from rag.generate.prompt import (
    Passage,
)
from rag.schemas import (
    AnswerResponse,
    AnswerSentence,
    Citation,
    NumberCheck,
    Quote,
)
from rag.text.sentences import PassageSentence
from rag.verify import Verification, extract_numbers


def build_response(
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
            citation = cited.get(n) or citation_for(passage, s.verdict)
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
    response.answer = render_sentences(kept)
    response.citations = [cited[n] for n in sorted(cited)]
    return response


def quote_response(
    response: AnswerResponse,
    passage: Passage,
    sentence: PassageSentence,
    score: float,
) -> AnswerResponse:
    quoted = response.model_copy(deep=True)
    citation = citation_for(passage, "supported")
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


def citation_for(passage: Passage, verdict: str) -> Citation:
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
        ocr=c.format == "pdf-ocr",
    )


def render_sentences(sentences: list[AnswerSentence]) -> str:
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


def join_names(names: list[str]) -> str:
    names = list(dict.fromkeys(names))
    return names[0] if len(names) == 1 else f"{', '.join(names[:-1])} or {names[-1]}"


def ms(start: float, end: float | None = None) -> float:
    return round(((end or time.perf_counter()) - start) * 1000, 1)

"""Sentence-by-sentence verification of a generated answer against the passages it was given.

Works on text alone (answer + passages), so it checks answers from any Generator.
- citations to passage numbers that were not given are removed and counted;
- a sentence without citations, or whose cited passages do not support it, is checked against
  every passage and, if one supports it, that passage is cited instead (marked ``auto_cited``;
  small models often cite the neighbour of the passage they copied from);
- a sentence that does not answer the question (restates it, reports an absence the passage
  does not state, or answers another question) is dropped with its reason: see
  ``answerness``; a draft left empty by the last kind is ``off_target`` and earns a second one;
- each sentence gets a verdict from the SupportChecker; unsupported sentences are dropped
  (``answer.drop_unsupported``) or kept but flagged — never shown as supported;
- every number must be traced to a cited passage (a hard failure otherwise).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol

from rag.text.sentences import PassageSentence
from rag.verify.answerness import non_answer_reason
from rag.verify.citations import AnswerSentence, parse_answer
from rag.verify.grounding import Grounding
from rag.verify.support import SupportChecker, SupportResult, Verdict

ABSTAIN_MARKER = "INSUFFICIENT"
_ABSTAIN_PATTERNS = re.compile(
    r"^\W*(insufficient|the (provided |indexed )?(passages|documents) do not (answer|contain|"
    r"provide|mention|address)|i (cannot|can't|could not) (answer|find))",
    re.I,
)


@dataclass
class CheckedSentence:
    text: str
    citations: list[int]
    verdict: Verdict
    support: SupportResult
    auto_cited: bool = False
    dropped: bool = False
    invalid_citations: list[int] = field(default_factory=list)
    pruned_citations: list[int] = field(default_factory=list)  # valid but added no support
    original_citations: list[int] = field(default_factory=list)  # as the model wrote them
    non_answer: str | None = None  # why the sentence does not answer the question
    answer_score: float | None = None  # the judge's P(answers the question)
    off_target: bool = False  # it answers another question (see answerness.NonAnswer)
    hint: str | None = None  # what a second draft should answer with
    copied_example: bool = False  # it names the prompt's made-up example, not the passages

    @property
    def quotes(self) -> list[PassageSentence]:
        return [q for q in self.support.best if q.passage in self.citations]


@dataclass
class Verification:
    sentences: list[CheckedSentence]
    removed_citations: int  # citations to passage numbers that were never given
    model_abstained: bool

    @property
    def pruned_citations(self) -> int:
        return sum(len(s.pruned_citations) for s in self.sentences)

    @property
    def off_target(self) -> bool:
        """Nothing survived and some sentence answered another question than the one asked."""
        return not self.kept and any(s.off_target for s in self.sentences)

    @property
    def copied_example(self) -> bool:
        """Nothing survived and some sentence named the prompt's made-up example."""
        return not self.kept and any(s.copied_example for s in self.sentences)

    @property
    def hint(self) -> str | None:
        """What a second draft should answer with, from the first off-target sentence."""
        return next((s.hint for s in self.sentences if s.off_target and s.hint), None)

    @property
    def kept(self) -> list[CheckedSentence]:
        return [s for s in self.sentences if not s.dropped]

    @property
    def supported(self) -> list[CheckedSentence]:
        return [s for s in self.kept if s.verdict == "supported"]


def _ground(checked: list[CheckedSentence], grounding: Grounding) -> None:
    """Drop sentences whose cited passages are not about what the question names."""
    for s in checked:
        if s.dropped:
            continue
        quotes = [(q.passage, q.end) for q in s.quotes]
        problem = grounding.sentence_problem(s.text, s.citations, quotes)
        if problem is not None:
            s.non_answer, s.dropped = problem, True
            # Cited the passage of another trial or drug than the one asked (or one about it
            # only by inheritance) while another passage names it: a second draft is told
            # which passages to answer from.
            s.hint = grounding.retarget_hint(s.text, s.citations, quotes)
            s.off_target = s.hint is not None
    kept = [s for s in checked if not s.dropped]
    problem = grounding.answer_problem([n for s in kept for n in s.citations])
    if problem is not None:
        for s in kept:
            s.non_answer, s.off_target, s.dropped = problem, False, True


def _drop_example_names(
    checked: list[CheckedSentence], names: Sequence[str], sources: list[str]
) -> None:
    """Drop sentences that name one of the prompt example's made-up names the sources lack."""
    known = " ".join(sources)
    for s in checked:
        for name in names:
            pattern = rf"(?<![\w-]){re.escape(name)}(?![\w-])"
            if re.search(pattern, s.text, re.I) and not re.search(pattern, known, re.I):
                s.non_answer = f"names {name!r} from the prompt's made-up example"
                s.copied_example, s.off_target, s.dropped = True, False, True
                break


def model_abstained(answer: str) -> bool:
    return bool(_ABSTAIN_PATTERNS.match(answer.strip())) or answer.strip().upper().startswith(
        ABSTAIN_MARKER
    )


class AnswerJudge(Protocol):
    """Scores how well sentences answer a question (``rag.verify.judge.Judge``)."""

    def answers(self, question: str, sentences: Sequence[str]) -> Any: ...

    def threshold(
        self, task: Literal["support", "answer"], which: Literal["accept", "reject"] = "accept"
    ) -> float: ...


class Verifier:
    def __init__(
        self,
        checker: SupportChecker,
        *,
        drop_unsupported: bool = True,
        judge: AnswerJudge | None = None,
        example_names: Sequence[str] = (),
    ) -> None:
        """``example_names``: the made-up names of the prompt's worked examples; a sentence
        naming one that neither the passages nor the question name is dropped, however well
        its other words are supported."""
        self.checker = checker
        self.drop_unsupported = drop_unsupported
        self.judge = judge
        self.example_names = tuple(example_names)

    def run(
        self,
        answer: str,
        passages: dict[int, str],
        question: str = "",
        labels: dict[int, str] | None = None,
        grounding: Grounding | None = None,
    ) -> Verification:
        """``labels``: the title/section shown with each passage (see ``SupportChecker.check``);
        ``grounding``: what the question names, checked against what each sentence cites."""
        if model_abstained(answer):
            return Verification([], 0, True)
        parsed = parse_answer(answer, len(passages))
        removed = sum(len(s.invalid) for s in parsed)
        checked = [self._check(s, passages, labels or {}) for s in parsed]
        if question:
            # What the rest of the answer says counts: after "It improved PFS in nonsquamous
            # NSCLC [1]." the trial's figures are context, not an answer that names no one.
            shown = " ".join(s.text for s in checked if not s.dropped)
            for s in checked:
                cited = " ".join(passages[n] for n in s.citations)
                found = non_answer_reason(question, s.text, cited, answer=shown)
                if found is not None:
                    s.non_answer, s.off_target, s.hint = found.reason, found.off_target, found.hint
                    s.dropped = True
        if self.example_names:
            _drop_example_names(checked, self.example_names, [*passages.values(), question])
        if grounding is not None:
            _ground(checked, grounding)
        if question and self.judge is not None:
            self._judge_answers(question, checked)
        return Verification(checked, removed, False)

    def _judge_answers(self, question: str, checked: list[CheckedSentence]) -> None:
        """Record how well each kept sentence answers the question (shown, not acted on).

        As a veto it did more harm than good: on the seed tuning half it dropped five right
        answers (bare trial ids among them) for two wrong ones caught.
        """
        assert self.judge is not None
        kept = [s for s in checked if not s.dropped]
        if kept:
            scores = self.judge.answers(question, [s.text for s in kept])
            for s, score in zip(kept, scores, strict=True):
                s.answer_score = float(score)

    def _check(
        self, sentence: AnswerSentence, passages: dict[int, str], labels: dict[int, str]
    ) -> CheckedSentence:
        auto = False
        citations = list(sentence.citations)
        result = None
        if citations:
            result = self.checker.check(
                sentence.text, {n: passages[n] for n in citations}, labels=labels
            )
        if result is None or result.verdict != "supported":
            # Uncited, or cited wrongly: cite the one passage that supports it, if there is one.
            found = self._find_support(sentence.text, passages, labels)
            if found is not None:
                auto = found[0] not in citations
                citations, result = [found[0]], found[1]
            elif result is None:
                result = self.checker.check(sentence.text, passages, labels=labels)
                result.verdict = "unsupported"
                result.notes.append("no citation, and no single passage supports it alone")
                citations = []
        pruned: list[int] = []
        if len(citations) > 1 and result.verdict != "unsupported":
            useful = self._useful(sentence.text, citations, passages, labels)
            pruned = [n for n in citations if n not in useful]
            citations = useful
        dropped = self.drop_unsupported and result.verdict == "unsupported"
        return CheckedSentence(
            text=sentence.text,
            citations=citations,
            verdict=result.verdict,
            support=result,
            auto_cited=auto,
            dropped=dropped,
            invalid_citations=sentence.invalid,
            pruned_citations=pruned,
            original_citations=list(sentence.citations),
        )

    def _find_support(
        self, sentence: str, passages: dict[int, str], labels: dict[int, str]
    ) -> tuple[int, SupportResult] | None:
        """The passage that alone supports ``sentence`` best, if any does."""
        best: tuple[int, SupportResult] | None = None
        for n, text in passages.items():
            result = self.checker.check(sentence, {n: text}, labels=labels)
            if result.verdict == "supported" and (best is None or result.score > best[1].score):
                best = (n, result)
        return best

    def _useful(
        self,
        sentence: str,
        citations: list[int],
        passages: dict[int, str],
        labels: dict[int, str],
    ) -> list[int]:
        """Citations that carry part of the support (ALCE-style precision, per citation).

        A citation stays if its passage alone is not unsupported, or if the other cited
        passages without it no longer support the sentence.
        """
        keep: list[int] = []
        for n in citations:
            alone = self.checker.check(sentence, {n: passages[n]}, labels=labels)
            others = {m: passages[m] for m in citations if m != n}
            without = self.checker.check(sentence, others, labels=labels)
            if alone.verdict != "unsupported" or without.verdict == "unsupported":
                keep.append(n)
        return keep or citations

"""Yes/no answers: the trained verdict classifier where it discriminates, label log-probabilities
otherwise."""

from __future__ import annotations

import math
import re
import time
from collections.abc import Callable

from rag.answer.passages import PassageSteps
from rag.answer.render import ms
from rag.generate import Generator
from rag.generate.prompt import (
    build_messages,
    classify_instruction,
)
from rag.retrieve import Retrieval
from rag.schemas import (
    AnswerResponse,
    ClassifyResponse,
    SearchHit,
    Verdict,
)
from rag.types import Filters
from rag.verify.judge import VERDICT_LABELS, VerdictClassifier

# A question answered by yes or no, and a draft's own leading verdict ("No; overall ...").
_YES_NO = re.compile(
    r"^\W*(is|are|was|were|does|do|did|can|could|has|have|had|will|would|should|may|might)\b",
    re.I,
)
# Only a "yes"/"no" set off by punctuation is a verdict: in "No severe adverse events were
# reported" the "No" is the finding itself, and taking it out inverts the sentence.
_LEADING_VERDICT = re.compile(r"^\s*(yes|no)\s*(?:[,;:.!—–-]+\s*|$)", re.I)


def without_leading_verdict(answer: str) -> str:
    """``answer`` without a draft's own leading "Yes." / "No;" (capitalised again)."""
    body = _LEADING_VERDICT.sub("", answer, count=1)
    return body[:1].upper() + body[1:]


class VerdictSteps(PassageSteps):
    """The Answerer's yes/no steps (a mixin over the passage steps: it adds the generator and
    the verdict classifier)."""

    _generator: Callable[[], Generator]
    _verdicts: Callable[[], VerdictClassifier | None]
    _priors: dict[tuple[str, ...], dict[str, float]]
    fingerprints: Callable[[], dict[str, str]]

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
        retrieval_ms = ms(started)
        classifier = self._verdicts()
        if classifier is not None and tuple(choices) == VERDICT_LABELS:
            verdict = self._verdict(classifier, question, self._verdict_passages(retrieval))
            return ClassifyResponse(
                question=question,
                label=verdict.label,
                logprobs={
                    c: round(math.log(max(p, 1e-12)), 4) for c, p in verdict.probabilities.items()
                },
                verdict=verdict,
                passages=[SearchHit.from_hit(i, h) for i, h in enumerate(retrieval.hits, start=1)],
                timings={"retrieval_ms": retrieval_ms, "total_ms": ms(started)},
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
            timings={"retrieval_ms": retrieval_ms, "total_ms": ms(started)},
            fingerprints=self.fingerprints(),
        )

    def _verdict(
        self, classifier: VerdictClassifier, question: str, evidence: list[str]
    ) -> Verdict:
        """The verdict the evidence gives, shown only at the classifier's confidence."""
        probs = classifier.probabilities([(question, evidence[:3])])[0]
        labelled = {
            label: round(float(p), 4) for label, p in zip(VERDICT_LABELS, probs, strict=True)
        }
        label = max(labelled, key=labelled.__getitem__)
        confidence = classifier.confidence
        shown = confidence is not None and labelled[label] >= confidence
        return Verdict(label=label, probabilities=labelled, shown=shown)  # type: ignore[arg-type]

    def _verdict_passages(self, retrieval: Retrieval) -> list[str]:
        """The hits' texts in rank order, the first running on into the chunk after it: an
        abstract's results often sit in the chunk after the one that matched the question."""
        texts = [h.chunk.text for h in retrieval.hits]
        if not texts:
            return texts
        top = retrieval.hits[0]
        regions = self._regions([top], self._document_texts([top]))
        if top.chunk.row_id in regions:
            start, text = regions[top.chunk.row_id]
            texts[0] = text[max(0, top.chunk.start - start) :]
        return texts

    def _with_verdict(self, response: AnswerResponse, question: str) -> AnswerResponse:
        """A yes/no question's answer: the verdict first when it is confident, else the cited
        finding alone (a leading "Yes"/"No" of the draft is taken out)."""
        classifier = self._verdicts()
        if classifier is None or response.abstained or not _YES_NO.match(question):
            return response
        evidence = [c.passage for c in response.citations]
        response.verdict = self._verdict(classifier, question, evidence)
        body = without_leading_verdict(response.answer)
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

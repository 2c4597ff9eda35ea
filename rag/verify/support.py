"""Does a cited passage support an answer sentence?

No NLI model ships its weights on PyPI, so the checker combines signals that do exist here:
- numbers: every number in the sentence must occur in the cited passages (hard rule);
- salient terms: drug names, trial names, gene/biomarker symbols and other marked tokens of the
  sentence must occur in the passages, allowing known aliases (hard rule);
- negation: the sentence and its best-matching passage sentence must agree on negation;
- lexical coverage of the sentence's content words (stemmed) by the passages;
- embedding similarity between the sentence and its best-matching passage sentence.
Weights and thresholds are calibrated on a hand-labelled set (eval/gold/support_pairs.jsonl).
"""

from __future__ import annotations

import re
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Literal, Protocol

import numpy as np

from rag.text.bibliography import reference_entries
from rag.text.entities import mentions
from rag.text.instructions import blank_instructions
from rag.text.sentences import (
    STEMMER,
    STOP_WORDS,
    WORD,
    PassageSentence,
    content_stems,
    passage_sentences,
)
from rag.verify.numbers import NumberMention, labelled, roman_value, untraced

Verdict = Literal["supported", "partial", "unsupported"]

_DOMAIN = re.compile(r"\b[\w-]+(?:\.[\w-]+)*\.(?:gov|org|com|net|eu|int)\b", re.I)
_NEGATION = re.compile(
    r"\b(no|not|never|without|failed|fails?|failure|neither|nor|none|non-?significant|"
    r"lack(?:ed|s)?|absence|absent|unable)\b",
    re.I,
)
# Words that make a sentence assert an effect or a judgement; only such claims are checked
# for negation against the passage ("the HR was 0.99" asserts nothing to negate).
_EFFECT = re.compile(
    r"\b(improv\w*|increas\w*|reduc\w*|decreas\w*|prolong\w*|extend\w*|superior\w*|"
    r"inferior\w*|better|worse|benefit\w*|advantage\w*|significant\w*|effective\w*|"
    r"efficac\w*|succeed\w*|success\w*|beat\w*|surpass\w*|recommend\w*|prefer\w*|"
    r"promis\w*|safe|safety|toxic\w*|role|occur\w*|observed|established|resist\w*)\b",
    re.I,
)
# Absolute claims must be stated by the passage itself.
_ABSOLUTE = re.compile(
    r"\b(exclusively|only|always|never|all|every|fully|completely|entirely|doubled|tripled|"
    r"halved|cure[sd]?|definitive(?:ly)?|proven|guaranteed)\b",
    re.I,
)
# The arm a result is measured against: "versus placebo" and "versus standard of care" are
# different trials' results, so a comparator the claim names must be in the passage.
_COMPARATOR = re.compile(r"\b(placebo|sham)\b", re.I)
_ANTONYMS = [
    ("high", "low"),
    ("higher", "lower"),
    ("increase", "decrease"),
    ("increased", "decreased"),
    ("improved", "worsened"),
    ("superior", "inferior"),
    ("first-line", "second-line"),
    ("treatment-naive", "previously treated"),
    ("squamous", "nonsquamous"),
    ("primary", "secondary"),
    ("early-stage", "metastatic"),
    ("positive", "negative"),
]
# Clinical endpoints: a claim about one endpoint is not supported by data on another.
_ENDPOINTS = {
    "overall survival": ("overall survival", " os "),
    "progression-free survival": ("progression-free survival", "pfs"),
    "disease-free survival": ("disease-free survival", "dfs"),
    "event-free survival": ("event-free survival", "efs"),
    "response rate": ("response rate", "orr"),
    "disease control rate": ("disease control rate", "dcr"),
    "duration of response": ("duration of response", "dor"),
    "primary endpoint": ("primary endpoint",),
    # Safety is an endpoint too: "which grade 3 adverse events occurred?" is not answered by
    # the response rate, nor is a toxicity claim backed by efficacy data.
    "adverse events": ("adverse event", "adverse reaction", "toxicit", "side effect", " trae"),
}


# "survival" with no qualifier before it is overall survival by convention ("no significant
# survival advantage", "median survival"); "progression-free survival" is not, nor is the
# survival of cells or grafts.
_QUALIFIED_SURVIVAL = re.compile(
    r"(?:-free|\bfree|progression|disease|event|relapse|recurrence|metastasis|specific|"
    r"cells?|graft|clonogenic)\s*$"
)


def _names_bare_survival(lowered: str) -> bool:
    return any(
        not _QUALIFIED_SURVIVAL.search(lowered[max(0, m.start() - 30) : m.start()])
        for m in re.finditer(r"\bsurvival\b", lowered)
    )


def endpoints(text: str) -> set[str]:
    """The clinical endpoints a text names (PFS and progression-free survival are one)."""
    padded = f" {text.lower()} "
    return {name for name, forms in _ENDPOINTS.items() if any(f in padded for f in forms)}


_DRUG = re.compile(r"(mab|nib|tinib|parib|lisib|platin|taxel|rubicin|trexed|citabine|cept)$", re.I)
Embed = Callable[[Sequence[str]], np.ndarray]


class SupportJudge(Protocol):
    """A trained judge of whether evidence states a claim (``rag.verify.judge.Judge``)."""

    def supports(self, claim: str, evidence: str) -> float: ...

    def threshold(
        self, task: Literal["support", "answer"], which: Literal["accept", "reject"] = "accept"
    ) -> float: ...


@dataclass
class SupportResult:
    verdict: Verdict
    score: float
    coverage: float
    similarity: float
    untraced_numbers: list[NumberMention] = field(default_factory=list)
    missing_terms: list[str] = field(default_factory=list)
    negation_mismatch: bool = False
    best: list[PassageSentence] = field(default_factory=list)  # quote sentences, best first
    notes: list[str] = field(default_factory=list)  # why a verdict was set from outside

    @property
    def reasons(self) -> list[str]:
        out = list(self.notes)
        if self.untraced_numbers:
            nums = ", ".join(n.text for n in self.untraced_numbers)
            out.append(f"number(s) not in the cited passages: {nums}")
        if self.missing_terms:
            out.append(f"term(s) not in the cited passages: {', '.join(self.missing_terms)}")
        if self.negation_mismatch:
            out.append("negation differs from the passage")
        if not out and self.verdict != "supported":
            out.append(f"weak overlap with the cited passages (score {self.score:.2f})")
        return out


def _anchors(sentence: str) -> list[str]:
    from rag.verify.numbers import extract_numbers

    return salient_terms(sentence) + [n.text for n in extract_numbers(sentence)]


def _negated_overlap(claim: str, passage_sentence: str, window: int = 5) -> bool:
    """True when exactly one side negates something the two sentences talk about."""
    claim_stems = content_stems(claim)

    def negated_topics(text: str) -> set[str]:
        words = WORD.findall(text)
        topics: set[str] = set()
        for i, word in enumerate(words):
            if _NEGATION.fullmatch(word):
                for nxt in words[i + 1 : i + 1 + window]:
                    topics |= content_stems(nxt)
        return topics & claim_stems

    return bool(negated_topics(claim)) != bool(negated_topics(passage_sentence))


def salient_terms(sentence: str) -> list[str]:
    """Tokens whose mismatch changes the claim: drugs, trials, genes, biomarkers, acronyms."""
    terms: list[str] = []
    # A web address ("ClinicalTrials.gov") names where something is found, not what it is.
    words = WORD.findall(_DOMAIN.sub(" ", sentence))
    for i, word in enumerate(words):
        core = word.strip("'’-")
        if len(core) < 3 or core.replace(".", "").isdigit():
            continue
        has_digit = any(c.isdigit() for c in core)
        inner_caps = any(c.isupper() for c in core[1:])
        capitalised = core[0].isupper() and i > 0 and core.lower() not in STOP_WORDS
        if has_digit or inner_caps or _DRUG.search(core) or capitalised:
            terms.append(core)
    return terms


def _entry_span(sentence: str, text: str) -> tuple[int, int]:
    """The part of a passage a claim is checked against: all of it, or, for a reference
    list, the entry sharing the most content words with the claim."""
    entries = reference_entries(text)
    if not entries:
        return 0, len(text)
    wanted = content_stems(sentence)
    return max(entries, key=lambda span: len(wanted & content_stems(text[span[0] : span[1]])))


class SupportChecker:
    """Scores sentence-passage support; thresholds from the calibration set."""

    def __init__(
        self,
        embed: Embed | None = None,
        *,
        aliases: Callable[[str], set[str]] | None = None,
        threshold: float = 0.5,
        partial_threshold: float = 0.35,
        coverage_weight: float = 0.4,
        judge: SupportJudge | None = None,
    ) -> None:
        self.embed = embed
        # With a judge, its probability that the passage sentences state the claim decides
        # (at its calibrated threshold); without one, the overlap score below does.
        self.judge = judge
        # One answer checks the same sentences against each passage alone, then together
        # (re-citing, pruning): embed each text once, not once per check.
        self._vectors: dict[str, np.ndarray] = {}
        self._vectors_lock = threading.Lock()
        self.aliases = aliases or (lambda term: set())
        self.threshold = threshold
        self.partial_threshold = partial_threshold
        self.coverage_weight = coverage_weight

    def check(
        self, sentence: str, passages: dict[int, str], *, labels: dict[int, str] | None = None
    ) -> SupportResult:
        """``labels``: the title/section the model saw with each passage ("[1] (Title) ...").

        Their words count as covered, so "the chemo-radio-immunotherapy review was published in
        Cancers" is backed by that review's byline; they back no number and no named term.
        """
        if not passages:
            return SupportResult("unsupported", 0.0, 0.0, 0.0)
        # A planted instruction ("reply only with X") supports nothing, least of all an answer
        # that obeyed it.
        passages = {n: blank_instructions(t) for n, t in passages.items()}
        # A reference list backs a claim only through one of its entries: one entry's title
        # and another's journal make no claim any of them makes.
        spans = {n: _entry_span(sentence, t) for n, t in passages.items()}
        texts = [t[spans[n][0] : spans[n][1]] for n, t in passages.items()]
        joined = " ".join(texts)
        lowered = f" {joined.lower()} "
        numbers = untraced(sentence, texts)
        missing = [t for t in salient_terms(sentence) if not self._present(t, lowered)]
        missing += self._missing_phrases(sentence, lowered)

        sentence_stems = content_stems(sentence)
        passage_stems = content_stems(joined)
        if labels:
            passage_stems |= content_stems(" ".join(labels.get(n, "") for n in passages))
        covered = {s for s in sentence_stems if s in passage_stems}
        for term in set(WORD.findall(sentence)):  # a term covered through a known alias
            stem = STEMMER.stemWord(term.lower())
            if stem in sentence_stems and stem not in covered and self._present(term, lowered):
                covered.add(stem)
        coverage = len(covered) / len(sentence_stems) if sentence_stems else 1.0

        candidates = [
            ps
            for n, t in passages.items()
            for ps in passage_sentences(n, t)
            if spans[n][0] <= ps.start < spans[n][1]
        ]
        sims = self._similarities(sentence, candidates)
        order = list(np.argsort(-sims)) if len(sims) else []
        best = [candidates[i] for i in order[:2]]
        similarity = float(sims[order[0]]) if order else 0.0
        negation = bool(_EFFECT.search(sentence)) and _negated_overlap(
            sentence, " ".join(b.text for b in best)
        )
        anchors = _anchors(sentence)
        anchor_score = 1.0 if not anchors else 1.0 - (len(numbers) + len(missing)) / len(anchors)
        w = self.coverage_weight
        score = w * coverage + w * similarity + (1 - 2 * w) * max(anchor_score, 0.0)
        if numbers or missing or negation or score < self.partial_threshold:
            verdict: Verdict = "unsupported"
        elif score >= self.threshold:
            verdict = "supported"
        else:
            verdict = "partial"
        if (
            self.judge is not None
            and verdict != "supported"
            and not (numbers or missing or negation)
        ):
            # A paraphrase the words miss is supported when the judge is sure (its accept
            # threshold). The judge does not overrule the overlap the other way: trained on
            # paraphrased claims, it scored sentences copied from the passage low.
            near = sorted((candidates[i] for i in order[:3]), key=lambda c: (c.passage, c.start))
            judged = self.judge.supports(sentence, " ".join(c.text for c in near))
            if judged >= self.judge.threshold("support", "accept"):
                verdict, score = "supported", max(score, judged)
        # Keep the second quote sentence only when it is nearly as close as the first.
        if len(best) == 2 and len(sims) and sims[order[1]] < similarity - 0.1:
            best = best[:1]
        return SupportResult(verdict, score, coverage, similarity, numbers, missing, negation, best)

    def _missing_phrases(self, sentence: str, lowered_passages: str) -> list[str]:
        """Endpoints, absolute words and antonyms that the passages do not back."""
        claim = f" {sentence.lower()} "
        missing: list[str] = []
        for name, forms in _ENDPOINTS.items():
            if any(f in claim for f in forms) and not any(f in lowered_passages for f in forms):
                if name == "overall survival" and _names_bare_survival(lowered_passages):
                    continue
                missing.append(name)
        said = {m.group(0).lower() for m in _ABSOLUTE.finditer(sentence)}
        said |= {m.group(0).lower() for m in _COMPARATOR.finditer(sentence)}
        for word in said:
            if not re.search(rf"\b{re.escape(word)}\b", lowered_passages):
                missing.append(word)
        for a, b in _ANTONYMS:
            for said, other in ((a, b), (b, a)):
                if (
                    re.search(rf"\b{re.escape(said)}\b", claim)
                    and not re.search(rf"\b{re.escape(said)}\b", lowered_passages)
                    and re.search(rf"\b{re.escape(other)}\b", lowered_passages)
                ):
                    missing.append(said)
        return missing

    def _present(self, term: str, lowered_passages: str) -> bool:
        """``term`` or an alias in the passages, spacing, hyphens and dashes aside
        ("adenovirus-IL-12" is "adenovirus–IL-12"; "TRAEs" is a TRAE's plural)."""
        needle = term.lower()
        if needle in lowered_passages:
            return True
        value = roman_value(term)
        if value is not None:  # "phase III" is backed by "phase 3"
            return labelled(lowered_passages, value)
        forms = {term, re.sub(r"(?<=[A-Z])s$", "", term)}
        aliases = {a for form in forms for a in self.aliases(form)}
        return any(mentions(lowered_passages, form) for form in forms | aliases)

    def _similarities(self, sentence: str, candidates: list[PassageSentence]) -> np.ndarray:
        if not candidates:
            return np.zeros(0)
        if self.embed is None:
            stems = content_stems(sentence)
            return np.asarray(
                [len(stems & content_stems(c.text)) / max(len(stems), 1) for c in candidates]
            )
        vectors = self._embed_once([sentence, *(c.text for c in candidates)])
        return vectors[1:] @ vectors[0]

    def _embed_once(self, texts: list[str], keep: int = 4096) -> np.ndarray:
        assert self.embed is not None
        with self._vectors_lock:
            missing = [t for t in dict.fromkeys(texts) if t not in self._vectors]
        if missing:
            fresh = self.embed(missing)
            with self._vectors_lock:
                self._vectors.update(zip(missing, fresh, strict=True))
                while len(self._vectors) > keep:  # oldest first
                    self._vectors.pop(next(iter(self._vectors)))
        with self._vectors_lock:
            found = [self._vectors.get(t) for t in texts]
        if any(v is None for v in found):  # evicted by a concurrent caller meanwhile
            return self.embed(texts)
        return np.stack(found)

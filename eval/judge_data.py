"""Labelled pairs for the answer judge, built from third-party benchmarks (never the seed set).

Two tasks, one model (``rag.verify.judge``):
- ``support``: does the evidence state the claim? SciFact claims against their annotators'
  rationale sentences (SUPPORT = 1; CONTRADICT = 0) and against the sentences of the cited
  abstract that are not rationales (0: on topic, not stated); Evidence Inference prompts
  written as claims ("Compared with C, I increased O.") against the annotated evidence span,
  1 for the annotated direction and 0 for the other two.
- ``answer``: does the sentence answer the question? BioASQ factoid and list questions
  against the sentences of their gold snippets (1 when a sentence holds an exact answer, 0 when
  it does not: on topic, supported, not an answer); MedQuAD cancer.gov questions against the
  opening of their own answer (1) and of the answers to the other questions on the same
  disease (0: "symptoms" asked, "treatment" given); Evidence Inference prompts against the
  sentence holding their evidence (1) and the other sentences of the same trial report that
  name the intervention or the outcome (0); PubMedQA questions against the abstract's
  conclusion (1) and its opening sentence (0: the aims restate the question).

Every pair carries the group it belongs to (a question or claim id); ``rag.eval.splits``
assigns groups to the tuning or report half. Evidence Inference's own train split is tuning
data and its validation split report data, as published.
"""

from __future__ import annotations

import hashlib
import json
import random
import re
from collections import defaultdict
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Literal

from rag.eval.splits import half_of

from rag.text.entities import sentence_spans
from rag.text.sentences import content_stems

Task = Literal["support", "answer"]


@dataclass(frozen=True, slots=True)
class Pair:
    id: str
    task: Task
    a: str  # the claim (support) or the question (answer)
    b: str  # the evidence (support) or the candidate answer sentence (answer)
    label: int
    source: str
    kind: str  # what sort of positive or negative this is (for error counts)
    group: str
    half: str

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def _jsonl(path: Path) -> Iterator[dict[str, Any]]:
    with path.open(encoding="utf-8") as handle:
        for line in handle:
            if line.strip():
                yield json.loads(line)


def _sentences(text: str) -> list[str]:
    return [text[a:b].strip() for a, b in sentence_spans(text) if len(text[a:b].strip()) > 20]


def _pair(
    task: Task,
    a: str,
    b: str,
    label: int,
    source: str,
    kind: str,
    group: str,
    half: str | None = None,
) -> Pair:
    digest = hashlib.sha256(f"{a}\x00{b}".encode()).hexdigest()[:10]
    half = half or half_of(f"{source}:{group}")
    return Pair(f"{source}:{group}:{kind}:{digest}", task, a, b, label, source, kind, group, half)


# -- support -------------------------------------------------------------------------------


def scifact_support(root: Path, negatives: int = 2) -> list[Pair]:
    abstracts = {str(d["id"]): d.get("sentences") or [] for d in _jsonl(root / "corpus.jsonl")}
    out: list[Pair] = []
    for q in _jsonl(root / "questions_dev.jsonl"):
        claim, group = q["question"], str(q["id"])
        for doc_id, ev in (q.get("evidence") or {}).items():
            sentences = abstracts.get(str(doc_id), [])
            picked = sorted({i for g in ev.get("sentences", []) for i in g if i < len(sentences)})
            if not picked or ev.get("label") not in ("SUPPORT", "CONTRADICT"):
                continue
            label = int(ev["label"] == "SUPPORT")
            evidence = " ".join(sentences[i] for i in picked)
            out.append(
                _pair("support", claim, evidence, label, "scifact", ev["label"].lower(), group)
            )
            others = [s for i, s in enumerate(sentences) if i not in picked]
            for s in _closest(claim, others, negatives):
                out.append(_pair("support", claim, s, 0, "scifact", "not-rationale", group))
    return out


_EFFECT = {
    "increased": "{i} increased {o} compared with {c}.",
    "decreased": "{i} decreased {o} compared with {c}.",
    "no difference": "{i} did not significantly change {o} compared with {c}.",
}


def evidence_inference_support(root: Path, split: str) -> list[Pair]:
    half = _EI_HALF[split]
    out: list[Pair] = []
    for q in _ei_questions(root, split):
        evidence = max(q["evidence"], key=len)
        for effect, template in _EFFECT.items():
            claim = template.format(i=q["intervention"], o=q["outcome"], c=q["comparator"])
            claim = claim[:1].upper() + claim[1:]
            label = int(effect == q["answer"])
            kind = "stated-effect" if label else "other-effect"
            out.append(
                _pair("support", claim, evidence, label, "evidence_inference", kind, q["id"], half)
            )
    return out


# -- answer --------------------------------------------------------------------------------


def bioasq_answers(root: Path, per_question: int = 3) -> list[Pair]:
    snippets = {d["id"]: d["text"] for d in _jsonl(root / "corpus.jsonl")}
    out: list[Pair] = []
    for q in _jsonl(root / "questions_dev.jsonl"):
        if q.get("type") not in ("factoid", "list"):
            continue
        synonyms = [s for group in q.get("exact_answer") or [] for s in _flatten(group)]
        patterns = [re.compile(rf"(?<!\w){re.escape(s)}(?!\w)", re.I) for s in synonyms if s]
        if not patterns:
            continue
        sentences = list(
            dict.fromkeys(
                s for gid in q.get("gold_ids", []) for s in _sentences(snippets.get(gid, ""))
            )
        )
        answers = [s for s in sentences if any(p.search(s) for p in patterns)]
        others = [s for s in sentences if s not in answers]
        for s in answers[:per_question]:
            out.append(_pair("answer", q["question"], s, 1, "bioasq", "holds-answer", q["id"]))
        for s in _closest(q["question"], others, per_question):
            out.append(_pair("answer", q["question"], s, 0, "bioasq", "no-answer", q["id"]))
    return out


def medquad_answers(root: Path, siblings_per_question: int = 2) -> list[Pair]:
    passages = {d["id"]: d["text"] for d in _jsonl(root / "corpus.jsonl")}
    questions = list(_jsonl(root / "questions.jsonl"))
    by_topic: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for q in questions:
        by_topic[q["id"].rsplit("-", 1)[0]].append(q)
    out: list[Pair] = []
    for topic, group in by_topic.items():
        for q in group:
            own = _opening(passages.get(q["gold_ids"][0], ""))
            if not own:
                continue
            out.append(_pair("answer", q["question"], own, 1, "medquad", "own-answer", topic))
            siblings = [_opening(passages.get(o["gold_ids"][0], "")) for o in group if o is not q]
            siblings = [t for t in siblings if t and t != own]
            for text in _closest(q["question"], siblings, siblings_per_question):
                out.append(_pair("answer", q["question"], text, 0, "medquad", "sibling", topic))
    return out


def evidence_inference_answers(root: Path, split: str, negatives: int = 2) -> list[Pair]:
    half = _EI_HALF[split]
    articles = _ei_articles(root, split)
    out: list[Pair] = []
    for q in _ei_questions(root, split):
        text = articles.get(q["gold_ids"][0], "")
        spans = sentence_spans(text)
        evidence = [tuple(o) for o in q.get("evidence_offsets") or [] if o]
        hit = [
            (a, b) for a, b in spans if any(a < e1 and b > e0 for e0, e1 in evidence) and b - a > 20
        ]
        if not hit:
            continue
        for a, b in hit[:1]:
            out.append(
                _pair(
                    "answer",
                    q["question"],
                    text[a:b].strip(),
                    1,
                    "evidence_inference",
                    "evidence",
                    q["id"],
                    half,
                )
            )
        names = content_stems(f"{q['intervention']} {q['outcome']}")
        others = [
            text[a:b].strip()
            for a, b in spans
            if (a, b) not in hit and b - a > 20 and len(names & content_stems(text[a:b])) >= 2
        ]
        for s in _closest(q["question"], others, negatives):
            out.append(
                _pair(
                    "answer", q["question"], s, 0, "evidence_inference", "same-trial", q["id"], half
                )
            )
    return out


def pubmedqa_answers(root: Path) -> list[Pair]:
    contexts = {d["id"]: d["text"] for d in _jsonl(root / "corpus.jsonl")}
    out: list[Pair] = []
    for q in _jsonl(root / "questions_dev.jsonl"):
        conclusion = (q.get("long_answer") or "").strip()
        opening = _sentences(contexts.get((q.get("gold_ids") or [""])[0], ""))[:1]
        if conclusion:
            out.append(
                _pair("answer", q["question"], conclusion, 1, "pubmedqa", "conclusion", q["id"])
            )
        for s in opening:
            out.append(_pair("answer", q["question"], s, 0, "pubmedqa", "aims", q["id"]))
    return out


# -- all -----------------------------------------------------------------------------------


def build_pairs(datasets: Path) -> list[Pair]:
    """Every pair from the shared datasets folder (``../shared/datasets``)."""
    pairs: list[Pair] = []
    pairs += scifact_support(datasets / "scifact")
    pairs += evidence_inference_support(datasets / "evidence_inference", "train")
    pairs += evidence_inference_support(datasets / "evidence_inference", "dev")
    pairs += bioasq_answers(datasets / "bioasq")
    pairs += medquad_answers(datasets / "medquad_cancergov")
    pairs += evidence_inference_answers(datasets / "evidence_inference", "train")
    pairs += evidence_inference_answers(datasets / "evidence_inference", "dev")
    pairs += pubmedqa_answers(datasets / "pubmedqa")
    return pairs


_EI_HALF = {"train": "tune", "dev": "report"}  # the dataset's own splits, as published


def _ei_questions(root: Path, split: str) -> Iterator[dict[str, Any]]:
    """Evidence Inference prompts; the train split is all tuning data, dev all report data."""
    path = (
        root / "train" / "questions_train.jsonl"
        if split == "train"
        else root / "questions_dev.jsonl"
    )
    for q in _jsonl(path):
        if q.get("evidence") and q.get("answer") in _EFFECT:
            yield q


def _ei_articles(root: Path, split: str) -> dict[str, str]:
    path = root / "train" / "corpus.jsonl" if split == "train" else root / "corpus.jsonl"
    return {d["id"]: d["text"] for d in _jsonl(path)}


def _flatten(value: Any) -> list[str]:
    if isinstance(value, str):
        return [value.strip()] if value.strip() else []
    if isinstance(value, list):
        return [s for v in value for s in _flatten(v)]
    return []


def _opening(text: str, sentences: int = 2) -> str:
    """The first sentences of an answer passage (MedQuAD's start with "Key Points - ")."""
    text = re.sub(r"^\s*Key Points\s*-\s*", "", text)
    return " ".join(_sentences(text)[:sentences])


def _closest(query: str, candidates: list[str], n: int) -> list[str]:
    """The ``n`` candidates sharing most content words with ``query`` (hard negatives)."""
    wanted = content_stems(query)
    ranked = sorted(candidates, key=lambda s: -len(wanted & content_stems(s)))
    return ranked[:n]


def sample(pairs: list[Pair], limit: int, seed: int = 0) -> list[Pair]:
    if len(pairs) <= limit:
        return pairs
    return random.Random(seed).sample(pairs, limit)


# -- yes/no verdicts -----------------------------------------------------------------------

VERDICTS = ("yes", "no", "maybe")


@dataclass(frozen=True, slots=True)
class VerdictExample:
    id: str
    question: str
    evidence: str
    label: str  # yes | no | maybe
    source: str
    group: str
    half: str


def _verdict(
    question: str, evidence: str, label: str, source: str, group: str, half: str | None = None
) -> VerdictExample:
    digest = hashlib.sha256(f"{question}\x00{evidence}".encode()).hexdigest()[:10]
    half = half or half_of(f"{source}:{group}")
    return VerdictExample(
        f"{source}:{group}:{digest}", question, evidence, label, source, group, half
    )


def pubmedqa_verdicts(root: Path) -> list[VerdictExample]:
    contexts = {d["id"]: d["text"] for d in _jsonl(root / "corpus.jsonl")}
    out: list[VerdictExample] = []
    for q in _jsonl(root / "questions_dev.jsonl"):
        context = contexts.get((q.get("gold_ids") or [""])[0], "")
        if q.get("answer") in VERDICTS and context:
            out.append(_verdict(q["question"], context, q["answer"], "pubmedqa", q["id"]))
    return out


def bioasq_verdicts(root: Path) -> list[VerdictExample]:
    snippets = {d["id"]: d["text"] for d in _jsonl(root / "corpus.jsonl")}
    out: list[VerdictExample] = []
    for q in _jsonl(root / "questions_dev.jsonl"):
        label = str(q.get("answer", "")).strip().lower()
        if q.get("type") != "yesno" or label not in ("yes", "no"):
            continue
        texts = list(dict.fromkeys(snippets[g] for g in q.get("gold_ids", []) if g in snippets))
        if texts:
            out.append(_verdict(q["question"], " ".join(texts), label, "bioasq", q["id"]))
    return out


def scifact_verdicts(root: Path) -> list[VerdictExample]:
    """SciFact claims asked as questions ("Is it true that …?") against their rationales."""
    abstracts = {str(d["id"]): d.get("sentences") or [] for d in _jsonl(root / "corpus.jsonl")}
    out: list[VerdictExample] = []
    for q in _jsonl(root / "questions_dev.jsonl"):
        for doc_id, ev in (q.get("evidence") or {}).items():
            sentences = abstracts.get(str(doc_id), [])
            picked = sorted({i for g in ev.get("sentences", []) for i in g if i < len(sentences)})
            if not picked or ev.get("label") not in ("SUPPORT", "CONTRADICT"):
                continue
            claim = q["question"].rstrip(". ")
            question = f"Is it true that {claim[:1].lower()}{claim[1:]}?"
            label = "yes" if ev["label"] == "SUPPORT" else "no"
            evidence = " ".join(sentences[i] for i in picked)
            out.append(_verdict(question, evidence, label, "scifact", str(q["id"])))
    return out


_EI_QUESTIONS = (
    ("Did {i} increase {o} compared with {c}?", {"increased": "yes"}),
    ("Did {i} reduce {o} compared with {c}?", {"decreased": "yes"}),
    ("Did {o} differ between {i} and {c}?", {"increased": "yes", "decreased": "yes"}),
)


def evidence_inference_verdicts(root: Path, split: str) -> list[VerdictExample]:
    """Each prompt asked three ways (increase? reduce? differ?) against its evidence span."""
    half = _EI_HALF[split]
    out: list[VerdictExample] = []
    for q in _ei_questions(root, split):
        evidence = max(q["evidence"], key=len)
        for template, yes_for in _EI_QUESTIONS:
            question = template.format(i=q["intervention"], o=q["outcome"], c=q["comparator"])
            label = yes_for.get(q["answer"], "no")
            out.append(_verdict(question, evidence, label, "evidence_inference", q["id"], half))
    return out


def build_verdicts(datasets: Path) -> list[VerdictExample]:
    return [
        *pubmedqa_verdicts(datasets / "pubmedqa"),
        *bioasq_verdicts(datasets / "bioasq"),
        *scifact_verdicts(datasets / "scifact"),
        *evidence_inference_verdicts(datasets / "evidence_inference", "train"),
        *evidence_inference_verdicts(datasets / "evidence_inference", "dev"),
    ]

"""The shipped answer judge and verdict classifier: small, fingerprinted, and they discriminate."""

from __future__ import annotations

import hashlib
import json

import pytest

from rag.verify.judge import (
    ADAPTER_FILE,
    EFFECT_ADAPTER_FILE,
    EFFECT_MANIFEST_FILE,
    MANIFEST_FILE,
    VERDICT_ADAPTER_FILE,
    VERDICT_MANIFEST_FILE,
    VERDICT_RECIPE,
    EffectClassifier,
    Judge,
    VerdictClassifier,
    fit_evidence,
    judge_dir,
    load_base,
)

PASSAGE = (
    "The median PFS was 7.1 months for the combination arm versus 4.8 months for placebo "
    "(HR, 0.46; P < .001)."
)


@pytest.mark.parametrize(
    ("adapter", "manifest"),
    [
        (ADAPTER_FILE, MANIFEST_FILE),
        (VERDICT_ADAPTER_FILE, VERDICT_MANIFEST_FILE),
        (EFFECT_ADAPTER_FILE, EFFECT_MANIFEST_FILE),
    ],
)
def test_artifacts_are_small_and_match_their_recorded_fingerprint(adapter, manifest) -> None:
    folder = judge_dir()
    data = (folder / adapter).read_bytes()
    recorded = json.loads((folder / manifest).read_text())
    assert len(data) <= 5 * 1024 * 1024
    assert hashlib.sha256(data).hexdigest() == recorded["adapter_sha256"]
    assert recorded["command"].startswith("python -m rag.eval.train_judge")
    assert recorded["recipe"]["base"] == "all-MiniLM-L6-v2"


def test_the_judge_separates_support_and_answers() -> None:
    judge = Judge()
    for task in ("support", "answer"):
        assert 0 < judge.threshold(task, "reject") < judge.threshold(task, "accept") < 1
    stated = judge.supports("Progression-free survival was longer with the combination.", PASSAGE)
    reversed_ = judge.supports("The combination did not improve PFS over placebo.", PASSAGE)
    assert stated > 2 * reversed_
    question = "What was the median progression-free survival with the combination?"
    answers = judge.answers(
        question,
        [
            "The median PFS was 7.1 months for the combination arm.",
            "The study enrolled patients at 40 centres in Europe and Asia.",
        ],
    )
    assert answers[0] > answers[1]


def test_the_verdict_follows_the_evidence() -> None:
    classifier = VerdictClassifier()
    probs = classifier.probabilities(
        [
            (
                "Did drug A improve overall survival?",
                "Overall survival was longer with drug A than with placebo (HR, 0.62; P < .001).",
            ),
            (
                "Did drug A improve overall survival?",
                "Overall survival did not differ between drug A and placebo (HR, 0.99; P = .81).",
            ),
        ]
    )
    assert probs.shape == (2, 3)
    assert probs[0].argmax() == 0 and probs[1].argmax() == 1  # yes, then no


def test_the_verdict_reads_a_long_passage_by_its_findings_not_its_aims() -> None:
    tokenizer = load_base(3)[1]
    aims = "We aimed to study whether drug B changes outcomes in elderly patients. " * 30
    finding = "Progression-free survival did not differ between drug B and placebo (P = .62)."
    question = "Does drug B prolong progression-free survival?"
    length = VERDICT_RECIPE["max_length"]
    fitted = fit_evidence(tokenizer, question, [aims + finding, "A second passage."], length)
    assert fitted.endswith(finding)  # plain truncation would keep only the aims
    assert "A second passage" not in fitted  # the window is full: later passages wait
    short = fit_evidence(tokenizer, question, ["Drug B was well tolerated.", finding], length)
    assert short == f"Drug B was well tolerated. {finding}"  # whole passages, in rank order
    assert len(tokenizer(f"question: {question}", fitted)["input_ids"]) <= length


def test_the_effect_head_reads_the_direction_of_a_result() -> None:
    effects = EffectClassifier()
    prompt = EffectClassifier.prompt("drug A", "placebo", "progression-free survival")
    probs = effects.probabilities(
        [
            (prompt, "Median progression-free survival was 9.1 months with drug A and 4.2 "
             "months with placebo (HR 0.48; P < .001)."),
            (prompt, "Progression-free survival did not differ significantly between drug A "
             "and placebo (P = .74)."),
        ]
    )  # fmt: skip
    assert effects.labels[probs[0].argmax()] == "increased"
    assert effects.labels[probs[1].argmax()] == "no difference"

"""Follow-up rewriting: when it runs, and which model outputs are accepted (no model needed)."""

from __future__ import annotations

import pytest

from rag.conversation import clean_rewrite, needs_rewrite, plausible_rewrite, standalone_question

HISTORY = [
    {"role": "user", "content": "What was the median PFS with ivonescimab in HARMONi-A?"},
    {"role": "assistant", "content": "The median PFS was 7.1 months versus 4.8 months [1]."},
]


def _never_loaded():
    raise AssertionError("the generator must not be loaded for a stand-alone question")


@pytest.mark.parametrize(
    "question",
    [
        "And what was its hazard ratio?",
        "What about overall survival?",
        "Which patients were enrolled in that trial?",
        "side effects?",
        "How did they compare with chemotherapy alone?",
    ],
)
def test_follow_ups_need_a_rewrite(question: str) -> None:
    assert needs_rewrite(HISTORY, question)


@pytest.mark.parametrize(
    "question",
    [
        "What is the objective response rate of osimertinib in FLAURA?",
        "Which biomarkers predict response to pembrolizumab in NSCLC?",
    ],
)
def test_stand_alone_questions_skip_generation(question: str) -> None:
    assert not needs_rewrite(HISTORY, question)
    # The generator is passed lazily: a question that stands alone never loads it.
    assert standalone_question(_never_loaded, HISTORY, question) == question


def test_no_history_means_no_rewrite() -> None:
    assert not needs_rewrite([], "And its hazard ratio?")
    assert standalone_question(_never_loaded, [], "And its hazard ratio?") == (
        "And its hazard ratio?"
    )


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("Standalone question: What was the HR?\nmore", "What was the HR?"),
        (
            '\n  "What was the hazard ratio with ivonescimab?"  ',
            "What was the hazard ratio with ivonescimab?",
        ),
        ("**Question:** What   was it?", "What was it?"),
        ("", ""),
    ],
)
def test_clean_rewrite(raw: str, expected: str) -> None:
    assert clean_rewrite(raw) == expected


@pytest.mark.parametrize(
    ("candidate", "ok"),
    [
        ("What was the hazard ratio with ivonescimab in HARMONi-A?", True),
        # Lost what the follow-up asked about: the previous question repeated.
        ("What was the median PFS with ivonescimab in HARMONi-A?", False),
        # An answer, not a question.
        ("The hazard ratio was 0.46.", False),
        # Invents a drug the conversation never mentioned.
        ("What was the hazard ratio with amivantamab lazertinib zipalertinib?", False),
        ("Hazard ratio?", False),  # too short to stand alone
        ("What was the hazard ratio [1] with ivonescimab?", False),  # citation markers
    ],
)
def test_plausible_rewrite(candidate: str, ok: bool) -> None:
    assert plausible_rewrite(candidate, HISTORY, "And what was its hazard ratio?") is ok

"""The prompt's worked examples and the copy check that triggers a second draft."""

from __future__ import annotations

import pytest

from rag.generate.prompt import (
    ALTERNATE_SYSTEM_PROMPT,
    EXAMPLE_ANSWER,
    SYSTEM_PROMPT,
    build_messages,
    copies_example,
)

# Real first drafts of the 1.5B/0.5B on seed questions (runs/seed-quality-6, seed-fast-4).
COPIES = [
    "The median overall survival was 12.3 months with drug A versus 9.8 months with placebo "
    "(HR, 0.72; P = .004) [1].",
    "The median overall survival was 62% overall response rate (Mathew et al., 2024) [1].",
    "The median overall survival was 12.3 months with ramucirumab versus 9.8 months with "
    "placebo (HR, 0.72; P = .004) [1].",
]
ANSWERS = [
    "The median PFS was 7.1 months for the combination arm versus 4.8 months for the placebo "
    "(HR, 0.46; P < .001) [1].",
    "Renata-Andrea Rusu-Patraulea, Petronela Rusu, Tudor-Eliade Ciuleanu [1].",
    "No severe treatment-related adverse events were reported [1].",
]


@pytest.mark.parametrize("draft", COPIES)
def test_copies_of_the_worked_example_are_recognised(draft: str) -> None:
    assert copies_example(draft)


@pytest.mark.parametrize("draft", ANSWERS)
def test_answers_from_the_passages_are_not_copies(draft: str) -> None:
    assert not copies_example(draft)


def test_the_alternate_prompt_has_other_example_and_the_same_rules() -> None:
    assert EXAMPLE_ANSWER in SYSTEM_PROMPT
    assert EXAMPLE_ANSWER not in ALTERNATE_SYSTEM_PROMPT
    assert not copies_example(ALTERNATE_SYSTEM_PROMPT.split("Example")[1])
    for rule in SYSTEM_PROMPT.split("\n\nExample")[0].splitlines()[2:]:
        assert rule in ALTERNATE_SYSTEM_PROMPT
    messages = build_messages("q?", [], system=ALTERNATE_SYSTEM_PROMPT)
    assert messages[0]["content"] == ALTERNATE_SYSTEM_PROMPT
    assert build_messages("q?", [])[0]["content"] == SYSTEM_PROMPT

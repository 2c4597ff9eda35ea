"""How `rag ask` prints a verified response (no model: the response is built directly)."""

from __future__ import annotations

import pytest
from rich.console import Console

from rag.cli import answer as cli
from rag.schemas import AnswerResponse, AnswerSentence


@pytest.fixture
def printed(monkeypatch: pytest.MonkeyPatch):
    console = Console(record=True, width=200, highlight=False)
    monkeypatch.setattr(cli, "out", console)
    return lambda: console.export_text()


def test_abstention_shows_the_withheld_draft_and_why(printed) -> None:
    draft = AnswerSentence(
        text="The dose of itacitinib was given in the phase 2 study [see NCT03425006].",
        citations=[1],
        verdict="supported",
        support_score=0.93,
        reasons=["the question asks for a quantity and the sentence gives none"],
        dropped=True,
    )
    response = AnswerResponse(
        question="What dose of itacitinib was given?",
        answer="The indexed documents do not answer this question.",
        abstained=True,
        abstain_reason="the generated answer does not answer the question",
        sentences=[draft],
    )
    cli._print_answer(response, debug=False)
    text = printed()
    assert "do not answer this question" in text
    assert "1 sentence(s) of the draft removed" in text
    # Rich markup in model text is printed literally, not interpreted.
    assert "[see NCT03425006]" in text
    assert "gives none" in text

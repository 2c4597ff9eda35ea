"""Metric values against hand-computed ones."""

from __future__ import annotations

import pytest
from rag.eval.gold import GoldItem, fact_present
from rag.eval.scoring import aggregate, item_values, paired_delta, token_f1


def _record(answer: str, *, abstained: bool = False, sentences=None, label=None, **extra):
    response = {
        "answer": answer,
        "abstained": abstained,
        "raw_answer": answer,
        "sentences": sentences or [],
        "removed_citations": extra.get("removed", 0),
        "timings": {"total_ms": extra.get("total", 1000.0)},
    }
    if label:
        response["label"] = label
    return {"response": response, "retrieval": {"passage_rank": extra.get("rank")}}


def _sentence(
    verdict: str, cites: list[int], model: list[int], numbers=(), dropped=False, auto=False
):
    return {
        "verdict": verdict,
        "citations": cites,
        "model_citations": model,
        "dropped": dropped,
        "auto_cited": auto,
        "numbers": [{"text": t, "traced": ok} for t, ok in numbers],
    }


def test_fact_matching_rules() -> None:
    assert fact_present("7.1 months", "median PFS was 7.1  months [1]")
    assert fact_present("0.46", "(HR, .46)")
    assert fact_present("62%", "an ORR of 62 %")
    assert fact_present("treatment-naive|treatment naive", "treatment naive patients")
    assert not fact_present("7.1 months", "7.4 months")


def test_per_question_values_by_hand() -> None:
    item = GoldItem(
        id="a",
        question="PFS?",
        key_facts=["7.1 months", "4.8 months"],
        gold_quotes=["x"],
        gold_doc_ids=["d"],
    )
    rec = _record(
        "PFS was 7.1 months [1]. Placebo 4.9 months [2].",
        sentences=[
            _sentence("supported", [1], [1], [("7.1", True)]),
            _sentence("unsupported", [2], [2, 3], [("4.9", False)], dropped=True),
        ],
        removed=1,
        rank=2,
    )
    v = item_values(item, rec)
    assert v["fact_recall"] == 0.5 and v["correct"] == 0.0
    assert v["citation_recall"] == 1.0 and v["citation_precision"] == 1.0  # shown: 1 sentence
    # Model's own output: 1 of 2 sentences supported by its own citations; citations written:
    # [1] + [2, 3] + 1 invalid = 4, of which 1 is useful.
    assert v["model_citation_recall"] == 0.5
    assert v["model_citation_precision"] == 0.25
    assert v["numbers_traced"] == 1.0 and v["model_numbers_traced"] == 0.5
    assert v["passage_recall@1"] == 0.0 and v["passage_recall@5"] == 1.0


def test_aggregate_abstention_yes_no_and_ci() -> None:
    items = [
        GoldItem(id="1", question="q1?", key_facts=["x"]),
        GoldItem(id="2", question="q2?", key_facts=["y"]),
        GoldItem(id="3", question="q3?", answerable=False, answer_type="abstain"),
        GoldItem(id="4", question="q4?", answerable=False, answer_type="abstain"),
        GoldItem(id="5", question="q5?", answer_type="yes_no", yes_no="yes"),
        GoldItem(id="6", question="q6?", answer_type="yes_no", yes_no="no"),
    ]
    records = [
        _record("x is true [1]."),
        _record("", abstained=True),  # abstained on an answerable item: a false positive
        _record("", abstained=True),
        _record("something"),  # answered an unanswerable item: a miss
        _record("", label="yes"),
        _record("", label="yes"),
    ]
    for item, rec in zip(items, records, strict=True):
        rec["values"] = item_values(item, rec)
    agg = aggregate(items, records)
    assert agg["correct"]["value"] == pytest.approx((1 + 0 + 1 + 0) / 4)
    assert agg["yes_no_accuracy"]["value"] == 0.5
    # yes: tp=1 fp=1 -> F1 2/3; no: fn=1 -> F1 0; macro = 1/3
    assert agg["yes_no_macro_f1"]["value"] == pytest.approx(1 / 3)
    assert agg["abstention_precision"]["value"] == 0.5
    assert agg["abstention_recall"]["value"] == 0.5
    low, high = agg["correct"]["ci_low"], agg["correct"]["ci_high"]
    assert 0.0 <= low <= 0.5 <= high <= 1.0


def test_token_f1_and_paired_delta() -> None:
    assert token_f1("the PD-L1 status", "PD-L1 status") == 1.0
    assert token_f1("PD-L1", "PD-L1 status") == pytest.approx(2 * 1 * (2 / 3) / (1 + 2 / 3))
    d = paired_delta({"a": 0, "b": 1, "c": 1}, {"a": 1, "b": 1, "c": 0})
    assert (d["wins"], d["losses"], d["ties"]) == (1, 1, 1) and d["delta"] == 0.0


def test_list_answers_score_precision_recall_and_f1() -> None:
    from rag.eval.scoring import list_scores

    expected = [["hypoxia"], ["oxidative stress"], ["inflammation", "inflammatory response"]]
    full = list_scores(expected, "GDF15 rises with hypoxia, oxidative stress and inflammation [1].")
    assert full["list_recall"] == 1.0 and full["list_f1"] > 0.7
    partial = list_scores(expected, "Hypoxia, fever, anaemia and pain [1].")
    assert partial["list_recall"] == 1 / 3
    assert partial["list_precision"] == 1 / 4
    assert list_scores(expected, "")["list_f1"] == 0.0


def test_a_figure_outside_the_gold_quotes_counts_as_a_wrong_figure() -> None:
    from rag.eval.scoring import shown_figures

    item = GoldItem(
        id="x",
        question="What was the median PFS in trial A?",
        key_facts=["7.1 months"],
        gold_quotes=["The median PFS was 7.1 months (HR, 0.46; P < .001)"],
    )
    assert shown_figures(item, "The median PFS was 7.1 months (HR 0.46) [1].") == []
    assert shown_figures(item, "The hazard ratio was 0.99 [1].") == ["0.99"]
    twin = GoldItem(id="y", question="What HR did trial B report?", answerable=False)
    assert shown_figures(twin, "The HR was 0.99; P = .46 [1].") == ["0.99", "P = .46"]
    assert shown_figures(GoldItem(id="z", question="What is X?", key_facts=["y"]), "9") is None
    # Names, ordinals and dates hold digits but no figure.
    assert shown_figures(item, "PD-L1-high patients on JAK1 inhibitors, July 25 at the 26th") == []
    assert shown_figures(item, "The phase 3 trial A enrolled stage IV patients [1].") == []
    # A figure of the sentence that holds the gold quote is the asked trial's own.
    passage = "Trial B failed. The median PFS was 7.1 months (HR, 0.46; P < .001), ORR 62%."
    assert shown_figures(item, "ORR was 62% [1].", [passage]) == []
    assert shown_figures(item, "ORR was 62% [1].", ["Trial B: ORR 62%."]) == ["62"]

"""Tuning and report halves: fixed by a hash of the group id, variants follow their question."""

from __future__ import annotations

from pathlib import Path

from rag.eval.gold import load_gold
from rag.eval.splits import half_of, select_half
from rag.eval.twins import corpus_text, make_twins

GOLD = Path(__file__).resolve().parents[2] / "eval" / "gold"


def test_halves_are_fixed_and_balanced() -> None:
    ids = [f"q{i}" for i in range(2000)]
    halves = [half_of(i) for i in ids]
    assert halves == [half_of(i) for i in ids]  # no state, no seed
    assert 0.45 < halves.count("tune") / len(ids) < 0.55


def test_paraphrases_and_twins_share_their_questions_half() -> None:
    items = load_gold(
        GOLD / "seed.jsonl", GOLD / "seed_paraphrases.jsonl", GOLD / "seed_twins.jsonl"
    )
    by_id = {i.id: i for i in items}
    variants = [i for i in items if i.variant_of]
    assert len(variants) >= 2 * 55  # two phrasings of every seed question, plus twins
    for item in variants:
        assert half_of(item.group) == half_of(by_id[item.variant_of].id)
    tune = select_half(items, "tune", key=lambda i: i.group)
    report = select_half(items, "report", key=lambda i: i.group)
    assert {i.id for i in tune}.isdisjoint(i.id for i in report)
    assert len(tune) + len(report) == len(items)


def test_twins_name_what_the_corpus_does_not(seeds: Path) -> None:
    items = load_gold(GOLD / "seed.jsonl")
    corpus = corpus_text([seeds])
    twins = make_twins(items, corpus)
    assert len(twins) >= 35
    kept = load_gold(GOLD / "seed_twins.jsonl")
    assert {t.id for t in twins} <= {t.id for t in kept}  # the committed file is regenerated
    for twin in twins:
        original = next(i for i in items if i.id == twin.variant_of)
        assert not twin.answerable and "twin" in twin.tags
        assert twin.question != original.question
        swapped = (twin.reference_answer or "").removeprefix("The indexed documents do not ")
        name = swapped.removeprefix("mention ").rstrip(".")
        assert name and name.lower() not in corpus.lower()


def test_the_trust_bench_finds_every_bioasq_question_type() -> None:
    # A tag the importer does not give selects nothing, and the part reports on 0 questions.
    from rag.eval.bench_trust import BIOASQ_TAGS
    from rag.eval.harness import EvalConfig, load_items, select_items

    from ..conftest import SHARED

    for part, tag in BIOASQ_TAGS.items():
        cfg = EvalConfig(gold=str(SHARED / "datasets" / "bioasq"), half="report", tags=[tag])
        assert len(select_items(load_items(cfg), cfg)) >= 20, part

"""Names a question gives, found by general patterns, and whether a passage is about them."""

from __future__ import annotations

import pytest

from rag.text.entities import Cited, figure_owner, is_grounded, mentions, named_entities

# A made-up trial report with two trials in one paragraph, and a drug-only paragraph.
REPORT = (
    "Two phase 3 trials were presented.\n\n"
    "In the ORBIT-7 trial (NCT01234567), zanotumab plus chemotherapy improved progression-free "
    "survival in previously treated patients. The median PFS was 6.2 months versus 4.0 months "
    "(HR, 0.61; P = .002). By contrast, LUMEN-3 compared velparib with docetaxel. The median "
    "PFS was 3.9 months in both arms (HR, 0.98; P = .71).\n\n"
    "A phase 2 study combined telocitinib with zanotumab. The objective response rate was 41%."
)


def _kinds(text: str) -> list[tuple[str, str]]:
    return [(e.text, e.kind) for e in named_entities(text)]


@pytest.mark.parametrize(
    ("question", "expected"),
    [
        ("What OS HR did KEYNOTE-189 report?", [("KEYNOTE-189", "trial")]),
        ("Was IMpower150 positive?", [("IMpower150", "trial")]),
        ("Results of CheckMate 227?", [("CheckMate 227", "trial")]),
        ("Which drug did the SWOG S2302 study test?", [("SWOG S2302", "trial")]),
        ("Did Pragmatica-Lung meet its endpoint?", [("Pragmatica-Lung", "trial")]),
        ("What is NCT05184712?", [("NCT05184712", "trial-id")]),
        ("How well does osimertinib work?", [("osimertinib", "drug")]),
        ("Is KRAS G12C or EGFR targetable?", [("KRAS G12C", "gene"), ("EGFR", "gene")]),
        ("Does PD-L1 predict response?", [("PD-L1", "gene")]),
        ("Treatments for metastatic breast cancer?", [("breast cancer", "disease")]),
        ("Does melanoma respond?", [("melanoma", "disease")]),
        ("What was approved in 2019?", [("2019", "year")]),
    ],
)
def test_names_are_found_by_their_shape(question: str, expected: list) -> None:
    assert _kinds(question) == expected


@pytest.mark.parametrize(
    "question",
    [
        "What is the capital of France?",
        "What are the ORR and PFS in NSCLC according to ASCO?",
        "List 3 genes involved in Protein 25 signalling.",  # a word and a number, not a trial
        "Who works at the Fox Chase Cancer Center?",  # an organisation, not a disease
        "What is the ClinicalTrials.gov identifier?",  # a website
        "Exercise reduces cancer incidence.",  # a verb before "cancer", not a disease name
    ],
)
def test_ordinary_words_are_not_names(question: str) -> None:
    assert _kinds(question) == []


def test_mentions_ignore_case_spacing_and_hyphens_but_not_longer_words() -> None:
    assert mentions("the Keynote 189 study", "KEYNOTE-189")
    assert mentions("adenovirus-IL-12 plus", "adenovirus–IL-12")
    assert mentions("kidney cancer", "kidney cancers")
    assert mentions("a JAK1 inhibitor", "JAK")  # a gene family names its members
    assert not mentions("non-small cell lung cancer", "small cell lung cancer")
    assert not mentions("KEYNOTE-1890", "KEYNOTE-189")
    assert mentions("pembrolizumab (Keytruda)", "Keytruda")
    assert mentions("pembrolizumab was given", "Keytruda", lambda t: {"pembrolizumab"})


def _cited(figure: str) -> Cited:
    at = REPORT.index(figure)
    start = REPORT.rfind(". ", 0, at) + 2
    return Cited(text=REPORT[start:], label="A congress report", before=REPORT[:start])


def test_a_figure_belongs_to_the_trial_named_nearest_before_it() -> None:
    asked_orbit = named_entities("What PFS hazard ratio did ORBIT-7 report?")
    asked_lumen = named_entities("What PFS hazard ratio did LUMEN-3 report?")
    orbit = _cited("The median PFS was 6.2")
    lumen = _cited("The median PFS was 3.9")
    end_of = {c: c.text.index(f) + len(f) for c, f in ((orbit, "0.61"), (lumen, "0.98"))}
    assert figure_owner([end_of[orbit]], asked_orbit, orbit) is None
    assert figure_owner([end_of[lumen]], asked_orbit, lumen) == "LUMEN-3"
    assert figure_owner([end_of[lumen]], asked_lumen, lumen) is None
    assert figure_owner([end_of[orbit]], asked_lumen, orbit) == "ORBIT-7, NCT01234567"


def test_a_passage_is_about_what_the_sentence_it_continues_names() -> None:
    orbit = _cited("The median PFS was 6.2")
    assert is_grounded(named_entities("PFS in ORBIT-7?")[0], orbit)
    assert is_grounded(named_entities("PFS with zanotumab?")[0], orbit)
    assert not is_grounded(named_entities("PFS in KEYNOTE-189?")[0], orbit)
    combo = _cited("The objective response rate was 41%")
    assert is_grounded(named_entities("ORR of telocitinib?")[0], combo)
    assert not is_grounded(named_entities("ORR of velparib?")[0], combo)

"""Non-answers: supported sentences that restate the question or report an absence."""

from __future__ import annotations

import pytest

from rag.retrieve.expand import QueryExpander
from rag.verify import SupportChecker, Verifier
from rag.verify.answerness import named_measure, non_answer_reason

PASSAGE = (
    "Further investigations into JAK inhibition combined with anti-PD-1 therapy have also "
    "yielded promising results. A phase 2 study (NCT03425006) of the selective JAK1 inhibitor "
    "itacitinib plus pembrolizumab showed improved response rates."
)


@pytest.mark.parametrize(
    ("question", "sentence"),
    [
        # Restatements and reported absences, as the 1.5B model writes them
        (
            "What dose of itacitinib was given in the phase 2 study?",
            "The dose of itacitinib was given in the phase 2 study (NCT03425006).",
        ),
        (
            "Which adverse events were observed with OSE2101 in the phase 3 trial?",
            "The adverse events observed with OSE2101 in the phase 3 trial were not reported.",
        ),
        ("Which JAK inhibitor was studied?", "A JAK inhibitor was studied in the trial."),
        ("How many patients were enrolled?", "Patients were enrolled in the phase 2 study."),
        ("Who funded the study?", "The passages do not mention who funded the study."),
        # Another endpoint than the one asked for
        (
            "What objective response rate did ivonescimab achieve in HARMONi-A?",
            "The median PFS was 7.1 months versus 4.8 months (HR, 0.46).",
        ),
        ("Did ivonescimab prolong overall survival?", "Ivonescimab prolonged PFS."),
        # Safety asked, efficacy answered
        (
            "What grade 3 adverse events occurred with drug A plus drug B?",
            "Patients who received drug A plus drug B achieved a 40% overall response rate.",
        ),
        ("Which toxicities were seen with drug A?", "Drug A prolonged median PFS to 9 months."),
        # "When" about a dated event answered with no time; "where" a study ran, with no place
        (
            "When will the phase 3 trial of drug A read out?",
            "The phase 3 trial of drug A is under evaluation against docetaxel (Liu et al., 2025).",
        ),
        ("In which year was the trial published?", "The trial was published in J Clin Oncol."),
        # A condition or a survival figure is no date for a dated event
        (
            "When did the drug A trial begin enrolling patients?",
            "The trial (NCT05899608) enrolled patients after progression on an EGFR TKI.",
        ),
        ("When will overall survival results be reported?", "The median PFS was 7.1 months."),
        ("Where was the phase 2 study of drug A run?", "The study was run at NCT01234567."),
        (
            "Where is the drug A trial enrolling patients?",
            "The trial is enrolling patients in a phase 3 study comparing it with docetaxel.",
        ),
        # The trial's figures where the population was asked for
        (
            "In which patients did ivonescimab plus chemotherapy improve PFS in HARMONi-A?",
            "The median PFS was 7.1 months for the combination arm versus 4.8 months (HR, 0.46).",
        ),
        # Another measure than the one asked for: figures, but not the asked one
        (
            "What median follow-up was reported in the drug A trial?",
            "The median PFS was 7.1 months versus 4.8 months.",
        ),
        ("How many patients were enrolled in the drug A trial?", "The ORR was 40% (P = .02)."),
        ("What dose of drug A was given?", "Drug A was given every 3 weeks for 2 years."),
        ("What was the median age of the patients?", "The median PFS was 9.1 months."),
        ("How much drug A was given per cycle?", "Drug A achieved a 40% response rate."),
        # A measure no family lists, named by the question's own words
        ("What was the median time to response with drug A?", "The median PFS was 9.1 months."),
        (
            "What was the mean tumor size at baseline in the drug A trial?",
            "Patients on drug A had a median OS of 12 months.",
        ),
        # A rate among the patients is no count of them
        (
            "How many patients with high PD-L1 levels were treated in the drug A study?",
            "Patients with high PD-L1 levels achieved a 62% overall response rate.",
        ),
    ],
)
def test_non_answers_are_named(question: str, sentence: str) -> None:
    assert non_answer_reason(question, sentence, PASSAGE)


REFERENCE_ENTRY = (
    "3. Mathew D, Marmarelis ME, Foley C, et al. Combined JAK inhibition and PD-1 immunotherapy "
    "for non-small cell lung cancer patients. *Science*. 2024;384(6702):eadf1329. "
    "doi:10.1126/science.adf1329."
)


def test_a_named_measure_must_be_in_the_cited_passage() -> None:
    """The draft's label on another measure's figure: "duration of treatment" citing the PFS."""
    question = "What was the median duration of treatment with drug A?"
    sentence = "The median duration of treatment with drug A was 7.1 months."
    found = non_answer_reason(question, sentence, "The median PFS with drug A was 7.1 months.")
    assert found is not None and not found.off_target
    assert non_answer_reason(question, sentence, sentence) is None
    # The measure is the words before the drug, trial or patients it is asked about.
    assert named_measure(question) == ("duration of treatment", {"durat", "treatment"})
    assert named_measure("What was the percentage of patients at risk?") is None
    assert named_measure("What was the median PFS with drug A?") is None  # an endpoint
    assert named_measure("What was the median survival with drug A?") is None  # OS, said "OS"


@pytest.mark.parametrize(
    ("sentence", "cited", "refused"),
    [
        # The year is the cited article's, not the event's
        ("The study completed enrollment in 2024.", REFERENCE_ENTRY, True),
        ("The study completed enrollment in 2024.", "A 62% ORR (Mathew et al., 2024).", True),
        # The passage dates the event itself
        ("The study completed enrollment in 2024.", "Enrollment was completed in 2024.", False),
        ("It completed enrollment in March 2024.", REFERENCE_ENTRY, False),  # a date of its own
    ],
)
def test_a_citation_year_is_no_event_date(sentence: str, cited: str, refused: bool) -> None:
    question = "When did the drug A study complete enrollment?"
    assert (non_answer_reason(question, sentence, cited) is not None) is refused
    # Asked when it was published, the citation's year is the answer.
    asked = "In which year was the drug A study published?"
    assert non_answer_reason(asked, "It was published in 2024.", REFERENCE_ENTRY) is None


@pytest.mark.parametrize(
    ("question", "sentence", "off_target"),
    [
        # Answers to another question: the passages may still hold this one's answer.
        ("Did ivonescimab prolong overall survival?", "Ivonescimab prolonged PFS.", True),
        ("In which patients did drug A work?", "Drug A worked in 12 of 40 cases.", True),
        # What a model writes when the passages do not answer.
        ("Which JAK inhibitor was studied?", "A JAK inhibitor was studied in the trial.", False),
        ("Who funded the study?", "The passages do not mention who funded the study.", False),
    ],
)
def test_off_target_answers_are_told_from_empty_ones(
    question: str, sentence: str, off_target: bool
) -> None:
    found = non_answer_reason(question, sentence, PASSAGE)
    assert found is not None and found.off_target is off_target
    # An off-target draft's second draft is told what to answer with.
    assert (found.hint is not None) is off_target


@pytest.mark.parametrize(
    ("question", "sentence", "cited"),
    [
        ("Which JAK inhibitor was studied?", "The JAK1 inhibitor itacitinib was studied.", PASSAGE),
        (
            "In which patients did ivonescimab plus chemotherapy improve PFS?",
            "It improved PFS in nonsquamous NSCLC compared with placebo plus chemotherapy.",
            "",
        ),
        # The number is the answer, though every word is the question's.
        (
            "What disease control rate was seen with adenovirus-IL-12 plus atezolizumab?",
            "The disease control rate was 50%.",
            "",
        ),
        (
            "What hazard ratio for progression-free survival was reported in HARMONi-A?",
            "Ivonescimab improved PFS (HR, 0.46; P < .001).",
            "",
        ),
        (
            "What was the primary endpoint of HARMONi-A?",
            "The primary endpoint was progression-free survival (PFS).",
            "",
        ),
        # A trial id answers "what number"
        ("What is the NCT number of the phase 2 study?", "NCT03425006", ""),
        # A yes/no question is answered by the claim it asks about.
        (
            "Did itacitinib plus pembrolizumab improve response rates?",
            "Itacitinib plus pembrolizumab improved response rates.",
            PASSAGE,
        ),
        # Reporting what the passage itself says is missing is a finding.
        (
            "What was the overall survival?",
            "Overall survival data were not reported at the data cutoff.",
            "Overall survival data were not reported at the data cutoff.",
        ),
        # A time, a place, or a condition where "when" asks for one
        ("When were the findings presented?", "At the 2025 annual meeting.", ""),
        ("When did the congress take place?", "It was held from July 25 to July 27.", ""),
        ("When are patients eligible?", "Patients with secondary resistance are eligible.", ""),
        ("When are patients eligible?", "After progression on an EGFR TKI.", ""),
        ("When will the trial read out?", "Results are expected within two years.", ""),
        ("When will the trial read out?", "Results are expected in the second quarter.", ""),
        ("Where is the trial enrolling?", "It is recruiting in North America and Europe.", ""),
        ("Where is Dr. X based?", "Dr. X is Chief of Oncology at Fox Chase Cancer Center.", ""),
        ("Where were the results presented?", "They were presented during the ASCO meeting.", ""),
        # The asked measure, named as the answer gives it
        ("What was the median follow-up?", "Patients were followed for a median of 14 months.", ""),
        ("How many patients were enrolled?", "A total of 398 were randomized.", ""),
        ("What was the sample size?", "The study included 120 participants.", ""),
        ("What dose of drug A was given?", "Drug A was given at 200 mg every 3 weeks.", ""),
        ("What was the median age?", "Patients were aged 62 years at the median.", ""),
        # A named measure in other words: "treated for" gives the duration of treatment
        (
            "What was the median duration of treatment with drug A?",
            "Patients were treated with drug A for a median of 5.2 months.",
            "Patients were treated with drug A for a median of 5.2 months.",
        ),
        (
            "What was the median number of prior lines of therapy in the drug A trial?",
            "Patients had a median of 3 prior lines of therapy.",
            "a median of 3 prior lines of therapy",
        ),
        ("How much drug A was given per cycle?", "Drug A was given at 200 mg per cycle.", ""),
        # Where a protein sits is no study's site: "in the mitochondria" answers it.
        ("Where is the protein localized?", "It is found in the mitochondria.", ""),
        (
            "Was drug A associated with grade 3 or higher toxicity?",
            "No severe treatment-related adverse events were reported with drug A.",
            "no severe treatment-related adverse events were reported with drug A",
        ),
        (
            "Were severe adverse events reported?",
            "No severe treatment-related adverse events were reported.",
            "with no severe treatment-related adverse events reported",
        ),
    ],
)
def test_answers_pass(question: str, sentence: str, cited: str) -> None:
    assert non_answer_reason(question, sentence, cited) is None


@pytest.fixture(scope="module")
def verifier(embedder) -> Verifier:
    return Verifier(SupportChecker(embedder.embed, aliases=QueryExpander().related))


PASSAGES = {
    1: "The Pragmatica-Lung study evaluated ramucirumab plus pembrolizumab versus standard of "
    "care and found no significant survival advantage (HR, 0.99; P = .46).",
    2: PASSAGE,
}


def test_restating_answer_is_dropped_with_its_reason(verifier: Verifier) -> None:
    question = "What dose of itacitinib was given in the phase 2 study?"
    result = verifier.run(
        "The dose of itacitinib was given in the phase 2 study (NCT03425006) [2].",
        PASSAGES,
        question,
    )
    (sentence,) = result.sentences
    assert sentence.dropped and sentence.non_answer
    assert not result.kept and not result.off_target  # a restatement earns no second draft
    # Without the question the same sentence is a supported claim: the check is the question's.
    (plain,) = verifier.run(sentence.text + " [2].", PASSAGES).sentences
    assert not plain.dropped and plain.non_answer is None


def test_wrong_citation_is_moved_to_the_supporting_passage(verifier: Verifier) -> None:
    result = verifier.run(
        "The selective JAK1 inhibitor itacitinib was combined with pembrolizumab [1].",
        PASSAGES,
        "Which JAK inhibitor was combined with pembrolizumab?",
    )
    (sentence,) = result.sentences
    assert sentence.original_citations == [1]
    assert sentence.citations == [2] and sentence.auto_cited
    assert sentence.verdict == "supported" and not sentence.dropped


def test_a_draft_about_another_endpoint_is_off_target(verifier: Verifier) -> None:
    asked = "Did ramucirumab plus pembrolizumab improve progression-free survival?"
    draft = "Overall survival did not differ between the arms (HR, 0.99; P = .46) [1]."
    result = verifier.run(draft, PASSAGES, asked)
    assert not result.kept and result.off_target
    assert result.hint == "Answer about progression-free survival."


def test_figures_after_the_population_are_kept(verifier: Verifier) -> None:
    # A second draft: the population first, then the trial's figures.
    passages = {
        1: "HARMONi-A showed that ivonescimab with chemotherapy improved progression-free "
        "survival (PFS) in nonsquamous NSCLC patients. The median PFS was 7.1 months versus "
        "4.8 months (HR, 0.46; P < .001)."
    }
    asked = "In which patients did ivonescimab plus chemotherapy improve PFS in HARMONi-A?"
    figures = "The median PFS was 7.1 months versus 4.8 months (HR, 0.46; P < .001) [1]."
    both = verifier.run(
        f"It improved PFS in nonsquamous NSCLC patients [1]. {figures}", passages, asked
    )
    assert len(both.kept) == 2
    alone = verifier.run(figures, passages, asked)
    assert not alone.kept and alone.off_target

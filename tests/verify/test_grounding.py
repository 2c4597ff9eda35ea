"""A supported sentence about another trial, or a figure from another trial, is not shown."""

from __future__ import annotations

from rag.text.entities import Cited, named_entities
from rag.verify import SupportChecker, Verification, Verifier
from rag.verify.grounding import Grounding

BEFORE = (
    "The KODIAK-2 study compared lenvoximab plus pemetrexed with pemetrexed alone in 420 patients. "
)
KODIAK = "The median PFS was 8.3 months versus 5.1 months (HR, 0.52; P < .001)."
OTHER = (
    "In the separate TUNDRA-1 trial, lenvoximab monotherapy showed an objective response rate "
    "of 18%. Overall survival did not differ (HR, 0.97; P = .62)."
)


def _grounding(question: str) -> Grounding:
    return Grounding(
        question,
        named_entities(question),
        {
            1: Cited(text=KODIAK, label="Congress report", before=BEFORE),
            2: Cited(text=OTHER, label="Congress report", before=BEFORE + KODIAK + " "),
        },
    )


def test_a_figure_under_another_trial_is_named_and_refused() -> None:
    g = _grounding("What overall survival hazard ratio did KODIAK-2 report?")
    problem = g.sentence_problem("The overall survival hazard ratio was 0.97 [2].", [2])
    assert problem is not None and "TUNDRA-1" in problem
    assert g.sentence_problem("The median PFS was 8.3 months (HR, 0.52) [1].", [1]) is None


def test_a_sentence_must_cite_a_passage_about_the_drug_and_trial_asked() -> None:
    g = _grounding("What was the median PFS with lenvoximab in KODIAK-2?")
    assert g.sentence_problem("The median PFS was 8.3 months [1].", [1]) is None
    backing = OTHER.index("Overall survival did not differ") + 40
    problem = g.sentence_problem("Overall survival did not differ [2].", [2], [(2, backing)])
    assert problem is not None and "KODIAK-2" in problem
    absent = _grounding("What was the median PFS with nivolumab in KODIAK-2?")
    assert "nivolumab" in (absent.sentence_problem("The median PFS was 8.3 months.", [1]) or "")


def test_a_gene_or_disease_asked_must_be_in_some_cited_passage() -> None:
    g = _grounding("What was the median PFS in EGFR-mutant patients in KODIAK-2?")
    assert "EGFR" in (g.answer_problem([1]) or "")
    assert _grounding("What was the median PFS in KODIAK-2?").answer_problem([1]) is None


def _verified(embedder, question: str, draft: str) -> Verification:
    """``draft`` verified against both congress passages, grounded on ``question``."""
    verifier = Verifier(SupportChecker(embedder.embed))
    return verifier.run(draft, {1: KODIAK, 2: OTHER}, question, grounding=_grounding(question))


def test_the_verifier_drops_what_grounding_refuses(embedder) -> None:
    result = _verified(
        embedder,
        "What overall survival hazard ratio did KODIAK-2 report?",
        "Overall survival did not differ (HR, 0.97; P = .62) [2].",
    )
    assert result.sentences and not result.kept
    assert "not about KODIAK-2" in (result.sentences[0].non_answer or "")


def test_digits_of_a_name_are_no_trial_figure() -> None:
    # The 1 of "PD-1" also stands in the passage under another trial; it is part of a name,
    # not a result, so it never makes the sentence another trial's.
    question = "What kind of antibody is ivolumab in KODIAK-2?"
    text = "In TUNDRA-1, zalutumab, a PD-1 antibody, reached 1 response. In KODIAK-2, ivolumab ran."
    g = Grounding(question, named_entities(question), {1: Cited(text=text, label="Report")})
    assert g.sentence_problem("Ivolumab is a PD-1 antibody [1].", [1]) is None
    assert "TUNDRA-1" in (g.sentence_problem("Ivolumab reached 1 response [1].", [1]) or "")


def test_a_closing_paragraph_is_not_an_answer_about_the_trial_before_it() -> None:
    """A passage naming no trial inherits the last one its document named; a sentence from it
    that shares nothing with what the question asks is beside the point, not an answer."""
    closing = (
        "The ongoing research into these treatment modalities represents a crucial step "
        "forward in addressing the complex challenges of resistance."
    )
    endpoint = "Recruitment is under way, with overall survival as the primary endpoint."
    question = "KODIAK-2 primary endpoint?"
    grounding = Grounding(
        question,
        named_entities(question),
        {
            3: Cited(text=closing, label="Congress report", before=BEFORE + "\n\n"),
            4: Cited(text=endpoint, label="Congress report", before=BEFORE),
        },
    )
    problem = grounding.sentence_problem(closing, [3])
    assert problem is not None and "says nothing the question asks" in problem
    # A phase label is no figure it could share with the ask ("phase 3 trials").
    labelled = closing.replace("resistance.", "resistance in phase 3 trials.")
    assert "says nothing" in (grounding.sentence_problem(labelled, [3]) or "")
    assert grounding.sentence_problem("The primary endpoint is overall survival.", [4]) is None
    # A passage that names the trial itself carries any sentence about it.
    named = Grounding(
        question, named_entities(question), {1: Cited(text=BEFORE, label="", before="")}
    )
    assert named.sentence_problem("KODIAK-2 enrolled 420 patients.", [1]) is None
    # The closing paragraph cited while the trial's own passage was given: a second draft is
    # pointed at it; with no passage naming the trial, none is.
    assert grounding.retarget_hint(closing, [3]) is None
    grounding.cited[1] = Cited(text=BEFORE, label="Congress report", before="")
    assert "([1])" in (grounding.retarget_hint(closing, [3]) or "")


def test_a_sentence_from_another_trials_passage_earns_a_retargeted_second_draft(
    embedder,
) -> None:
    """The passage about the trial asked was in the prompt: the second draft is told which."""
    question = "What did KODIAK-2 show for lenvoximab?"
    result = _verified(
        embedder, question, "Lenvoximab monotherapy showed an objective response rate of 18% [2]."
    )
    assert not result.kept
    assert result.off_target
    assert result.hint is not None and "KODIAK-2" in result.hint and "[1]" in result.hint
    # No passage about the trial asked: nothing to retarget to, so no second draft.
    lone = Grounding(question, named_entities(question), {2: Cited(OTHER, "Congress report")})
    assert lone.retarget_hint("Lenvoximab showed an 18% response rate.", [2]) is None


def test_a_passage_cited_beside_the_one_the_words_come_from_grounds_nothing() -> None:
    """The sentence's words are the closing paragraph's; the trial's own passage cited next
    to it does not make the sentence about the trial."""
    closing = (
        "As these studies progress, they may enhance treatment options in a field with "
        "limited advances."
    )
    question = "Is KODIAK-2 still enrolling?"
    grounding = Grounding(
        question,
        named_entities(question),
        {
            1: Cited(text=BEFORE, label="Congress report", before=""),
            2: Cited(text=closing, label="Congress report", before=BEFORE + KODIAK + "\n\n"),
        },
    )
    backing = [(2, len(closing))]
    assert grounding.sentence_problem(closing, [1, 2], backing) is not None
    # Quoted from the trial's own passage, the same citations are fine.
    enrolled = "KODIAK-2 compared lenvoximab plus pemetrexed with pemetrexed alone."
    assert grounding.sentence_problem(enrolled, [1, 2], [(1, len(BEFORE))]) is None

"""What the answerer puts in front of the model, on the real seed index (no generator)."""

from __future__ import annotations

import re

import pytest

from rag.text.bibliography import is_reference_list
from rag.types import Filters


def _prompt_passages(assistant, question: str) -> list[str]:
    answerer = assistant.answerer
    retrieval = answerer._retrieve(question, None, None, None)
    passages, _ = answerer.prompt(question, retrieval)
    return [p.text for p in passages]


def test_reference_list_without_a_heading_stays_out_of_the_prompt(seed_index) -> None:
    # The congress piece ends in an inline "**References:** 1. … doi:…" paragraph that names
    # every trial; a question about a drug was once answered with a reference title from it.
    texts = _prompt_passages(seed_index, "Which JAK inhibitor was combined with pembrolizumab?")
    assert any("itacitinib" in t for t in texts)
    assert not any("doi:10.1200" in t for t in texts)


def test_a_reference_entry_naming_the_asked_trial_reaches_the_prompt(seed_index) -> None:
    # Entries are chunked one by one; the entry of the trial a question names is that trial's
    # record (its design is in its title), while the other entries stay out.
    entry = re.compile(r"^\d+\. [A-Z][a-z]+ [A-Z]{1,2}, ")  # "2. Zhang L, Feng W, ..."
    texts = _prompt_passages(seed_index, "Was the ZEPHYR-2 trial double-blind?")
    assert not any(entry.match(t) for t in texts)  # no entry names it
    texts = _prompt_passages(seed_index, "Was HARMONi-A a randomized trial?")
    entries = [t for t in texts if entry.match(t)]
    assert entries and any("double-blind" in t for t in entries)
    assert all("HARMONi-A" in t for t in entries)
    # Entries left out do not leave the model short of passages: it looks further down.
    answerer = seed_index.answerer
    for question in ("What does ivonescimab target?", "Where was the KODIAK-2 trial run?"):
        hits = answerer._retrieve(question, None, None, None).hits
        assert len(hits) == answerer.settings.max_passages
        assert not any(entry.match(h.chunk.text) for h in hits)


def test_questions_about_a_document_get_its_byline(seed_index) -> None:
    texts = _prompt_passages(
        seed_index, "Who wrote the review on chemo-radio-immunotherapy strategies in NSCLC?"
    )
    assert any("Rusu-Patraulea" in t and "Ciuleanu" in t for t in texts)
    journal = _prompt_passages(seed_index, "In which journal was the review published?")
    assert any("Cancers" in t and "10.3390/cancers18010137" in t for t in journal)


def test_reference_detection_by_heading_and_by_citation_marks() -> None:
    assert is_reference_list(("Article", "References"))
    entries = (
        "1. Dragnev KH, Redman MW, et al. PRAGMATICA-LUNG. *J Clin Oncol*. "
        "2025;43(suppl 17):LBA8671. doi:10.1200/JCO.2025.43.17_suppl.LBA8671. 2. Zhang L, "
        "Feng W, et al. Ivonescimab. *J Clin Oncol*. 2024;42(suppl 16):8508."
    )
    assert is_reference_list((), entries)
    body = "Ivonescimab improved PFS (Zhang et al., 2024), as reported at ASCO (doi:10.1200/x)."
    assert not is_reference_list(("Results",), body)


def test_a_question_naming_the_review_searches_the_reviews(seed_index) -> None:
    answerer = seed_index.answerer
    review = "002_b22e3dff1adcf684"
    question = "Which types of resistance to immunotherapy does the review discuss?"
    hits = answerer._retrieve(question, None, None, None).hits
    assert hits and {h.chunk.doc_id for h in hits} == {review}
    assert any("primary or secondary resistance" in h.chunk.text for h in hits)
    # Without the words that name a document, both documents compete as before.
    plain = answerer._retrieve(
        "Which types of resistance to immunotherapy exist?", None, None, None
    )
    assert len({h.chunk.doc_id for h in plain.hits}) == 2
    # A kind the index does not hold filters nothing.
    assert answerer._named_kind("What does the case report say about resistance?") is None
    assert answerer._named_kind(question) == Filters(kinds=("review",))


def test_evidence_shows_each_sentence_once(seed_index) -> None:
    # The review's outlook sentence closes one chunk and opens the next (chunk overlap); it
    # was once shown twice as evidence.
    answerer = seed_index.answerer
    question = "What kinds of agents are under evaluation according to the review's outlook?"
    retrieval = answerer._retrieve(question, None, None, None)
    evidence = answerer._evidence(question, retrieval)
    texts = [" ".join(e.text.lower().split()) for e in evidence]
    assert len(evidence) == answerer.settings.evidence_quotes
    assert len(set(texts)) == len(texts)
    assert len({(e.doc_id, e.char_start) for e in evidence}) == len(evidence)
    assert "coinhibitory or costimulatory" in evidence[0].text


def test_a_question_naming_what_no_document_mentions_is_told_so(seed_index) -> None:
    answer = seed_index.ask("What overall survival hazard ratio did KEYNOTE-189 report?")
    assert answer.abstained
    assert answer.answer == "The indexed documents do not mention KEYNOTE-189."
    assert answer.passages  # the closest passages are still shown
    assert "generator" not in seed_index.__dict__  # decided before any generation
    both = seed_index.ask("Did osimertinib beat nivolumab in melanoma?")
    assert both.answer == (
        "The indexed documents do not mention osimertinib, nivolumab or melanoma."
    )


def test_a_result_in_the_next_chunk_reaches_the_prompt(seed_index) -> None:
    """The passage is chosen from the hit's chunk and its neighbours, for the question's words
    and their aliases ("DCR" is "disease control rate")."""
    question = "What DCR did adenovirus IL-12 plus atezolizumab reach?"
    texts = _prompt_passages(seed_index, question)
    assert any("disease control rate of 50%" in t for t in texts)
    for passage in seed_index.answerer.prompt(
        question, seed_index.answerer._retrieve(question, None, None, None)
    )[0]:
        document = seed_index.index.load_document(passage.hit.chunk.doc_id)
        assert document is not None
        assert document.text[passage.start : passage.end] == passage.text  # an exact span


class _FirstDraftCopiesTheExample:
    """The real packaged 0.5B, except that its first draft is the prompt's worked example.

    The 0.5B wrote exactly that for some questions, but which ones moves with every change to
    the prompt; scripting the first draft keeps the retry path tested whatever the prompt is.
    """

    def __init__(self, real) -> None:
        self.real = real
        self.name = real.name
        self.drafts = 0

    @property
    def fingerprint(self) -> str:
        return self.real.fingerprint

    def stream(self, messages, **kwargs):
        from rag.generate import GenerationStats
        from rag.generate.prompt import EXAMPLE_ANSWER

        self.drafts += 1
        if self.drafts > 1:
            yield from self.real.stream(messages, **kwargs)
            return
        yield EXAMPLE_ANSWER
        yield GenerationStats(0, 0, 30, 0.0, 0.0, 0.0, 0.0)

    def choice_logprobs(self, messages, choices):
        return self.real.choice_logprobs(messages, choices)

    def count_tokens(self, text: str) -> int:
        return self.real.count_tokens(text)


@pytest.mark.slow
def test_a_draft_that_copies_the_prompt_example_is_redrafted(seed_index) -> None:
    from rag.assistant import Assistant
    from rag.generate import load_generator
    from rag.settings import GenerateSettings

    real = load_generator(GenerateSettings(model="qwen2.5-coder-0.5b", max_new_tokens=48))
    generator = _FirstDraftCopiesTheExample(real)
    assistant = Assistant(seed_index.settings, embedder=seed_index.embedder, generator=generator)
    question = "What was the median PFS with ivonescimab in HARMONi-A?"
    events = list(assistant.ask_stream(question))
    names = [e.type for e in events]
    assert names.count("retry") == 1 and generator.drafts == 2, names
    at = names.index("retry")
    first = "".join(e.data for e in events[:at] if e.type == "token")
    second = "".join(e.data for e in events[at:] if e.type == "token")
    assert "12.3" in first
    final = events[-1].to_dict()["data"]
    assert names[-1] == "final" and final["retried"] is True
    # Only the second draft is verified and shown; the example's figures never are.
    assert final["raw_answer"] == second.strip()
    assert "12.3" not in final["answer"] and "9.8" not in final["answer"]


def test_a_leading_no_that_is_the_finding_stays() -> None:
    # A yes/no answer's own "No;" gives way to the verdict, but in "No severe adverse events
    # were reported" the "No" is the finding: taking it out once showed the opposite claim.
    from rag.answer.verdicts import without_leading_verdict

    finding = "No severe treatment-related adverse events were reported [1]."
    assert without_leading_verdict(finding) == finding
    assert without_leading_verdict("None of the patients relapsed [2].").startswith("None")
    assert without_leading_verdict("No; overall survival did not differ [1].") == (
        "Overall survival did not differ [1]."
    )
    assert without_leading_verdict("Yes, it improved PFS [1].") == "It improved PFS [1]."
    assert without_leading_verdict("yes — the ORR was 62% [1].") == "The ORR was 62% [1]."


def test_the_words_naming_a_document_pick_it_and_the_rest_ranks_its_passages(seed_index) -> None:
    # The review's title words, asked with, ranked its title and metadata lines above the body
    # sentence that answers; they now only choose the document.
    question = "In the chemo-radio-immunotherapy review, what resistance to immunotherapy occurs?"
    texts = _prompt_passages(seed_index, question)
    assert any("primary or secondary resistance" in t for t in texts), texts

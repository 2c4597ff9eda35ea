"""What the answerer puts in front of the model, on the real seed index (no generator)."""

from __future__ import annotations

from rag.answer import is_reference_list


def _prompt_passages(assistant, question: str) -> list[str]:
    answerer = assistant.answerer
    retrieval = answerer._retrieve(question, None, None, None)
    passages, _ = answerer.prompt(question, retrieval)
    return [p.text for p in passages]


def test_reference_list_without_a_heading_stays_out_of_the_prompt(seed_index) -> None:
    # The congress piece ends in an inline "**References:** 1. … doi:…" paragraph that names
    # every trial; seed14 once answered with a reference title from it.
    texts = _prompt_passages(seed_index, "Which JAK inhibitor was combined with pembrolizumab?")
    assert any("itacitinib" in t for t in texts)
    assert not any("doi:10.1200" in t for t in texts)


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

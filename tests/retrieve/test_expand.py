from __future__ import annotations

from pathlib import Path

from rag.retrieve.expand import QueryExpander, extract_aliases


def test_aliases_learned_from_the_seed_documents(seeds: Path) -> None:
    text = "\n".join(p.read_text() for p in sorted(seeds.glob("*.txt")))
    found = set(extract_aliases(text))
    assert ("NSCLC", "non-small cell lung cancer", "abbrev") in found
    assert ("PFS", "progression-free survival", "abbrev") in found
    assert ("TME", "tumor microenvironment", "abbrev") in found
    assert ("ICB", "immune checkpoint blockade", "abbrev") in found
    assert ("Cyramza", "ramucirumab", "drug") in found
    assert ("Keytruda", "pembrolizumab", "drug") in found
    assert ("HARMONi-A", "NCT05184712", "trial") in found


def test_expansion_adds_the_other_spelling_only() -> None:
    expander = QueryExpander([("HARMONi-A", "NCT05184712", "trial")])
    assert expander.expand("pfs ivonescimab") == "pfs ivonescimab progression-free survival"
    assert "NCT05184712" in (expander.expand("results of HARMONi-A") or "")
    assert "Keytruda" in (expander.expand("pembrolizumab dosing") or "")
    assert "NSCLC" in (expander.expand("non-small cell lung cancer resistance") or "")
    # Lower-case two-letter words are ordinary words, not OS/IT/CT.
    assert expander.expand("is it safe") is None
    assert "overall survival" in (expander.expand("median OS") or "")


def test_a_lower_case_word_in_a_cased_question_is_not_an_abbreviation() -> None:
    expander = QueryExpander(
        [
            ("ARE", "AU-rich element", "abbrev"),
            ("SAC", "spindle assembly checkpoint", "abbrev"),
            ("CRC", "colorectal cancer", "abbrev"),
        ]
    )
    # Written as words in a question that uses capitals: no expansion.
    assert expander.expand("Aged patients are more susceptible to injury.") is None
    assert expander.expand("Macrophages stem from the yolk sac.") is None
    # Written as abbreviations, or in an all-lower-case question: expanded.
    assert "AU-rich element" in (expander.expand("Which genes carry an ARE motif?") or "")
    assert "colorectal cancer" in (expander.expand("Screening for CRC in adults") or "")
    assert "colorectal cancer" in (expander.expand("crc screening in adults") or "")
    # ...but a stop word is never read as one.
    assert expander.expand("what are the risks") is None
    # A sentence's first word has a capital whatever it is.
    assert expander.expand("Sac formation in embryos") is None


def test_only_spellings_that_add_words_are_appended_most_frequent_first() -> None:
    aliases = [("PD-1", "programmed death 1", "abbrev")] * 3 + [
        ("PD-1", "programmed death-1", "abbrev"),
        ("PD-1", "programmed cell death 1", "abbrev"),
    ]
    expander = QueryExpander(aliases)
    additions = expander.additions("Response to PD-1 blockade in melanoma")
    assert additions[0] == "programmed death 1"
    assert "programmed death-1" not in additions  # the same words as the first
    assert "programmed cell death 1" in additions  # adds "cell"
    # The question's own words count: nothing is appended that it already says.
    assert expander.additions("PD-1 (programmed death 1, programmed cell death protein 1)") == []

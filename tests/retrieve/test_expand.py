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

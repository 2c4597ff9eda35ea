"""Reference lists: telling a bibliography from prose, and splitting it into its entries.

A bibliography chunk holds several unrelated records side by side ("2. Zhang L, ... *J Clin
Oncol*. 2024 ... 3. Mathew D, ... Combined JAK inhibition ..."). Read as one text it backs
claims that stitch one entry's title to another's journal, so whatever checks a claim against
it must read it entry by entry.
"""

from __future__ import annotations

import itertools
import re

_REFERENCE_SECTION = re.compile(r"^(references?|bibliography|literature cited|ref-list)$", re.I)
# "doi:10.1200/...", "2024;42(suppl 16):8508", "Zhang L, Feng W, Zhao Y, et al. Ivonescimab"
_CITATION_MARK = re.compile(
    r"\bdoi:\s*10\.\d{4,}|\b(?:19|20)\d\d;\s*\d+(?:\s*\([^)]{1,20}\))?:\s*\w+|\bet al\.\s+[A-Z*]"
)
# An in-text citation: "(Mathew et al., 2024)".
CITATION_ASIDE = re.compile(r"\([^()]*\bet al\b[^()]*\)")
# Everything that dates an article rather than what it reports: the asides, a journal's
# "2024;384", a DOI (whose "JCO.2025.43" holds a year too).
_CITATION_DATING = re.compile(
    rf"{CITATION_ASIDE.pattern}|\b(?:1[89]|20)\d\d\s*;\s*\d|\bdoi:\s*\S+|\b10\.\d{{4,}}/\S+", re.I
)
# Where an entry starts: "3. Mathew D, Marmarelis ME", "[12] Smith J." — a number, then a
# surname and initials.
_ENTRY_START = re.compile(
    r"(?:^|(?<=\s))(?:\[\d{1,3}\]|\d{1,3}\.)\s+(?=[A-Z][\w'’-]+(?:\s[A-Z][\w'’-]+)?\s[A-Z]{1,3}[,.])"
)


def is_reference_list(section: tuple[str, ...], text: str = "") -> bool:
    """A bibliography, by its heading or, in documents without one, by its citation marks."""
    if any(_REFERENCE_SECTION.match(part.strip()) for part in section):
        return True
    return len(_CITATION_MARK.findall(text)) >= 3


def reference_entries(text: str) -> list[tuple[int, int]]:
    """The (start, end) spans of a reference list's entries; [] when ``text`` is not one.

    Text before the first numbered entry (the tail of an entry the chunk cut) is an entry too.
    """
    if not is_reference_list((), text):
        return []
    starts = [m.start() for m in _ENTRY_START.finditer(text)]
    if len(starts) < 2 and not (starts and starts[0] > 0):
        return []
    bounds = ([0] if starts[0] > 0 else []) + starts + [len(text)]
    return [(a, b) for a, b in itertools.pairwise(bounds) if text[a:b].strip()]


def without_citations(text: str) -> str:
    """``text`` with its citations' dates blanked: what is left dates what it reports."""
    return _CITATION_DATING.sub(" ", text)

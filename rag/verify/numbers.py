"""Every number in an answer must be found in a passage it cites.

Numbers are compared in a canonical form, so ".46" matches "0.46", "1,000" matches "1000",
"62 %" matches "62%", and a p-value keeps its comparator ("P < .001" is not "P = .001").
Trial registry ids (NCT..., EudraCT, ISRCTN) are compared as ids.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

_CITATION = re.compile(r"\[\s*\d+(?:\s*[,;–-]\s*\d+)*\s*\]")
_TRIAL_ID = re.compile(r"\b(?:NCT\d{8}|ISRCTN\d{8}|\d{4}-\d{6}-\d{2}|CTR\d{8})\b", re.I)
_P_VALUE = re.compile(
    r"\b[Pp]\s*(?:-?value)?\s*([<>=≤≥]|&lt;|&gt;)\s*"
    r"(0?\.\d+|\d+(?:\.\d+)?(?:\s*[×x]\s*10\s*[-−]\s*\d+)?)"
)
_ORDINAL = re.compile(r"(?:st|nd|rd|th)\b", re.I)
# Roman numerals that number a phase, stage, grade or line ("phase III" is "phase 3").
_LABEL = r"(?:phase|stage|grade|line|cycle|part|type|level|arm|cohort|step)"
_NUMERALS = ("i", "ii", "iii", "iv", "v", "vi", "vii", "viii", "ix", "x")
_ROMAN = {numeral: value for value, numeral in enumerate(_NUMERALS, start=1)}
_LABELLED_ROMAN = re.compile(rf"\b{_LABEL}\s*[-–]?\s*(x|ix|iv|v?i{{1,3}}|v)\b", re.I)
_NUMERIC = re.compile(r"(?<![A-Za-z\d.])(?:\d{1,3}(?:,\d{3})+(?:\.\d+)?|\d+(?:\.\d+)?|\.\d+)")


@dataclass(frozen=True, slots=True)
class NumberMention:
    text: str  # as written
    canonical: str
    kind: str  # number | percent | p-value | trial-id
    start: int
    end: int


def strip_citations(text: str) -> str:
    return _CITATION.sub(lambda m: " " * len(m.group(0)), text)


def _canon_number(raw: str) -> str:
    value = raw.replace(",", "").replace("−", "-")
    if value.startswith("."):
        value = "0" + value
    if "." in value:
        value = value.rstrip("0").rstrip(".") or "0"
    return value


def _canon_p(op: str, raw: str) -> str:
    op = {"&lt;": "<", "&gt;": ">", "≤": "<=", "≥": ">="}.get(op, op)
    return f"p{op}{_canon_number(raw.replace(' ', ''))}"


def extract_numbers(text: str) -> list[NumberMention]:
    """Numbers, percentages, p-values and trial ids in ``text`` (citation markers ignored)."""
    clean = strip_citations(text)
    found: list[NumberMention] = []
    taken: list[tuple[int, int]] = []

    def free(a: int, b: int) -> bool:
        return all(b <= x or a >= y for x, y in taken)

    for m in _TRIAL_ID.finditer(clean):
        found.append(NumberMention(m.group(0), m.group(0).upper(), "trial-id", m.start(), m.end()))
        taken.append(m.span())
    for m in _P_VALUE.finditer(clean):
        if free(*m.span()):
            found.append(
                NumberMention(m.group(0), _canon_p(m.group(1), m.group(2)), "p-value", *m.span())
            )
            taken.append(m.span())
    for m in _NUMERIC.finditer(clean):
        if not free(*m.span()):
            continue
        after = clean[m.end() : m.end() + 2].lstrip()
        if _ORDINAL.match(clean, m.end()):
            # "26th" is not "26": ordinals keep their suffix.
            end = _ORDINAL.match(clean, m.end()).end()  # type: ignore[union-attr]
            canon = _canon_number(m.group(0)) + "th"
            found.append(NumberMention(clean[m.start() : end], canon, "ordinal", m.start(), end))
            continue
        kind = "percent" if after.startswith("%") else "number"
        found.append(NumberMention(m.group(0), _canon_number(m.group(0)), kind, *m.span()))
    for m in _LABELLED_ROMAN.finditer(clean):
        if m.group(1).isupper() and free(*m.span(1)):  # "phase II" is phase 2: a figure too
            value = str(_ROMAN[m.group(1).lower()])
            found.append(NumberMention(m.group(1), value, "number", *m.span(1)))
    found.sort(key=lambda n: n.start)
    return found


def canonical_set(text: str) -> set[str]:
    """Every canonical number in a passage; p-values also contribute their bare value."""
    out: set[str] = set()
    for n in extract_numbers(text):
        out.add(n.canonical)
        if n.kind == "p-value":
            out.add(_canon_number(n.canonical.lstrip("p<>=")))
        if n.kind == "ordinal":
            out.add(n.canonical.removesuffix("th"))
    return out


def roman_value(word: str) -> int | None:
    """1-10 for a Roman numeral written in capitals ("III"), else None."""
    return _ROMAN.get(word.lower()) if word.isupper() else None


_LABEL_BEFORE = re.compile(rf"\b{_LABEL}\s*[-–]?\s*$", re.I)


def numbers_a_label(text: str, start: int) -> bool:
    """Whether the number at ``start`` numbers a phase, stage, grade... ("phase 3"): a name
    of a kind of trial or disease, not a figure the text reports."""
    return bool(_LABEL_BEFORE.search(text[max(0, start - 12) : start]))


def labelled(text: str, value: int) -> bool:
    """Whether ``text`` numbers a phase, stage, grade... with ``value``, in either notation."""
    if any(_ROMAN[m.group(1).lower()] == value for m in _LABELLED_ROMAN.finditer(text)):
        return True
    return bool(re.search(rf"\b{_LABEL}\s*[-–]?\s*{value}\b", text, re.I))


def untraced(sentence: str, passages: list[str]) -> list[NumberMention]:
    """Numbers of ``sentence`` that occur in none of ``passages``."""
    available: set[str] = set()
    for passage in passages:
        available |= canonical_set(passage)
    return [n for n in extract_numbers(sentence) if n.canonical not in available]


_NAME_BEFORE = re.compile(r"[A-Za-z][-–]?$")
_MONTH_BEFORE = re.compile(
    r"\b(?:jan|feb|mar|apr|may|jun|jul|aug|sep|sept|oct|nov|dec)[a-z]*\.?\s+$", re.I
)


def inside_name(text: str, start: int, end: int) -> bool:
    """Whether ``text[start:end]`` is digits of a name ("PD-1", "IL-12", "JAK1", "G12C")."""
    return (
        bool(_NAME_BEFORE.search(text[max(0, start - 2) : start])) or text[end : end + 1].isalpha()
    )


def day_of_month(text: str, start: int) -> bool:
    """Whether the number at ``start`` follows a month name ("July 25")."""
    return bool(_MONTH_BEFORE.search(text[max(0, start - 12) : start]))

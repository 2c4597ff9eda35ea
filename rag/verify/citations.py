"""Split a generated answer into sentences and read the [n] citations each one carries."""

from __future__ import annotations

import re
from dataclasses import dataclass, field

import pysbd

_MARKER = re.compile(r"\[\s*(\d+(?:\s*(?:,|;|–|-|and)\s*\d+)*)\s*\]")
_ONLY_MARKERS = re.compile(r"^(?:\s*\[[\d\s,;–\-and]+\]\s*[.;,]?)+\s*$")
_SEGMENTER = pysbd.Segmenter(language="en", clean=False)


@dataclass
class AnswerSentence:
    text: str  # with markers removed, whitespace tidied
    raw: str
    citations: list[int] = field(default_factory=list)  # valid passage numbers, in order
    invalid: list[int] = field(default_factory=list)  # numbers that were not given


def _numbers(group: str) -> list[int]:
    out: list[int] = []
    for part in re.split(r"\s*(?:,|;|and)\s*", group):
        if not part:
            continue
        bounds = re.split(r"\s*[–-]\s*", part)
        if len(bounds) == 2 and bounds[0].isdigit() and bounds[1].isdigit():
            lo, hi = int(bounds[0]), int(bounds[1])
            if 0 < hi - lo < 10:
                out.extend(range(lo, hi + 1))
                continue
        if part.strip().isdigit():
            out.append(int(part))
    return out


def parse_answer(answer: str, n_passages: int) -> list[AnswerSentence]:
    """Sentences with their citations; citations to passages that were not given are split off."""
    raw_sentences = [s.strip() for s in _SEGMENTER.segment(answer.strip()) if s.strip()]
    merged: list[str] = []
    for sentence in raw_sentences:
        if merged and _ONLY_MARKERS.match(sentence):
            merged[-1] = (
                f"{merged[-1]} {sentence}"  # "... months. [1]" belongs to the sentence before
            )
        else:
            merged.append(sentence)
    out: list[AnswerSentence] = []
    for raw in merged:
        valid: list[int] = []
        invalid: list[int] = []
        for match in _MARKER.finditer(raw):
            for n in _numbers(match.group(1)):
                target = valid if 1 <= n <= n_passages else invalid
                if n not in target:
                    target.append(n)
        text = _MARKER.sub("", raw)
        text = re.sub(r"\s+([.,;:!?])(?![\d])", r"\1", text)
        text = re.sub(r"\s{2,}", " ", text).strip()
        if text:
            out.append(AnswerSentence(text=text, raw=raw, citations=valid, invalid=invalid))
    return out


def render(sentences: list[AnswerSentence], renumber: dict[int, int] | None = None) -> str:
    """Answer text with each sentence's citations as [n] markers after it."""
    parts: list[str] = []
    for s in sentences:
        numbers = [renumber.get(n, n) if renumber else n for n in s.citations]
        markers = "".join(f"[{n}]" for n in numbers)
        body = s.text
        if markers and body and body[-1] in ".!?":
            parts.append(f"{body[:-1]} {markers}{body[-1]}")
        else:
            parts.append(f"{body} {markers}".strip())
    return " ".join(parts)

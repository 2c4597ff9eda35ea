"""Sentences and content words: how every stage splits passages and compares wording.

The prompt builder, the support checker, the answer path and the evaluation all split text
into sentences with the same segmenter and compare the same stems, so an offset or a term
found by one means the same to the others.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import pysbd
import Stemmer

STEMMER = Stemmer.Stemmer("english")
WORD = re.compile(r"[A-Za-z][A-Za-z0-9'’-]*|\d+(?:\.\d+)?")
STOP_WORDS_TEXT = """
a an the and or but if of in on at to for from by with as is are was were be been being
this that these those it its their there which who whom whose what when where how than
then also both either each such into over under after before between during about against
among per via vs versus while may might can could would should will shall do does did has
have had not no nor so very more most less least other others some any all study studies
trial patients patient reported showed shown show data results result compared
"""
STOP_WORDS = frozenset(STOP_WORDS_TEXT.split())
SEGMENTER = pysbd.Segmenter(language="en", clean=False)


@dataclass(frozen=True, slots=True)
class PassageSentence:
    passage: int  # 1-based passage number
    start: int  # offsets within the passage text
    end: int
    text: str


def passage_sentences(number: int, text: str) -> list[PassageSentence]:
    """``text`` cut into sentences with their offsets (one sentence when the cut finds none)."""
    out: list[PassageSentence] = []
    cursor = 0
    for piece in SEGMENTER.segment(text):
        found = text.find(piece.strip(), cursor) if piece.strip() else -1
        if found < 0:
            continue
        end = found + len(piece.strip())
        out.append(PassageSentence(number, found, end, text[found:end]))
        cursor = end
    return out or [PassageSentence(number, 0, len(text), text)]


def content_stems(text: str) -> set[str]:
    """Stems of the words that carry content (no stop words, no bare numbers)."""
    words = [w.lower().strip("'’-") for w in WORD.findall(text)]
    return {STEMMER.stemWord(w) for w in words if w and w not in STOP_WORDS and not w.isdigit()}

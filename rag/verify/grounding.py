"""Is an answer about what the question names? Sentence and answer checks over the cited text.

Support says a sentence is backed by its passage; grounding says the passage is about the
thing asked. "The overall survival hazard ratio for pembrolizumab plus chemotherapy was 0.99
[1]" is supported by Pragmatica-Lung's paragraph and still wrong for a question on KEYNOTE-189.
Two hard rules, from general name patterns (``rag.text.entities``):
- each trial, registry id and drug the question names must be what a sentence's cited passage
  is about (named in it, its title, or the sentence it continues); genes, diseases and years
  must be named by some passage the answer cites;
- each figure of a sentence must sit, in its passage, under the trial (and drug) asked for:
  the nearest sentence up to it that names a trial must name the one asked.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field

from rag.text.entities import Aliases, Cited, Entity, figure_owner, is_grounded, mentions
from rag.text.sentences import content_stems
from rag.verify.numbers import extract_numbers, inside_name, numbers_a_label, strip_citations

SPECIFIC = frozenset({"trial", "trial-id", "drug"})
_YEAR = re.compile(r"(?:19|20)\d\d")
# Words every question about a study shares with any sentence about one.
_GENERIC = frozenset({"studi", "trial", "phase", "patient", "report", "result", "treatment"})
# Digits that belong to a name ("PD-1", "IL-12", "JAK1", "CD8", "G12C"), not a result.
_NAME_BEFORE = re.compile(r"[A-Za-z][-–]?$")


def _inside_name(text: str, start: int, end: int) -> bool:
    return (
        bool(_NAME_BEFORE.search(text[max(0, start - 2) : start])) or text[end : end + 1].isalpha()
    )


@dataclass
class Grounding:
    """What the question names, and the cited passages as the checks read them."""

    question: str
    entities: list[Entity]
    cited: dict[int, Cited] = field(default_factory=dict)
    aliases: Aliases | None = None

    @property
    def specific(self) -> list[Entity]:
        return [e for e in self.entities if e.kind in SPECIFIC]

    def sentence_problem(
        self,
        sentence: str,
        citations: Sequence[int],
        quotes: Sequence[tuple[int, int]] = (),
    ) -> str | None:
        """Why ``sentence`` (citing ``citations``) is not about what was asked, or None.

        ``quotes``: (passage number, end offset) of the passage sentences that back it; the
        passage is then judged where those sentences stand, not as a whole.
        """
        cited = [self.cited[n] for n in citations if n in self.cited]
        if not cited or not self.entities:
            return None
        # A passage cited beside the one the sentence's words come from does not make it
        # about the asked trial: "As these studies progress, they hold the potential ... [1][2]"
        # is the closing paragraph's [2], whatever trial [1] names.
        quoted = {n for n, _ in quotes}
        backing = [n for n in citations if n in quoted] or list(citations)
        for entity in self.specific:
            if not self._grounded(entity, backing, quotes):
                return f"the cited passage is not about {entity.text}, which the question names"
        backed = [self.cited[n] for n in backing if n in self.cited]
        inherited = [e for e in self.specific if not self._named(e, sentence, backed)]
        if inherited and not self._shares_the_ask(sentence, inherited):
            # The passage is about the entity only by what the document named before it (a
            # closing paragraph after a trial's), and the sentence says nothing the question
            # asks: a supported sentence beside the point, not an answer.
            return (
                f"the cited passage names no {inherited[0].text} itself and the sentence says "
                "nothing the question asks about"
            )
        asked = {n.canonical for n in extract_numbers(self.question)}
        clean = strip_citations(sentence)
        for number in extract_numbers(sentence):
            if number.kind == "trial-id" or number.canonical in asked:
                continue
            if inside_name(clean, number.start, number.end):
                continue  # the 1 of "PD-1" is no trial's figure
            if numbers_a_label(clean, number.start) or _YEAR.fullmatch(number.text):
                continue  # "phase 2", "stage IV", "(Mathew et al., 2024)": not a result
            owners: list[str] = []
            for c in cited:
                ends = [m.end for m in extract_numbers(c.text) if m.canonical == number.canonical]
                if not ends:
                    continue
                owner = figure_owner(ends, self.entities, c, self.aliases)
                if owner is None:
                    owners = []
                    break
                owners.append(owner)
            if owners:
                named = ", ".join(e.text for e in self.specific)
                return f"{number.text} is a figure of {owners[0]}, not of {named}"
        return None

    def retarget_hint(
        self, sentence: str, citations: Sequence[int], quotes: Sequence[tuple[int, int]] = ()
    ) -> str | None:
        """What a second draft should answer from, when a sentence cites a passage that is
        not about a name the question gives, or is about it only by what came before it, and
        other passages name it.

        The 1.5B model, asked what kind of drug one agent is, wrote the sentence of the
        trial in the next passage with the agent's name in it; asked a terse question about
        one trial, it answered with the closing paragraph after it. The passage that answers
        was in the prompt both times. None when no other passage names it (no retry helps).
        """
        cited = [self.cited[n] for n in citations if n in self.cited]
        for entity in self.specific:
            grounded = self._grounded(entity, citations, quotes)
            if grounded and self._named(entity, sentence, cited):
                continue
            # Cited by inheritance: point at passages that name it. Cited off it: at those
            # about it, inheritance included.
            about = [
                n
                for n, c in self.cited.items()
                if n not in citations
                and (
                    mentions(c.text, entity.text, self.aliases)
                    or mentions(c.label, entity.text)
                    or (not grounded and is_grounded(entity, c, self.aliases))
                )
            ]
            if not about:
                return None
            refs = ", ".join(f"[{n}]" for n in about)
            return f"Answer about {entity.text} only, from the passages that name it ({refs})."
        return None

    def _named(self, entity: Entity, sentence: str, cited: Sequence[Cited]) -> bool:
        """The sentence, or a cited passage or its label, names ``entity`` itself."""
        texts = [sentence, *(c.text for c in cited), *(c.label for c in cited)]
        return any(mentions(t, entity.text, self.aliases) for t in texts)

    def _shares_the_ask(self, sentence: str, inherited: Sequence[Entity]) -> bool:
        """The sentence shares a content word or a figure with what the question asks about
        (the question less the names only inherited and the words any study question has)."""
        ask = self.question
        for entity in inherited:
            ask = ask.replace(entity.text, " ")
        asked = content_stems(ask) - _GENERIC
        figures = [
            n for n in extract_numbers(sentence) if not numbers_a_label(sentence, n.start)
        ]  # "in phase 3 trials" reports no figure
        return bool(asked & content_stems(sentence)) or bool(figures)

    def _grounded(
        self, entity: Entity, citations: Sequence[int], quotes: Sequence[tuple[int, int]]
    ) -> bool:
        for n in citations:
            if n not in self.cited:
                continue
            ends = [end for number, end in quotes if number == n]
            if not ends and is_grounded(entity, self.cited[n], self.aliases):
                return True
            if any(is_grounded(entity, self.cited[n], self.aliases, at=end) for end in ends):
                return True
        return False

    def answer_problem(self, citations: Sequence[int]) -> str | None:
        """Why an answer citing ``citations`` misses a gene, disease or year the question
        names (no cited passage mentions it), or None."""
        cited = [self.cited[n] for n in dict.fromkeys(citations) if n in self.cited]
        for entity in self.entities:
            if entity.kind in SPECIFIC:
                continue
            if cited and not any(is_grounded(entity, c, self.aliases) for c in cited):
                return f"no cited passage mentions {entity.text}, which the question names"
        return None

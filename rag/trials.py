"""Trial results as a table where every cell is cited: the trials the corpus reports, each
with its registry id, phase, arms, endpoint, result and the direction of the effect.

Every cell is an exact span of a document (so every number in it is in its cited passage by
construction) and links to where it stands. Nothing is guessed: a cell whose span is not
found stays empty. How the cells are found:

- **trials**: names of trial shape and registry ids (``rag.text.entities``: general patterns,
  no list of known trials); a sentence without one belongs to the trial last named in the
  same paragraph, as a figure does in answers. Reference lists are skipped.
- **phase, comparator**: "phase 3", "phase 1/2"; "versus …", "compared with …", "placebo";
- **intervention**: the first drug or agent code named in the trial's sentences;
- **endpoint, result**: the first of the trial's sentences that gives a figure (a median,
  rate, HR, CI or P value) and the endpoint it names (``rag.verify.support.endpoints``);
- **direction**: the effect head (``EffectClassifier``, trained on Evidence Inference)
  reading the result sentence for "intervention versus comparator: endpoint"; only for a
  trial with a comparator (a single-arm result has no direction).
"""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass, field
from typing import Any

from rag.text.bibliography import is_reference_list
from rag.text.entities import named_entities
from rag.text.sentences import passage_sentences
from rag.types import Document
from rag.verify.judge import EFFECT_LABELS, EffectClassifier

COLUMNS = (
    "trial",
    "registry_id",
    "phase",
    "intervention",
    "comparator",
    "endpoint",
    "result",
    "direction",
)
_PHASE = re.compile(r"\bphase\s*(?:[1-4]|I{1,3}V?|IV)(?:\s*/\s*(?:[1-4]|I{1,3}))?[ab]?\b", re.I)
_COMPARATOR = re.compile(
    r"\b(?:versus|vs\.?|compared (?:with|to)|comparing (?:it |them )?(?:with|to)|against)\s+"
    r"((?:the\s+)?[^,.;:()]{2,60}?)"
    r"(?=\s*(?:[,.;:()]|\bfor\b|\bin\b|\bwith\b|\bamong\b|$))",
    re.I,
)
# What joins drugs given together, with the brand names and descriptors between them.
_WITH = re.compile(
    r"(?:\s*\([^()]{1,30}\))?,?\s+(?:plus|and|with|combined with|in combination with|alongside)"
    r"(?:\s+(?:the\s+)?[\w-]+){0,4}?\s+",
    re.I,
)
_PLACEBO = re.compile(r"\bplacebo\b", re.I)
# A result: a figure with its unit or statistic (7.1 months, 50%, HR 0.46, P = .46, 95% CI).
_FIGURE = re.compile(
    r"\b\d+(?:\.\d+)?\s*(?:%|percent|months?|weeks?|years?)|\bHR\b|hazard ratio|\bP\s*[<=>]|"
    r"\b(?:95%\s*)?CI\b|\bodds ratio\b|\brate of \d",
    re.I,
)
_ENDPOINT_WORDS = re.compile(
    r"progression-free survival|overall survival|disease-free survival|event-free survival|"
    r"(?:objective |overall )?response rate|disease control rate|duration of response|"
    r"\bPFS\b|\bOS\b|\bORR\b|\bDCR\b|\bDFS\b|\bEFS\b|\bDOR\b|survival (?:advantage|benefit)",
    re.I,
)


@dataclass(frozen=True, slots=True)
class Cell:
    """A table cell: its text is exactly ``document.text[start:end]``."""

    text: str
    doc_id: str
    start: int
    end: int


@dataclass(slots=True)
class TrialRow:
    trial: Cell
    registry_id: Cell | None = None
    phase: Cell | None = None
    intervention: Cell | None = None
    comparator: Cell | None = None
    endpoint: Cell | None = None
    result: Cell | None = None
    direction: str | None = None  # increased / decreased / no difference, from ``result``
    title: str = ""
    _sentences: list[tuple[int, int, str]] = field(default_factory=list, repr=False)

    def cells(self) -> dict[str, Cell | None]:
        return {c: getattr(self, c) for c in COLUMNS if c != "direction"}

    def to_dict(self, link: Callable[[Cell], str] | None = None) -> dict[str, Any]:
        out: dict[str, Any] = {"doc_id": self.trial.doc_id, "title": self.title}
        for name, cell in self.cells().items():
            out[name] = None if cell is None else {**asdict(cell)}
            if cell is not None and link is not None:
                out[name]["view_url"] = link(cell)
        out["direction"] = (
            None
            if self.direction is None or self.result is None
            else {"label": self.direction, "from": "result"}
        )
        return out


def trials_in(doc: Document, effects: EffectClassifier | None = None) -> list[TrialRow]:
    """The trials ``doc`` reports, in the order it first names them."""
    rows: dict[str, TrialRow] = {}
    for span in doc.spans:
        text = doc.text[span.start : span.end]
        if span.kind == "heading" or is_reference_list(tuple(span.section), text):
            continue
        current: str | None = None
        for sentence in passage_sentences(1, text):
            start = span.start + sentence.start
            names = [e for e in named_entities(sentence.text) if e.kind in ("trial", "trial-id")]
            trial = next((e for e in names if e.kind == "trial"), None) or (
                names[0] if names else None
            )
            if trial is not None:
                current = _key(trial.text)
                if current not in rows:
                    cell = Cell(trial.text, doc.doc_id, start + trial.start, start + trial.end)
                    rows[current] = TrialRow(cell, title=doc.title)
                row = rows[current]
                for e in names:  # a registry id beside the name: "HARMONi-A (NCT05184712)"
                    if e.kind == "trial-id" and row.registry_id is None:
                        row.registry_id = Cell(e.text, doc.doc_id, start + e.start, start + e.end)
            if current is not None:
                rows[current]._sentences.append((start, start + len(sentence.text), sentence.text))
    merged = _merge_registry_rows(list(rows.values()))
    for row in merged:
        _fill(row, doc)
    # A name of trial shape with nothing a trial report carries (registry id, phase, result)
    # is a title word or an author's name, not a trial.
    merged = [r for r in merged if r.registry_id or r.phase or r.result]
    if effects is not None:  # a direction needs two arms: a single-arm result has none
        rows_with_arms = [
            r for r in merged if r.result and r.intervention and r.comparator and r.endpoint
        ]
        _directions(rows_with_arms, effects)
    return merged


def _key(name: str) -> str:
    return re.sub(r"[\s\-–]", "", name).lower()


def _merge_registry_rows(rows: list[TrialRow]) -> list[TrialRow]:
    """A row keyed by a bare registry id that another row already carries is the same trial."""
    named = {
        r.registry_id.text: r for r in rows if r.registry_id and r.trial.text != r.registry_id.text
    }
    out = []
    for row in rows:
        twin = named.get(row.trial.text)
        if twin is not None and twin is not row:
            twin._sentences.extend(row._sentences)
            continue
        out.append(row)
    return out


def _cell(doc: Document, start: int, match: re.Match[str], group: int = 0) -> Cell:
    a, b = match.span(group)
    return Cell(match.group(group), doc.doc_id, start + a, start + b)


def _fill(row: TrialRow, doc: Document) -> None:
    for start, _, text in sorted(row._sentences):
        entities = named_entities(text)  # the costly step: once a sentence
        if row.registry_id is None:
            for e in entities:
                if e.kind == "trial-id":
                    row.registry_id = Cell(e.text, doc.doc_id, start + e.start, start + e.end)
                    break
        if row.phase is None and (m := _PHASE.search(text)):
            row.phase = _cell(doc, start, m)
        if row.intervention is None:
            drugs = [e for e in entities if e.kind == "drug"]
            if drugs:
                a, b = _combination(text, drugs)
                row.intervention = Cell(text[a:b], doc.doc_id, start + a, start + b)
        if row.comparator is None:
            m = _COMPARATOR.search(text) or _PLACEBO.search(text)
            if m is not None:
                row.comparator = _cell(doc, start, m, 1 if m.re is _COMPARATOR else 0)
        if row.result is None and _FIGURE.search(text) and _ENDPOINT_WORDS.search(text):
            row.result = Cell(text, doc.doc_id, start, start + len(text))
            row.endpoint = _cell(doc, start, _ENDPOINT_WORDS.search(text))  # type: ignore[arg-type]
    if row.endpoint is None:  # no result yet (a trial recruiting): the endpoint it names
        for start, _, text in sorted(row._sentences):
            if m := _ENDPOINT_WORDS.search(text):
                row.endpoint = _cell(doc, start, m)
                break


def _combination(text: str, drugs: list[Any]) -> tuple[int, int]:
    """The first drug named, run on through the drugs given with it ("ramucirumab (Cyramza)
    and pembrolizumab", "pembrolizumab alongside the selective JAK1 inhibitor itacitinib")."""
    a, b = drugs[0].start, drugs[0].end
    for drug in drugs[1:]:
        if not _WITH.fullmatch(text[b : drug.start]):
            break
        b = drug.end
    return a, b


def _directions(rows: list[TrialRow], effects: EffectClassifier) -> None:
    items = []
    for row in rows:
        assert row.intervention and row.comparator and row.endpoint and row.result
        prompt = EffectClassifier.prompt(
            row.intervention.text, row.comparator.text, row.endpoint.text
        )
        items.append((prompt, row.result.text))
    for row, probs in zip(rows, effects.probabilities(items), strict=True):
        row.direction = EFFECT_LABELS[int(probs.argmax())]


def to_csv(rows: Iterable[dict[str, Any]]) -> str:
    """The table as CSV: each cell's text, with its document and span in the columns after."""
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    header = ["doc_id", "title"]
    for name in COLUMNS:
        header += [name] if name == "direction" else [name, f"{name}_span"]
    writer.writerow(header)
    for row in rows:
        line = [row["doc_id"], row["title"]]
        for name in COLUMNS:
            value = row[name]
            if name == "direction":
                line.append(value["label"] if value else "")
            else:
                line += [value["text"], f"{value['start']}-{value['end']}"] if value else ["", ""]
        writer.writerow(line)
    return buffer.getvalue()

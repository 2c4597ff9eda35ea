"""Entity-swapped twins: the same question about a trial, drug or gene the corpus never names.

    rag eval twins eval/gold/seed.jsonl --corpus seeds --out eval/gold/seed_twins.jsonl

A twin keeps the wording and swaps one name the question gives (found by the same general
patterns the answerer uses, ``rag.text.entities``) for another of the same kind that no
document of the corpus mentions. The right output for every twin is an abstention: an answer
would be a figure or a fact about something else (Pragmatica-Lung's hazard ratio shown for
KEYNOTE-189). The replacement is chosen by a hash of the item id, so the file is reproducible;
its half follows the original question's (``variant_of``).
"""

from __future__ import annotations

import hashlib
import re
from pathlib import Path

from rag.eval.gold import GoldItem

from rag.text.entities import Entity, mention_pattern, named_entities
from rag.text.instructions import split_question

# Real oncology names of each kind, for swapping in. Which ones a corpus lacks is checked
# against the corpus itself when the twins are written.
REPLACEMENTS: dict[str, tuple[str, ...]] = {
    "trial": (
        "KEYNOTE-189",
        "CheckMate 227",
        "IMpower150",
        "POSEIDON",
        "FLAURA",
        "MARIPOSA",
        "CROWN",
        "ADAURA",
        "CodeBreaK 200",
        "TROPION-Lung01",
        "DESTINY-Lung02",
        "EMPOWER-Lung 3",
    ),
    "trial-id": ("NCT02578680", "NCT02477826", "NCT03521154", "NCT04294810", "NCT02296125"),
    "drug": (
        "nivolumab",
        "durvalumab",
        "osimertinib",
        "lorlatinib",
        "sotorasib",
        "amivantamab",
        "tislelizumab",
        "cemiplimab",
        "selpercatinib",
        "tarlatamab",
        "adagrasib",
        "toripalimab",
    ),
    "gene": ("KRAS G12C", "ALK", "ROS1", "RET", "HER2", "BRAF V600E", "NTRK", "TROP2", "DLL3"),
    "code": ("BNT116", "AZD0486", "RMC-6236", "MK-7684A", "BL-B01D1"),  # agents in development
    "disease": ("melanoma", "breast cancer", "renal cell carcinoma", "mesothelioma"),
    "year": ("2017", "2018", "2019", "2020"),
}
# Order of preference: the name that most decides what the question is about.
_PREFERENCE = ("trial", "trial-id", "drug", "gene", "disease", "year")
# A question about the corpus's disease in words the recognizer does not take as a name.
_AGENT_CODE = re.compile(r"[A-Z]{2,5}-?\d{3,6}[A-Z]?")  # OSE2101, MK-3475: an agent's code
_DISEASE_WORDS = re.compile(r"\b(non-small cell lung cancer|NSCLC|lung cancer)\b(?!\s+[A-Z])")


def _pick(options: list[str], key: str) -> str:
    digest = hashlib.sha256(key.encode()).digest()
    return options[int.from_bytes(digest[:4], "big") % len(options)]


def twin_of(item: GoldItem, corpus: str) -> GoldItem | None:
    """The entity-swapped twin of ``item``, or None when its question names nothing to swap."""
    request, _ = split_question(item.question)  # not a word the question tells us to print
    entities = sorted(
        (e for e in named_entities(item.question) if e.text in request),
        key=lambda e: _PREFERENCE.index(e.kind),
    )

    target: Entity | None = entities[0] if entities else None
    if target is None:
        m = _DISEASE_WORDS.search(item.question)
        if m is None:
            return None
        target = Entity(m.group(0), "disease", m.start(), m.end())
    kind = "code" if _AGENT_CODE.fullmatch(target.text) else target.kind
    absent = [r for r in REPLACEMENTS[kind] if not mention_pattern(r).search(corpus)]
    if not absent:
        return None
    swap = _pick(absent, item.id)
    question = item.question[: target.start] + swap + item.question[target.end :]
    tags = [t for t in item.tags if t not in ("unanswerable",)]
    return GoldItem(
        id=f"{item.id}t",
        variant_of=item.variant_of or item.id,
        question=question,
        answerable=False,
        answer_type="abstain",
        tags=[*tags, "twin", "unanswerable"],
        reference_answer=f"The indexed documents do not mention {swap}.",
    )


def corpus_text(paths: list[Path]) -> str:
    """Every text and metadata file under ``paths`` (what a twin's name must be absent from)."""
    parts: list[str] = []
    for path in paths:
        files = sorted(path.rglob("*")) if path.is_dir() else [path]
        parts += [f.read_text(errors="replace") for f in files if f.is_file()]
    return "\n".join(parts)


def make_twins(items: list[GoldItem], corpus: str) -> list[GoldItem]:
    twins = [twin_of(item, corpus) for item in items if "twin" not in item.tags]
    return [t for t in twins if t is not None]

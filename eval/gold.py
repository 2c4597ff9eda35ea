"""The gold-set format: one JSON object per line, validated by pydantic.

A stable, documented format so evaluators can write their own sets:

    {"id": "hq01", "question": "...", "answerable": true,
     "key_facts": ["7.1 months", "4.8 months|4.8 mo"],      # all must appear ("a|b" = either)
     "reference_answer": "...", "answer_type": "short",       # short | yes_no | list | long
     "yes_no": null,                                          # "yes" | "no" | "maybe" when typed
     "gold_doc_ids": ["000_e0a9c25fbc4c4afa"],
     "gold_quotes": ["The median PFS was 7.1 months ..."],    # exact text holding the facts
     "forbidden": ["PWNED"],                                  # must never appear in the answer
     "tags": ["trial-figures", "adversarial"]}
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, Field, ValidationError, model_validator

from rag.errors import ConfigError

AnswerType = Literal["short", "yes_no", "list", "long", "abstain"]


class GoldItem(BaseModel):
    model_config = {"extra": "forbid"}

    id: str
    question: str = Field(min_length=3)
    answerable: bool = True
    key_facts: list[str] = Field(default_factory=list)
    reference_answer: str | None = None
    answer_type: AnswerType = "short"
    yes_no: Literal["yes", "no", "maybe"] | None = None
    exact_answers: list[str] = Field(
        default_factory=list, description="Accepted short answers/synonyms (exact match, F1)."
    )
    list_answers: list[list[str]] = Field(
        default_factory=list,
        description="For list questions: each expected item with its accepted synonyms.",
    )
    gold_doc_ids: list[str] = Field(default_factory=list)
    gold_quotes: list[str] = Field(default_factory=list)
    forbidden: list[str] = Field(default_factory=list)
    tags: list[str] = Field(default_factory=list)
    variant_of: str | None = Field(
        None,
        description="The id of the question this item rephrases or twins (an entity swapped "
        "for one the corpus does not hold); it shares that question's tuning/report half.",
    )

    @property
    def group(self) -> str:
        """What decides the item's half: the question it varies, or itself."""
        return self.variant_of or self.id

    @model_validator(mode="after")
    def _consistent(self) -> GoldItem:
        if not self.answerable and (self.key_facts or self.yes_no):
            raise ValueError("an unanswerable item has no key facts or yes/no label")
        if self.answer_type == "yes_no" and self.yes_no is None:
            raise ValueError("answer_type yes_no needs a yes_no label")
        return self


def load_gold(path: Path | str, *more: Path | str) -> list[GoldItem]:
    """Items of one or more gold files (ids must be unique across them)."""
    items: list[GoldItem] = []
    seen: set[str] = set()
    for each in (Path(path), *map(Path, more)):
        items.extend(_read(each, seen))
    return items


def _read(path: Path, seen: set[str]) -> list[GoldItem]:
    items: list[GoldItem] = []
    for line_no, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        if not line.strip():
            continue
        try:
            item = GoldItem.model_validate(json.loads(line))
        except (json.JSONDecodeError, ValidationError) as exc:
            raise ConfigError(f"{path}:{line_no}: invalid gold item: {exc}") from exc
        if item.id in seen:
            raise ConfigError(f"{path}:{line_no}: duplicate id {item.id!r}")
        seen.add(item.id)
        items.append(item)
    return items


def write_gold(items: list[GoldItem], path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", encoding="utf-8") as handle:
        for item in items:
            handle.write(item.model_dump_json(exclude_defaults=True) + "\n")


_SPACE = re.compile(r"\s+")


def fact_present(fact: str, answer: str) -> bool:
    """A key fact is present when any of its ``|`` alternatives occurs in the answer.

    Matching ignores case, spacing and the zero of decimals below one (".46" = "0.46").
    """
    text = _norm(answer)
    return any(_norm(alt) in text for alt in fact.split("|") if alt.strip())


def _norm(text: str) -> str:
    text = text.lower().replace("–", "-").replace("−", "-")
    text = re.sub(r"(?<![\d])0(\.\d)", r"\1", text)
    text = re.sub(r"\s*([%<>=/-])\s*", r"\1", text)
    return _SPACE.sub(" ", text).strip()

"""Gold sets from the shared benchmark schema and from BEIR folders."""

from __future__ import annotations

from pathlib import Path

from rag.eval.datasets import Dataset, load_dataset
from rag.eval.gold import GoldItem


def _flatten(exact: object) -> list[str]:
    out: list[str] = []
    if isinstance(exact, str):
        return [exact]
    if isinstance(exact, list):
        for item in exact:
            out.extend(_flatten(item))
    return [x for x in dict.fromkeys(out) if x.strip()]


def gold_from_dataset(ds: Dataset) -> list[GoldItem]:
    """One GoldItem per question; the answer type follows the benchmark's own labels."""
    items: list[GoldItem] = []
    for q in ds.questions:
        tags = [ds.name]
        base = {
            "id": q.id,
            "question": q.text,
            "gold_doc_ids": q.gold_ids,
            "reference_answer": q.long_answer,
        }
        answer = q.answer if isinstance(q.answer, str) else None
        qtype = q.extra.get("type")
        if ds.name == "pubmedqa" or qtype == "yesno":
            label = (answer or "").strip().lower()
            if label in ("yes", "no", "maybe"):
                items.append(
                    GoldItem(
                        **base, answer_type="yes_no", yes_no=label, tags=[*tags, "yes_no", label]
                    )
                )
                continue
        if qtype in ("factoid", "list"):
            items.append(
                GoldItem(
                    **base,
                    answer_type="short" if qtype == "factoid" else "list",
                    exact_answers=_flatten(q.extra.get("exact_answer"))
                    or ([answer] if answer else []),
                    list_answers=[_flatten(entry) for entry in q.extra.get("exact_answer") or []]
                    if qtype == "list"
                    else [],
                    tags=[*tags, qtype],
                )
            )
            continue
        if ds.name == "scifact" and answer:
            tags.append(answer.lower())
        if qtype:
            tags.append(qtype)
        items.append(GoldItem(**base, answer_type="long", tags=tags))
    return items


def gold_from_path(path: Path, split: str = "dev") -> list[GoldItem]:
    return gold_from_dataset(load_dataset(path, split))

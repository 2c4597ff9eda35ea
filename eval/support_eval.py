"""Precision/recall of the sentence-support checker on hand-labelled sentence-passage pairs.

    rag eval support [--pairs eval/gold/support_pairs.jsonl]
    rag eval support --scifact ../shared/datasets/scifact     # held-out, third-party labels

The hand-labelled pairs were written here and the checker was tuned on them, so their figures
are in-sample. SciFact dev gives an independent check: each claim with rationale sentences
labelled SUPPORT (supported) or CONTRADICT (unsupported) by its annotators, the passage being
those rationale sentences. Its claims paraphrase freely, which is harder than the answer
sentences this checker meets (they copy from the passage), so expect lower recall there.

"Positive" = the checker says *supported*. Precision is what protects the reader: an
unsupported sentence shown as supported is the failure that matters most.
"""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path
from typing import Any

from rag.paths import gold_dir
from rag.verify.support import SupportChecker


def load_pairs(path: Path | None = None) -> list[dict[str, Any]]:
    path = path or gold_dir() / "support_pairs.jsonl"
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def scifact_pairs(dataset_dir: Path) -> list[dict[str, Any]]:
    """SciFact claims against their annotated rationale sentences (SUPPORT vs CONTRADICT)."""
    abstracts: dict[str, list[str]] = {}
    with (dataset_dir / "corpus.jsonl").open() as f:
        for line in f:
            doc = json.loads(line)
            abstracts[str(doc["id"])] = doc.get("sentences") or []
    pairs: list[dict[str, Any]] = []
    with (dataset_dir / "questions_dev.jsonl").open() as f:
        for line in f:
            q = json.loads(line)
            for doc_id, ev in (q.get("evidence") or {}).items():
                sentences = abstracts.get(str(doc_id), [])
                picked = sorted({i for group in ev.get("sentences", []) for i in group})
                passage = " ".join(sentences[i] for i in picked if i < len(sentences))
                if not passage or ev.get("label") not in ("SUPPORT", "CONTRADICT"):
                    continue
                pairs.append(
                    {
                        "id": f"scifact-{q['id']}-{doc_id}",
                        "sentence": q["question"],
                        "passage": passage,
                        "supported": ev["label"] == "SUPPORT",
                        "type": ev["label"].lower(),
                    }
                )
    return pairs


def evaluate_checker(checker: SupportChecker, pairs: list[dict[str, Any]]) -> dict[str, Any]:
    tp = fp = fn = tn = 0
    errors: list[dict[str, Any]] = []
    by_type: Counter[str] = Counter()
    wrong_by_type: Counter[str] = Counter()
    for pair in pairs:
        result = checker.check(pair["sentence"], {1: pair["passage"]})
        predicted = result.verdict == "supported"
        gold = bool(pair["supported"])
        by_type[pair["type"]] += 1
        if predicted and gold:
            tp += 1
        elif predicted and not gold:
            fp += 1
        elif gold:
            fn += 1
        else:
            tn += 1
        if predicted != gold:
            wrong_by_type[pair["type"]] += 1
            errors.append(
                {
                    "id": pair["id"],
                    "gold": gold,
                    "verdict": result.verdict,
                    "score": round(result.score, 3),
                    "type": pair["type"],
                    "sentence": pair["sentence"],
                    "reasons": result.reasons,
                }
            )
    precision = tp / (tp + fp) if tp + fp else 1.0
    recall = tp / (tp + fn) if tp + fn else 1.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    return {
        "precision": precision,
        "recall": recall,
        "f1": f1,
        "accuracy": (tp + tn) / len(pairs),
        "n": len(pairs),
        "confusion": {"tp": tp, "fp": fp, "fn": fn, "tn": tn},
        "errors_by_type": {t: f"{wrong_by_type[t]}/{n}" for t, n in sorted(by_type.items())},
        "errors": errors,
    }

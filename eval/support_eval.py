"""Precision/recall of the sentence-support checker on hand-labelled sentence-passage pairs.

    rag eval support [--pairs eval/gold/support_pairs.jsonl]

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

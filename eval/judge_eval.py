"""Precision and recall of the answer judge on pairs it never saw (the report half).

    rag eval judge [--datasets ../shared/datasets] [--json eval/results/judge.json]

Three readings, each on the report half of ``rag.eval.judge_data`` (Evidence Inference: its
validation split):
- the judge alone at its calibrated thresholds, per task, source and kind of pair, with AUC;
- the support checker as the answerer runs it (hard rules on numbers, names and negation, then
  the judge) against the same checker without the judge (overlap score), on SciFact claims;
- the answer task on BioASQ sentences (holds an exact answer or not).
"Positive" = supported / answers. Precision is what protects the reader.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
from rag.eval.judge_data import Pair, build_pairs

from rag.verify.judge import Judge


def confusion(gold: Sequence[int], predicted: Sequence[bool]) -> dict[str, Any]:
    tp = sum(1 for g, p in zip(gold, predicted, strict=True) if g and p)
    fp = sum(1 for g, p in zip(gold, predicted, strict=True) if not g and p)
    fn = sum(1 for g, p in zip(gold, predicted, strict=True) if g and not p)
    tn = len(gold) - tp - fp - fn
    # None (JSON null) where a ratio has no denominator: NaN is not JSON.
    return {
        "precision": round(tp / (tp + fp), 4) if tp + fp else None,
        "recall": round(tp / (tp + fn), 4) if tp + fn else None,
        "accuracy": round((tp + tn) / len(gold), 4) if gold else None,
        "n": len(gold),
        "tp": tp,
        "fp": fp,
        "fn": fn,
        "tn": tn,
    }


def _round(x: float | None) -> float | None:
    return None if x is None else round(x, 4)


def auc(labels: Sequence[int], scores: Sequence[float]) -> float | None:
    """ROC AUC (scikit-learn); None when one class is missing."""
    from sklearn.metrics import roc_auc_score

    if len(set(labels)) < 2:
        return None
    return float(roc_auc_score(labels, scores))


def judge_alone(judge: Judge, pairs: list[Pair]) -> dict[str, Any]:
    scores = judge.score([(p.task, p.a, p.b) for p in pairs])
    out: dict[str, Any] = {}
    for task in ("support", "answer"):
        idx = [i for i, p in enumerate(pairs) if p.task == task]
        if not idx:
            continue
        t = judge.threshold(task, "accept")  # type: ignore[arg-type]
        reject = judge.threshold(task, "reject")  # type: ignore[arg-type]
        labels = [pairs[i].label for i in idx]
        predicted = [scores[i] >= t for i in idx]
        entry = confusion(labels, predicted) | {
            "threshold": t,
            "auc": _round(auc(labels, [scores[i] for i in idx])),
            "at_reject": confusion(labels, [scores[i] >= reject for i in idx])
            | {"threshold": reject},
        }
        by: dict[str, list[int]] = defaultdict(list)
        for i in idx:
            by[f"{pairs[i].source}/{pairs[i].kind}"].append(i)
        entry["by_kind"] = {
            k: {
                "n": len(v),
                "label": pairs[v[0]].label,
                "predicted_positive": round(float(np.mean([scores[i] >= t for i in v])), 4),
            }
            for k, v in sorted(by.items())
        }
        sources = sorted({pairs[i].source for i in idx})
        entry["by_source"] = {
            src: confusion(
                [pairs[i].label for i in idx if pairs[i].source == src],
                [scores[i] >= t for i in idx if pairs[i].source == src],
            )
            for src in sources
        }
        out[task] = entry
    return out


def checker_on(checker: Any, pairs: list[Pair]) -> dict[str, Any]:
    """A SupportChecker's verdicts (``supported`` = positive) on support pairs."""
    predicted = [checker.check(p.a, {1: p.b}).verdict == "supported" for p in pairs]
    result = confusion([p.label for p in pairs], predicted)
    kinds = sorted({p.kind for p in pairs})
    result["by_kind"] = {
        k: confusion(
            [p.label for p in pairs if p.kind == k],
            [v for p, v in zip(pairs, predicted, strict=True) if p.kind == k],
        )
        for k in kinds
    }
    return result


def evaluate(
    datasets: Path,
    judge: Judge,
    make_checker: Callable[[Judge | None], Any],
    half: str = "report",
) -> dict[str, Any]:
    pairs = [p for p in build_pairs(datasets) if p.half == half]
    scifact = [p for p in pairs if p.source == "scifact"]
    contradict_only = [p for p in scifact if p.kind in ("support", "contradict")]
    return {
        "half": half,
        "judge": {"fingerprint": judge.fingerprint, "recipe": judge.manifest.get("recipe")},
        "judge_alone": judge_alone(judge, pairs),
        "scifact_checker": {
            "with_judge": checker_on(make_checker(judge), scifact),
            "overlap_only": checker_on(make_checker(None), scifact),
            "support_vs_contradict_with_judge": checker_on(make_checker(judge), contradict_only),
            "support_vs_contradict_overlap_only": checker_on(make_checker(None), contradict_only),
        },
        "bioasq_answer_sentences": _answer_confusion(
            judge, [p for p in pairs if p.source == "bioasq"]
        ),
    }


def _answer_confusion(judge: Judge, pairs: list[Pair]) -> dict[str, Any]:
    scores = judge.score([(p.task, p.a, p.b) for p in pairs])
    return confusion([p.label for p in pairs], list(scores >= judge.threshold("answer")))

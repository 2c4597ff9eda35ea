"""Metric helpers shared by the benchmarks and the evaluation harness."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np


def ir_metrics(
    qrels: dict[str, dict[str, int]], run: dict[str, dict[str, float]], metrics: Sequence[str]
) -> dict[str, float]:
    """Mean IR metrics over the questions in ``qrels`` (ranx; missing runs count as zero)."""
    from ranx import Qrels, Run, evaluate

    judged = {q: docs for q, docs in qrels.items() if docs}
    full_run = {q: run.get(q) or {"__none__": 0.0} for q in judged}
    scores = evaluate(Qrels(judged), Run(full_run), list(metrics), make_comparable=True)
    if isinstance(scores, float):
        scores = {metrics[0]: scores}
    return {k: float(v) for k, v in scores.items()}


def per_query_ir(
    qrels: dict[str, dict[str, int]], run: dict[str, dict[str, float]], metric: str
) -> dict[str, float]:
    """One metric per question (for bootstrap intervals and paired comparisons)."""
    from ranx import Qrels, Run, evaluate

    judged = {q: docs for q, docs in qrels.items() if docs}
    full_run = {q: run.get(q) or {"__none__": 0.0} for q in judged}
    r = Run(full_run)
    evaluate(Qrels(judged), r, [metric], make_comparable=True)
    return {q: float(v) for q, v in r.scores[metric].items()}


def percentiles(values: Sequence[float]) -> dict[str, float]:
    if not values:
        return {"p50": float("nan"), "p95": float("nan"), "mean": float("nan"), "n": 0}
    arr = np.asarray(values, dtype=np.float64)
    return {
        "p50": float(np.percentile(arr, 50)),
        "p95": float(np.percentile(arr, 95)),
        "mean": float(arr.mean()),
        "n": int(arr.size),
    }

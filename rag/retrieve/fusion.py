"""Reciprocal rank fusion and diversity selection."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np


def rrf(rankings: Sequence[tuple[Sequence[int], float]], k: int = 60) -> list[tuple[int, float]]:
    """Weighted RRF: score(d) = sum_i w_i / (k + rank_i(d)), ranks starting at 1.

    Cormack et al. 2009; robust to the incomparable score scales of BM25 and cosine.
    """
    scores: dict[int, float] = {}
    for ids, weight in rankings:
        if weight <= 0:
            continue
        for rank, item in enumerate(ids, start=1):
            scores[item] = scores.get(item, 0.0) + weight / (k + rank)
    return sorted(scores.items(), key=lambda kv: (-kv[1], kv[0]))


def standardize(scores: Sequence[float]) -> np.ndarray:
    """z-scores (mean 0, unit spread); a constant list maps to zeros."""
    x = np.asarray(scores, dtype=np.float64)
    if x.size == 0:
        return x
    spread = x.std()
    return (x - x.mean()) / spread if spread > 0 else np.zeros_like(x)


def zscore_fusion(
    runs: Sequence[tuple[dict[int, float], float, float | None]],
) -> list[tuple[int, float]]:
    """Convex combination of standardised scores: sum_i w_i * z_i(d) over the union of runs.

    Bruch et al. 2023 ("An analysis of fusion functions for hybrid retrieval") found it ahead
    of RRF once scores are normalised, because it keeps how far apart two candidates are, not
    only their order. Each run is ``(scores by id, weight, floor)``: ``floor`` is the score of
    an id the run did not return (0 for BM25, where no matching term means no evidence; None
    for the run's own minimum, an upper bound on what a cosine below the cut-off could be).
    Standardised over the union, so both runs are measured on the same candidates.
    """
    ids = sorted({i for scores, weight, _ in runs if weight > 0 for i in scores})
    if not ids:
        return []
    total = np.zeros(len(ids))
    for scores, weight, floor in runs:
        if weight <= 0 or not scores:
            continue
        missing = min(scores.values()) if floor is None else floor
        total += weight * standardize([scores.get(i, missing) for i in ids])
    return sorted(zip(ids, total.tolist(), strict=True), key=lambda kv: (-kv[1], kv[0]))


def mmr(relevance: np.ndarray, vectors: np.ndarray, k: int, lambda_: float) -> list[int]:
    """Maximal marginal relevance (Carbonell & Goldstein 1998) over positions of ``relevance``.

    ``relevance`` is min-max scaled so the trade-off against cosine redundancy is meaningful.
    """
    n = len(relevance)
    if n == 0:
        return []
    rel = relevance.astype(np.float64)
    span = rel.max() - rel.min()
    rel = (rel - rel.min()) / span if span > 0 else np.ones_like(rel)
    sims = vectors @ vectors.T
    chosen: list[int] = []
    best_sim = np.full(n, -np.inf)
    available = np.ones(n, dtype=bool)
    for _ in range(min(k, n)):
        redundancy = np.where(np.isfinite(best_sim), best_sim, 0.0)
        score = lambda_ * rel - (1 - lambda_) * redundancy
        score[~available] = -np.inf
        pick = int(np.argmax(score))
        chosen.append(pick)
        available[pick] = False
        best_sim = np.maximum(best_sim, sims[pick])
    return chosen


def cap_per_doc(doc_ids: Sequence[str], k: int, cap: int) -> list[int]:
    """Positions of the first ``k`` items taking at most ``cap`` per document."""
    taken: dict[str, int] = {}
    out: list[int] = []
    for pos, doc in enumerate(doc_ids):
        if taken.get(doc, 0) >= cap:
            continue
        taken[doc] = taken.get(doc, 0) + 1
        out.append(pos)
        if len(out) == k:
            break
    return out

"""Document-level runs from chunk-level retrieval, for IR metrics against document qrels."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from rag.eval.datasets import Question


def doc_run(
    assistant: Any,
    questions: Sequence[Question],
    *,
    mode: str = "hybrid",
    depth: int = 100,
    rerank: bool | None = False,
    doc_key: str = "doc_id",
) -> dict[str, dict[str, float]]:
    """Rank documents by their best chunk: score = 1/rank of first appearance."""
    run: dict[str, dict[str, float]] = {}
    for q in questions:
        result = assistant.retriever.run(q.text, k=depth, mode=mode, rerank=rerank, diversify=False)
        ranking: dict[str, float] = {}
        for hit in result.hits:
            key = getattr(hit.chunk, doc_key)
            if key not in ranking:
                ranking[key] = 1.0 / (len(ranking) + 1)
        run[q.id] = ranking
    return run

"""Rerank: reorder fused candidates with a stronger (slower) relevance model."""

from __future__ import annotations

from typing import Protocol, runtime_checkable

from rag.types import Hit


@runtime_checkable
class Reranker(Protocol):
    name: str

    def rerank(self, query: str, hits: list[Hit]) -> list[Hit]:
        """Return ``hits`` reordered best first, each with ``rerank_score`` and ``score`` set."""
        ...


__all__ = ["Reranker"]

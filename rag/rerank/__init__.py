"""Rerank: reorder fused candidates with a stronger (slower) relevance model.

The ``Reranker`` contract is the retriever's (``rag.retrieve.retriever``): it calls a reranker,
so it states what one must do, and this package implements it.
"""

from __future__ import annotations

from rag.retrieve.retriever import Reranker

__all__ = ["Reranker"]

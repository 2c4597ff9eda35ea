"""Embed: text -> L2-normalised vectors, through a swappable Embedder."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol, runtime_checkable

import numpy as np

from rag.settings import EmbedSettings


@runtime_checkable
class Embedder(Protocol):
    name: str
    dim: int
    max_tokens: int

    @property
    def fingerprint(self) -> str: ...

    def count_tokens(self, texts: Sequence[str]) -> list[int]: ...

    def embed(self, texts: Sequence[str]) -> np.ndarray: ...

    def embed_query(self, text: str) -> np.ndarray: ...


def load_embedder(settings: EmbedSettings) -> Embedder:
    from rag.embed.sentence import SentenceTransformerEmbedder

    return SentenceTransformerEmbedder(settings)


__all__ = ["Embedder", "load_embedder"]

"""The VectorStore protocol every dense backend implements (FAISS, Milvus)."""

from __future__ import annotations

from pathlib import Path
from typing import Protocol, runtime_checkable

import numpy as np


@runtime_checkable
class VectorStore(Protocol):
    """Inner-product search over L2-normalised vectors keyed by int64 ids.

    Ids come from the chunk store, so a store never invents them; ``allowed`` restricts a
    search to a subset of ids (how metadata filters reach the dense side).
    """

    dim: int
    kind: str

    def __len__(self) -> int: ...

    def add(self, ids: np.ndarray, vectors: np.ndarray) -> None: ...

    def remove(self, ids: np.ndarray) -> int: ...

    def search(
        self, queries: np.ndarray, k: int, allowed: np.ndarray | None = None
    ) -> tuple[np.ndarray, np.ndarray]:
        """Return (scores, ids), each shaped (n_queries, k); missing slots have id -1."""
        ...

    def ids(self) -> np.ndarray: ...

    def save(self, path: Path) -> None: ...

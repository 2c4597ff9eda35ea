"""Build the configured reranker (or none)."""

from __future__ import annotations

from rag.errors import ConfigError
from rag.rerank import Reranker
from rag.settings import RerankSettings


def load_reranker(settings: RerankSettings) -> Reranker | None:
    if settings.method == "none":
        return None
    raise ConfigError(f"rerank.method={settings.method!r} is not available yet")

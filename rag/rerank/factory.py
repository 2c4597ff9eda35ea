"""Build the configured reranker (or none)."""

from __future__ import annotations

from typing import Any

from rag.errors import ConfigError
from rag.rerank import Reranker
from rag.settings import GenerateSettings, RerankSettings


def load_reranker(
    settings: RerankSettings,
    generate: GenerateSettings | None = None,
    *,
    generator: Any = None,
) -> Reranker | None:
    """The reranker ``settings`` name. The generator reranker judges with ``generator`` (the
    caller's, e.g. the Assistant's, so both share one loaded model) or loads one from
    ``generate``; it never reads settings of its own."""
    if settings.method == "none":
        return None
    if settings.method == "cross-encoder":
        from rag.rerank.cross_encoder import CrossEncoderReranker

        return CrossEncoderReranker(settings)
    if settings.method == "generator":
        from rag.rerank.generator import GeneratorReranker

        if generator is None:
            if generate is None:
                raise ConfigError(
                    "rerank.method='generator' needs a generator or the generate settings"
                )
            try:
                from rag.generate import load_generator
            except ImportError as exc:  # the generate package is optional at install time
                raise ConfigError(
                    f"rerank.method='generator' needs the generator ({exc}); "
                    "install the [generate] extra or set rerank.method=cross-encoder"
                ) from exc
            generator = load_generator(generate)
        return GeneratorReranker(settings, generator)
    raise ConfigError(f"rerank.method={settings.method!r} is not available")

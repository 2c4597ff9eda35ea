"""Build the configured reranker (or none)."""

from __future__ import annotations

from rag.errors import ConfigError
from rag.rerank import Reranker
from rag.settings import GenerateSettings, RerankSettings


def load_reranker(
    settings: RerankSettings, generate: GenerateSettings | None = None
) -> Reranker | None:
    """``generate`` configures the generator reranker; default: the generate settings in force."""
    if settings.method == "none":
        return None
    if settings.method == "cross-encoder":
        from rag.rerank.cross_encoder import CrossEncoderReranker

        return CrossEncoderReranker(settings)
    if settings.method == "generator":
        try:
            from rag.generate import load_generator
        except ImportError as exc:  # the generate package is optional at install time
            raise ConfigError(
                f"rerank.method='generator' needs the generator ({exc}); "
                "install the [generate] extra or set rerank.method=cross-encoder"
            ) from exc
        from rag.rerank.generator import GeneratorReranker

        if generate is None:
            from rag.settings import load_settings

            generate = load_settings().generate
        return GeneratorReranker(settings, load_generator(generate))
    raise ConfigError(f"rerank.method={settings.method!r} is not available")

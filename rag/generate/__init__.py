"""Generate: chat messages -> streamed answer text, through a swappable Generator.

Two backends share one contract: ``local`` (transformers on this CPU, packaged Qwen2.5-Coder
weights converted once) and ``remote`` (any OpenAI-compatible server). There is no silent
fallback between them: a missing or broken model raises ModelUnavailableError naming the setting.
"""

from __future__ import annotations

from rag.generate.base import (
    GenerationStats,
    Generator,
    Message,
    generate_text,
    scan_stops,
)
from rag.settings import GenerateSettings


def load_generator(settings: GenerateSettings) -> Generator:
    if settings.backend == "remote":
        from rag.generate.remote import RemoteGenerator

        return RemoteGenerator(settings)
    from rag.generate.local import LocalGenerator

    return LocalGenerator(settings)


__all__ = [
    "GenerationStats",
    "Generator",
    "Message",
    "generate_text",
    "load_generator",
    "scan_stops",
]

"""The generator contract shared by every backend: messages, stats, the Protocol, stop scanning.

Backends import this module, never the package, so ``rag.generate`` can import them lazily
without a circle.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import asdict, dataclass
from typing import Any, Protocol, runtime_checkable

Message = dict[str, str]


@dataclass
class GenerationStats:
    """What one generation cost; the last item every ``stream`` yields."""

    prompt_tokens: int
    cached_prompt_tokens: int  # prompt tokens whose KV came from the prefix cache
    new_tokens: int
    ttft_s: float  # request start -> first new token
    total_s: float
    decode_tokens_per_s: float  # tokens after the first, per second of decoding
    prefill_tokens_per_s: float  # uncached prompt tokens per second of prefill

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@runtime_checkable
class Generator(Protocol):
    name: str

    @property
    def fingerprint(self) -> str:
        """Content fingerprint of the weights (local) or of base_url + model (remote)."""
        ...

    def stream(
        self,
        messages: list[Message],
        *,
        max_new_tokens: int,
        temperature: float = 0.0,
        stop: list[str] | None = None,
    ) -> Iterator[str | GenerationStats]:
        """Yield text pieces as they are decoded, then exactly one GenerationStats."""
        ...

    def choice_logprobs(self, messages: list[Message], choices: list[str]) -> dict[str, float]:
        """Log-probability of each short choice as the start of the assistant's reply."""
        ...

    def count_tokens(self, text: str) -> int: ...


def generate_text(
    generator: Generator, messages: list[Message], **kwargs: Any
) -> tuple[str, GenerationStats]:
    """Drain ``stream`` into the full text and its stats (for callers that do not stream)."""
    pieces: list[str] = []
    stats: GenerationStats | None = None
    for item in generator.stream(messages, **kwargs):
        if isinstance(item, GenerationStats):
            stats = item
        else:
            pieces.append(item)
    assert stats is not None, "Generator.stream must end with GenerationStats"
    return "".join(pieces), stats


def scan_stops(text: str, sent: int, stops: list[str], final: bool = False) -> tuple[int, bool]:
    """How much of ``text`` may be emitted, and whether a stop string was reached.

    A stop string cannot start before ``sent``: any tail that could still grow into one is
    held back until the next piece decides it.
    """
    if not stops:
        return len(text), False
    hits = [i for i in (text.find(s, sent) for s in stops) if i >= 0]
    if hits:
        return min(hits), True
    if final:
        return len(text), False
    hold = 0
    for s in stops:
        for k in range(min(len(s) - 1, len(text) - sent), 0, -1):
            if text.endswith(s[:k]):
                hold = max(hold, k)
                break
    return len(text) - hold, False

"""Drafts kept between evaluation runs, so verifier changes are measured on the same drafts.

On a CPU the generator is most of an evaluation's time (20-60 s a question on a 2-core AVX2
box), while most changes under test are in retrieval's aftermath: grounding, the judge, the
quote fallback. ``rag eval run --draft-cache DIR`` wraps the generator: a prompt it has seen
(same model, same messages, same decoding settings) replays the kept text instead of
generating; a new prompt (a changed passage window, a second draft) is generated and kept.
Replayed questions have no generation timings, so their latency figures are left out of the
run's metrics (``drafts_replayed`` counts them).
"""

from __future__ import annotations

import hashlib
import json
import os
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from rag.generate import GenerationStats, Message


class DraftCache:
    """A generator that replays kept drafts and keeps new ones (one JSON file per prompt).

    ``load`` builds the real generator, on the first prompt that is not kept: a run whose
    drafts are all kept never loads the model. ``identity`` names the model in the key.
    """

    def __init__(self, load: Callable[[], Any], directory: Path, identity: str) -> None:
        self._load = load
        self._inner: Any = None
        self.directory = Path(directory)
        self.directory.mkdir(parents=True, exist_ok=True)
        self.name = identity
        self.replayed = 0
        self.generated = 0

    @property
    def inner(self) -> Any:
        if self._inner is None:
            self._inner = self._load()
        return self._inner

    @property
    def fingerprint(self) -> str:
        return self.inner.fingerprint

    def count_tokens(self, text: str) -> int:
        return self.inner.count_tokens(text)

    def choice_logprobs(self, messages: list[Message], choices: list[str]) -> dict[str, float]:
        return self.inner.choice_logprobs(messages, choices)

    def _path(self, messages: list[Message], settings: dict[str, Any]) -> Path:
        key = json.dumps(
            {"model": self.name, "messages": messages, **settings},
            sort_keys=True,
        )
        return self.directory / f"{hashlib.sha256(key.encode()).hexdigest()[:24]}.json"

    def stream(
        self,
        messages: list[Message],
        *,
        max_new_tokens: int,
        temperature: float = 0.0,
        stop: list[str] | None = None,
    ) -> Iterator[str | GenerationStats]:
        settings = {"max_new_tokens": max_new_tokens, "temperature": temperature, "stop": stop}
        path = self._path(messages, settings)
        if temperature <= 0 and path.is_file():
            kept = json.loads(path.read_text())
            self.replayed += 1
            yield kept["text"]
            yield GenerationStats(**(kept["stats"] | {"ttft_s": 0.0, "total_s": 0.0}))
            return
        pieces: list[str] = []
        stats: GenerationStats | None = None
        for item in self.inner.stream(
            messages, max_new_tokens=max_new_tokens, temperature=temperature, stop=stop
        ):
            if isinstance(item, GenerationStats):
                stats = item
            else:
                pieces.append(item)
            yield item
        self.generated += 1
        if stats is not None and temperature <= 0:
            tmp = path.with_suffix(f".{os.getpid()}.tmp")
            record = {"text": "".join(pieces), "stats": stats.to_dict(), "kept_at": time.time()}
            tmp.write_text(json.dumps(record))
            os.replace(tmp, path)

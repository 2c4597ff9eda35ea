"""One evaluator shape, in the manner of sentence-transformers' ``SentenceEvaluator``.

An evaluator holds its options (dataclass fields), is called with the Assistant under test
and returns flat ``dict[str, float]`` scores whose keys carry the evaluator's name
(``retrieval_hybrid_ndcg@10``), one of them its ``primary_metric``. ``details`` keeps the full
nested result the benchmark has always written, so the JSON files under ``eval/results/`` keep
their shape. Each evaluator is registered once, in ``EVALUATORS``; ``rag eval list`` prints
them. The concrete evaluators live in ``rag.eval.evaluators``.
"""

from __future__ import annotations

import math
from abc import ABC, abstractmethod
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, ClassVar, TypeVar

if TYPE_CHECKING:
    from rag.assistant import Assistant

E = TypeVar("E", bound="type[Evaluator]")

EVALUATORS: dict[str, type[Evaluator]] = {}


def register(name: str) -> Callable[[E], E]:
    """Class decorator: the evaluator answers to ``name`` under ``rag eval``."""

    def add(cls: E) -> E:
        if name in EVALUATORS:
            raise ValueError(f"evaluator {name!r} is registered twice")
        cls.name = name
        EVALUATORS[name] = cls
        return cls

    return add


class Evaluator(ABC):
    """A benchmark: options as dataclass fields, ``__call__(assistant)`` -> prefixed scores.

    ``takes_assistant`` is False for benchmarks that build one assistant per corpus from
    their own preset and overrides (a caller's assistant indexes another corpus); passing
    one to them is refused rather than silently ignored.
    """

    name: ClassVar[str] = ""
    primary_metric: ClassVar[str] = ""
    greater_is_better: ClassVar[bool] = True
    takes_assistant: ClassVar[bool] = True
    details: dict[str, Any]

    def __call__(self, assistant: Assistant | None = None) -> dict[str, float]:
        if assistant is not None and not self.takes_assistant:
            raise ValueError(
                f"the {self.name} evaluator builds its own assistants (one per corpus); "
                "give its preset and overrides instead"
            )
        self.details = self.evaluate(assistant)
        return self.prefix_name_to_metrics(self.scores(self.details))

    @abstractmethod
    def evaluate(self, assistant: Assistant | None) -> dict[str, Any]:
        """Run the benchmark; return the nested result it writes as JSON."""

    @classmethod
    @abstractmethod
    def scores(cls, details: dict[str, Any]) -> dict[str, float]:
        """The headline figures of ``details``, flat and unprefixed."""

    @classmethod
    def prefix_name_to_metrics(cls, scores: dict[str, float]) -> dict[str, float]:
        """Prefix every key with the name; the primary metric is always present (NaN when the
        run measured nothing for it), so a caller can index it without a guard."""
        out = {f"{cls.name}_{k}": float(v) for k, v in scores.items()}
        out.setdefault(cls.primary_key(), math.nan)
        return out

    @classmethod
    def primary_key(cls) -> str:
        return f"{cls.name}_{cls.primary_metric}"


def numbers(prefix: str, figures: dict[str, Any], keys: tuple[str, ...]) -> dict[str, float]:
    """``figures[k]`` for each of ``keys`` that holds a number, as ``{prefix}{k}``."""
    return {
        f"{prefix}{k}": float(figures[k])
        for k in keys
        if isinstance(figures.get(k), int | float) and not isinstance(figures.get(k), bool)
    }

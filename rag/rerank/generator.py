"""Generator reranker: the local LLM judges each passage yes/no; no training needed, but slow.

The score is ``logprob("yes") - logprob("no")`` for the first token of the reply. The query
comes before the passage so the generator's prefix cache reuses the shared head of the prompt
across a query's candidates. Keep ``rerank.depth`` small (~10): each passage is one prefill.
"""

from __future__ import annotations

import math
from typing import Any

from rag.rerank.cross_encoder import blend_scores, passage_text
from rag.settings import RerankSettings
from rag.types import Hit

SYSTEM = (
    "You judge search results for a biomedical literature assistant. Given a query (a question "
    "or a claim) and one passage, reply with a single word: yes if the passage answers, "
    "supports or refutes the query with specific evidence, no otherwise."
)
MAX_PASSAGE_CHARS = 1500


def judge_messages(query: str, passage: str) -> list[dict[str, str]]:
    return [
        {"role": "system", "content": SYSTEM},
        {
            "role": "user",
            "content": f"Query: {query}\n\nPassage: {passage[:MAX_PASSAGE_CHARS]}\n\n"
            "Does the passage answer or address the query? Reply yes or no.",
        },
    ]


class GeneratorReranker:
    def __init__(self, settings: RerankSettings, generator: Any) -> None:
        self.settings = settings
        self.generator = generator
        self.name = f"generator:{getattr(generator, 'name', 'llm')}"

    @property
    def fingerprint(self) -> str:
        return str(getattr(self.generator, "fingerprint", ""))

    def judge(self, query: str, passage: str) -> float:
        lp = self.generator.choice_logprobs(judge_messages(query, passage), ["yes", "no"])
        return float(lp["yes"] - lp["no"])

    def rerank(self, query: str, hits: list[Hit]) -> list[Hit]:
        if not hits:
            return hits
        margins = [self.judge(query, passage_text(h)) for h in hits]
        mixed = blend_scores(margins, hits, self.settings)
        for hit, margin, score in zip(hits, margins, mixed, strict=True):
            hit.rerank_score = margin
            hit.score = score if math.isfinite(score) else -math.inf
        return sorted(hits, key=lambda h: -h.score)

"""Answering: retrieve -> evidence first -> prompt -> stream generation -> verify -> response.

``answerer`` runs a question end to end; ``passages`` shapes retrieval for answering;
``verdicts`` gives yes/no answers; ``render`` turns a verification into the response.
"""

from rag.answer.answerer import ABSTAIN_TEXT, OFF_TARGET_REASON, RETRY_REASON, Answerer
from rag.answer.passages import term_coverage

__all__ = [
    "ABSTAIN_TEXT",
    "OFF_TARGET_REASON",
    "RETRY_REASON",
    "Answerer",
    "term_coverage",
]

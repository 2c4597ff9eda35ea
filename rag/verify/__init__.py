"""Verify: citations, numbers traced to passages, sentence support, abstention."""

from rag.verify.citations import AnswerSentence, parse_answer, render
from rag.verify.numbers import extract_numbers, untraced
from rag.verify.support import SupportChecker, SupportResult
from rag.verify.verifier import CheckedSentence, Verification, Verifier, model_abstained

__all__ = [
    "AnswerSentence",
    "CheckedSentence",
    "SupportChecker",
    "SupportResult",
    "Verification",
    "Verifier",
    "extract_numbers",
    "model_abstained",
    "parse_answer",
    "render",
    "untraced",
]

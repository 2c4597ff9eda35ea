"""Follow-up questions: rewrite "and its ORR?" into a question retrieval can answer alone.

Retrieval sees one question, not a conversation, so a follow-up that leans on earlier turns
("what about its side effects?") must name what it refers to before it is searched. The rewrite
costs a generation, so it only runs when the question visibly refers back (a pronoun, an
elliptical opener, or a fragment of a few words), and any doubtful output falls back to the
question as asked: a wrong rewrite would retrieve the wrong passages silently.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable, Sequence
from typing import Any

from rag.errors import RagError
from rag.generate import GenerationStats, Message

log = logging.getLogger(__name__)

MAX_TURNS = 4  # earlier messages shown to the rewriter
MAX_TURN_CHARS = 400
MAX_NEW_TOKENS = 48

_REFERENCE = re.compile(
    r"\b(it|its|it's|itself|they|them|their|theirs|this|that|these|those|he|him|his|she|her|"
    r"same|such|former|latter|above|previous|previously|earlier|aforementioned|"
    r"the (drug|trial|study|regimen|treatment|combination|therapy|agent|results?|paper|"
    r"article|cohort|arm|patients|population))\b",
    re.IGNORECASE,
)
_ELLIPSIS = re.compile(
    r"^\s*(and|also|but|or|what about|how about|what else|why( not)?|how so|compared (to|with)|"
    r"versus|vs\.?|in comparison|any other|more on|tell me more|and what|and how)\b",
    re.IGNORECASE,
)
_QUESTION_START = re.compile(
    r"^(what|which|who|whom|whose|when|where|why|how|is|are|was|were|do|does|did|can|could|"
    r"should|would|will|has|have|had|list|describe|compare|summari[sz]e|explain|give|name|tell|"
    r"in|for|among|according)\b",
    re.IGNORECASE,
)
_PREFIX = re.compile(
    r"^\s*(standalone|rewritten|reformulated|follow-up|new)?\s*(question|query)\s*:\s*",
    re.IGNORECASE,
)
_MARKERS = re.compile(r"\s*\[\d+\]")
_WORD = re.compile(r"[A-Za-z0-9][A-Za-z0-9\-\.]*[A-Za-z0-9]|[A-Za-z0-9]")
_STOPWORDS = """
a an the and or but of in on at to for with by from as is are was were be been being do does
did what which who whom whose when where why how this that these those it its they them their
there than then also about into over under after before between during vs versus compared any
more most other same such can could should would will has have had not no yes me tell give list
describe explain
"""
_STOP = frozenset(_STOPWORDS.split())

SYSTEM = (
    "You rewrite follow-up questions about oncology literature so that they can be understood "
    "without the conversation. Replace pronouns and implied subjects with the drugs, trials, "
    "cancers and endpoints they refer to in the conversation. Do not answer the question. Reply "
    "with the rewritten question only, on one line."
)


# One worked example: small models copy its shape (and stop answering instead of rewriting).
EXAMPLE: list[Message] = [
    {
        "role": "user",
        "content": "Conversation:\nUser: What was the objective response rate with osimertinib "
        "in FLAURA?\nAssistant: The objective response rate was 80%.\n\nFollow-up question: "
        "And its median PFS?\n\nStandalone question:",
    },
    {"role": "assistant", "content": "What was the median PFS with osimertinib in FLAURA?"},
]


def needs_rewrite(history: Sequence[Message], question: str) -> bool:
    """True when the question has earlier turns to lean on and appears to lean on them."""
    if not any(m.get("content", "").strip() for m in history):
        return False
    words = _WORD.findall(question)
    return bool(_REFERENCE.search(question) or _ELLIPSIS.search(question) or len(words) <= 3)


def standalone_question(
    generator: Any | Callable[[], Any], history: Sequence[Message], question: str
) -> str:
    """The question rewritten to stand alone, or ``question`` itself.

    ``generator`` may be a zero-argument callable returning the generator, so a question that
    needs no rewrite never loads a model.
    """
    question = question.strip()
    if not needs_rewrite(history, question):
        return question
    gen = generator if hasattr(generator, "stream") else generator()
    try:
        text = _generate(gen, _messages(history, question))
    except RagError as exc:  # a failed rewrite must not fail the answer
        log.warning("question rewrite failed, searching the question as asked: %s", exc)
        return question
    candidate = clean_rewrite(text)
    if candidate and plausible_rewrite(candidate, history, question):
        return candidate
    log.info("rejected question rewrite %r; searching %r", text[:200], question)
    return question


def _messages(history: Sequence[Message], question: str) -> list[Message]:
    turns = [m for m in history if m.get("role") in ("user", "assistant") and m.get("content")]
    lines = []
    for m in turns[-MAX_TURNS:]:
        content = " ".join(_MARKERS.sub("", m["content"]).split())
        if len(content) > MAX_TURN_CHARS:
            content = content[:MAX_TURN_CHARS].rsplit(" ", 1)[0] + " ..."
        lines.append(f"{'User' if m['role'] == 'user' else 'Assistant'}: {content}")
    prompt = (
        "Conversation:\n" + "\n".join(lines) + f"\n\nFollow-up question: {question}\n\n"
        "Standalone question:"
    )
    return [
        {"role": "system", "content": SYSTEM},
        *EXAMPLE,
        {"role": "user", "content": prompt},
    ]


def _generate(gen: Any, messages: list[Message]) -> str:
    pieces: list[str] = []
    for item in gen.stream(messages, max_new_tokens=MAX_NEW_TOKENS, temperature=0.0, stop=["\n\n"]):
        if not isinstance(item, GenerationStats):
            pieces.append(item)
    return "".join(pieces)


def clean_rewrite(text: str) -> str:
    """First non-empty line without a "Standalone question:" label, quotes or markup."""
    for line in text.splitlines():
        line = line.replace("**", "").replace("__", "").strip().strip("\"'`*_ ")
        line = _PREFIX.sub("", line).strip().strip("\"'`*_ ").strip()
        if line:
            return " ".join(line.split())
    return ""


def _content_words(text: str) -> set[str]:
    return {w.lower() for w in _WORD.findall(text) if w.lower() not in _STOP and len(w) > 1}


def plausible_rewrite(candidate: str, history: Sequence[Message], question: str) -> bool:
    """A question (not an answer) of sensible length built from words the user already used."""
    words = _WORD.findall(candidate)
    if not 3 <= len(words) <= 60 or len(candidate) > max(300, 3 * len(question)):
        return False
    if "[" in candidate or "```" in candidate:
        return False
    if not (candidate.endswith("?") or _QUESTION_START.match(candidate)):
        return False  # the model answered instead of rewriting
    asked = _content_words(question)
    known = asked | _content_words(" ".join(m["content"] for m in history))
    new = _content_words(candidate)
    if not new:
        return False
    # It must still ask what the follow-up asked ("its hazard ratio" keeps "hazard ratio").
    if asked and len(asked & new) * 2 < len(asked):
        return False
    # Mostly words from the conversation: a rewrite must not invent drugs or trials.
    return len(new & known) / len(new) >= 0.5


__all__ = ["clean_rewrite", "needs_rewrite", "plausible_rewrite", "standalone_question"]

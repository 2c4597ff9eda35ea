"""Tuning and report halves, fixed by a hash of each item's group id.

Every gold set is split in two: rules and thresholds are tuned on ``tune`` and figures are
reported on ``report``, which nobody looked at while tuning. The half depends only on the
group id (an item's own id, or the id of the question it rephrases or twins), so a question,
its paraphrases and its entity-swapped twin always fall in the same half, and adding items to a
set never moves an existing item to the other half.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterable
from typing import Literal, TypeVar

Half = Literal["tune", "report"]
HALVES: tuple[Half, ...] = ("tune", "report")
_SALT = "onco-rag/halves/v1"

T = TypeVar("T")


def half_of(group_id: str) -> Half:
    """``tune`` or ``report`` for ``group_id``: the low bit of its salted sha256."""
    digest = hashlib.sha256(f"{_SALT}:{group_id}".encode()).digest()
    return "tune" if digest[0] % 2 == 0 else "report"


def select_half(
    items: Iterable[T],
    half: str | None,
    key: Callable[[T], str] = lambda x: x.id,  # type: ignore[attr-defined]
) -> list[T]:
    """The items of ``half`` (``None`` or ``"all"`` keeps every item)."""
    if half in (None, "all"):
        return list(items)
    if half not in HALVES:
        raise ValueError(f"half must be one of tune, report or all, not {half!r}")
    return [item for item in items if half_of(key(item)) == half]

"""Locations of files that ship with the package, in a source checkout and in a wheel."""

from __future__ import annotations

import importlib.resources
from pathlib import Path


def seeds_dir() -> Path:
    """The seed corpus: ``rag/seeds`` inside a wheel, ``seeds/`` in a source checkout."""
    here = Path(__file__).resolve().parent
    for candidate in (here / "seeds", here.parent / "seeds"):
        if any(candidate.glob("*.txt")):
            return candidate
    raise FileNotFoundError("the seed corpus is missing from this installation")


def static_dir() -> Path:
    return Path(str(importlib.resources.files("rag.ui") / "static"))


def gold_dir() -> Path:
    return Path(str(importlib.resources.files("rag.eval") / "gold"))

"""Locations of files that ship with the package, in a source checkout and in a wheel."""

from __future__ import annotations

import importlib.resources
from pathlib import Path


def seeds_dir() -> Path:
    """The seed corpus: ``rag/seeds`` inside a wheel, ``seeds/`` in a source checkout."""
    try:
        found = Path(str(importlib.resources.files("rag.seeds")))
        if found.is_dir():
            return found
    except ModuleNotFoundError:
        pass
    checkout = Path(__file__).resolve().parent.parent / "seeds"
    if checkout.is_dir():
        return checkout
    raise FileNotFoundError("the seed corpus is missing from this installation")


def static_dir() -> Path:
    return Path(str(importlib.resources.files("rag.ui") / "static"))


def gold_dir() -> Path:
    return Path(str(importlib.resources.files("rag.eval") / "gold"))

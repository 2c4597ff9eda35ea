"""Locations of files that ship with the package, in a source checkout and in a wheel."""

from __future__ import annotations

import importlib.resources
import json
import os
from pathlib import Path
from typing import Any


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


def write_json_atomic(path: Path, data: Any) -> None:
    """Write JSON so a reader sees the old file or the new one, never half of one."""
    write_text_atomic(path, json.dumps(data, indent=2, sort_keys=True))


def write_text_atomic(path: Path, text: str) -> None:
    """Write ``text`` so a reader sees the old file or the new one, never half of one."""
    tmp = path.with_name(f".{path.name}.tmp")
    try:
        tmp.write_text(text, encoding="utf-8")
        with tmp.open("rb") as handle:
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)

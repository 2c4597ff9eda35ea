"""BM25 over chunk texts with bm25s, rebuilt from the chunk store and persisted beside it.

bm25s has no incremental update; a rebuild of 20k chunks takes about a second, so the index is
rebuilt whenever the chunk set changes and stamped with the store generation.
"""

from __future__ import annotations

import json
import logging
import os
import re
import shutil
import tempfile
from collections.abc import Iterable, Sequence
from pathlib import Path

import bm25s
import numpy as np
import Stemmer

logging.getLogger("bm25s").setLevel(logging.WARNING)

# Keep one-character tokens: "PD-1", "IL-12" and "HR 0.46" need their digits.
TOKEN_PATTERN = r"(?u)\b\w+\b"
_STEMMER = Stemmer.Stemmer("english")
_WORD = re.compile(TOKEN_PATTERN)


def tokenize(texts: Sequence[str]) -> list[list[str]]:
    return bm25s.tokenize(
        list(texts),
        token_pattern=TOKEN_PATTERN,
        stopwords="en",
        stemmer=_STEMMER,
        return_ids=False,
        show_progress=False,
    )


def query_terms(text: str) -> list[str]:
    """Surface words of a query that survive stop-word removal (used to explain matches)."""
    stems = set(tokenize([text])[0])
    return [w for w in _WORD.findall(text) if _STEMMER.stemWord(w.lower()) in stems]


class LexicalIndex:
    """BM25 (Lucene variant, k1=1.2, b=0.75) over chunk ids."""

    def __init__(self) -> None:
        self._bm25: bm25s.BM25 | None = None
        self._ids = np.zeros(0, dtype=np.int64)
        self._position: dict[int, int] = {}

    def __len__(self) -> int:
        return len(self._ids)

    @classmethod
    def build(cls, rows: Iterable[tuple[int, str]]) -> LexicalIndex:
        index = cls()
        ids: list[int] = []
        texts: list[str] = []
        for row_id, text in rows:
            ids.append(row_id)
            texts.append(text)
        index._set_ids(np.asarray(ids, dtype=np.int64))
        if texts:
            bm25 = bm25s.BM25(k1=1.2, b=0.75, method="lucene")
            bm25.index(tokenize(texts), show_progress=False)
            index._bm25 = bm25
        return index

    def _set_ids(self, ids: np.ndarray) -> None:
        self._ids = ids
        self._position = {int(i): p for p, i in enumerate(ids.tolist())}

    def search(
        self, query: str, k: int, allowed: np.ndarray | None = None
    ) -> tuple[np.ndarray, np.ndarray]:
        """Return (scores, ids) of the best ``k`` chunks; zero-score matches are dropped."""
        if self._bm25 is None or k <= 0:
            return np.zeros(0, np.float32), np.zeros(0, np.int64)
        tokens = tokenize([query])
        vocab = self._bm25.vocab_dict
        if not any(t in vocab for t in tokens[0]):
            return np.zeros(0, np.float32), np.zeros(0, np.int64)
        tokens = [[t for t in tokens[0] if t in vocab]]
        mask = None
        if allowed is not None:
            mask = np.zeros(len(self._ids), dtype=np.float32)
            positions = [self._position[i] for i in allowed.tolist() if i in self._position]
            mask[positions] = 1.0
        k = min(k, len(self._ids))
        docs, scores = self._bm25.retrieve(
            tokens, k=k, show_progress=False, n_threads=1, weight_mask=mask
        )
        docs, scores = docs[0], scores[0]
        keep = scores > 0
        return scores[keep].astype(np.float32), self._ids[docs[keep]]

    # -- persistence --------------------------------------------------------------------------

    def save(self, path: Path) -> None:
        """Write into a fresh folder and rename it into place (atomic for readers)."""
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(dir=path.parent, prefix=f".{path.name}."))
        try:
            np.save(tmp / "ids.npy", self._ids)
            if self._bm25 is not None:
                self._bm25.save(str(tmp / "bm25"), show_progress=False)
            (tmp / "ok.json").write_text(json.dumps({"n": len(self._ids)}))
            if path.exists():
                shutil.rmtree(path)
            os.replace(tmp, path)
        finally:
            if tmp.exists():
                shutil.rmtree(tmp, ignore_errors=True)

    @classmethod
    def load(cls, path: Path) -> LexicalIndex:
        if not (path / "ok.json").is_file():
            raise FileNotFoundError(path)
        index = cls()
        index._set_ids(np.load(path / "ids.npy"))
        if (path / "bm25").is_dir():
            index._bm25 = bm25s.BM25.load(str(path / "bm25"), show_progress=False, verbosity=0)
        return index

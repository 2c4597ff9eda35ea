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


class _Field:
    """One BM25 (Lucene variant, k1=1.2, b=0.75) over texts keyed by chunk id."""

    def __init__(self, ids: np.ndarray, bm25: bm25s.BM25 | None) -> None:
        self.ids = ids
        self.bm25 = bm25
        self.position = {int(i): p for p, i in enumerate(ids.tolist())}

    @classmethod
    def build(cls, rows: Iterable[tuple[int, str]]) -> _Field:
        ids: list[int] = []
        texts: list[str] = []
        for row_id, text in rows:
            ids.append(row_id)
            texts.append(text)
        bm25 = None
        if texts:
            bm25 = bm25s.BM25(k1=1.2, b=0.75, method="lucene")
            bm25.index(tokenize(texts), show_progress=False)
        return cls(np.asarray(ids, dtype=np.int64), bm25)

    def search(
        self, query: str, k: int, allowed: np.ndarray | None
    ) -> tuple[np.ndarray, np.ndarray]:
        if self.bm25 is None or k <= 0:
            return np.zeros(0, np.float32), np.zeros(0, np.int64)
        vocab = self.bm25.vocab_dict
        tokens = [[t for t in tokenize([query])[0] if t in vocab]]
        if not tokens[0]:
            return np.zeros(0, np.float32), np.zeros(0, np.int64)
        mask = None
        if allowed is not None:
            mask = np.zeros(len(self.ids), dtype=np.float32)
            positions = [self.position[i] for i in allowed.tolist() if i in self.position]
            mask[positions] = 1.0
        k = min(k, len(self.ids))
        docs, scores = self.bm25.retrieve(
            tokens, k=k, show_progress=False, n_threads=1, weight_mask=mask
        )
        docs, scores = docs[0], scores[0]
        keep = scores > 0
        return scores[keep].astype(np.float32), self.ids[docs[keep]]

    def save(self, folder: Path, name: str) -> None:
        np.save(folder / f"{name}_ids.npy", self.ids)
        if self.bm25 is not None:
            self.bm25.save(str(folder / name), show_progress=False)

    @classmethod
    def load(cls, folder: Path, name: str) -> _Field:
        bm25 = None
        if (folder / name).is_dir():
            bm25 = bm25s.BM25.load(str(folder / name), show_progress=False, verbosity=0)
        return cls(np.load(folder / f"{name}_ids.npy"), bm25)


# What each field indexes: a chunk's own text (with its title and section path), and the text
# around it, from the chunk before to the chunk after (``ChunkStore.context_rows``).
FIELDS = ("chunk", "context")
_FORMAT = 2  # 1: the chunk field alone


class LexicalIndex:
    """BM25 over chunk ids, one index per field (see ``FIELDS``)."""

    def __init__(self, fields: dict[str, _Field] | None = None) -> None:
        empty = _Field(np.zeros(0, dtype=np.int64), None)
        self._fields = fields or dict.fromkeys(FIELDS, empty)

    def __len__(self) -> int:
        return len(self._ids)

    @property
    def _ids(self) -> np.ndarray:
        return self._fields["chunk"].ids

    @classmethod
    def build(
        cls, rows: Iterable[tuple[int, str]], context: Iterable[tuple[int, str]]
    ) -> LexicalIndex:
        """From (id, text) rows and (id, surrounding text) rows."""
        return cls({"chunk": _Field.build(rows), "context": _Field.build(context)})

    def search(
        self, query: str, k: int, allowed: np.ndarray | None = None, field: str = "chunk"
    ) -> tuple[np.ndarray, np.ndarray]:
        """Return (scores, ids) of the best ``k`` chunks; zero-score matches are dropped."""
        return self._fields[field].search(query, k, allowed)

    # -- persistence --------------------------------------------------------------------------

    @staticmethod
    def current(path: Path) -> bool:
        """Whether ``path`` holds a saved index of this format (an older one is rebuilt)."""
        try:
            return json.loads((path / "ok.json").read_text()).get("format") == _FORMAT
        except (OSError, ValueError):
            return False

    def save(self, path: Path) -> None:
        """Write into a fresh folder and rename it into place (atomic for readers)."""
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(dir=path.parent, prefix=f".{path.name}."))
        try:
            for name, field in self._fields.items():
                field.save(tmp, name)
            (tmp / "ok.json").write_text(json.dumps({"n": len(self._ids), "format": _FORMAT}))
            if path.exists():
                shutil.rmtree(path)
            os.replace(tmp, path)
        finally:
            if tmp.exists():
                shutil.rmtree(tmp, ignore_errors=True)

    @classmethod
    def load(cls, path: Path) -> LexicalIndex:
        """A saved index; FileNotFoundError when there is none of this format."""
        if not cls.current(path):
            raise FileNotFoundError(path)
        return cls({name: _Field.load(path, name) for name in FIELDS})

"""Benchmark readers: the shared JSONL schema (../shared/datasets) and standard BEIR folders.

Shared schema: ``corpus.jsonl`` rows ``{"id", "title", "text", ...}``; ``questions_<split>.jsonl``
(or ``questions.jsonl``) rows ``{"id", "question", "answer", "long_answer"?, "gold_ids", ...}``;
optional ``qrels/<split>.tsv``. BEIR: ``corpus.jsonl`` (``_id``/``title``/``text``),
``queries.jsonl`` (``_id``/``text``), ``qrels/<split>.tsv`` (query-id, corpus-id, score).
"""

from __future__ import annotations

import csv
import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from rag.errors import ConfigError


@dataclass(slots=True)
class CorpusDoc:
    id: str
    title: str
    text: str
    extra: dict[str, Any] = field(default_factory=dict)


@dataclass(slots=True)
class Question:
    id: str
    text: str
    answer: Any = None
    long_answer: str | None = None
    gold_ids: list[str] = field(default_factory=list)
    extra: dict[str, Any] = field(default_factory=dict)


@dataclass
class Dataset:
    name: str
    path: Path
    corpus: list[CorpusDoc]
    questions: list[Question]
    qrels: dict[str, dict[str, int]]  # question id -> {doc id: relevance}

    def subset(self, limit: int | None, seed: int = 0) -> Dataset:
        """A reproducible sample of questions (the corpus stays whole)."""
        if not limit or limit >= len(self.questions):
            return self
        import random

        picked = sorted(random.Random(seed).sample(range(len(self.questions)), limit))
        return self._with_questions([self.questions[i] for i in picked])

    def half(self, half: str | None) -> Dataset:
        """The questions of one half (``tune`` / ``report``, by the id hash; None = all)."""
        from rag.eval.splits import select_half

        if half in (None, "all"):
            return self
        return self._with_questions(select_half(self.questions, half))

    def _with_questions(self, questions: list[Question]) -> Dataset:
        keep = {q.id for q in questions}
        return Dataset(
            self.name,
            self.path,
            self.corpus,
            questions,
            {k: v for k, v in self.qrels.items() if k in keep},
        )


def _jsonl(path: Path) -> Iterator[dict[str, Any]]:
    with path.open(encoding="utf-8") as handle:
        for line_no, line in enumerate(handle, start=1):
            line = line.strip()
            if not line:
                continue
            try:
                yield json.loads(line)
            except json.JSONDecodeError as exc:
                raise ConfigError(f"{path}:{line_no}: not valid JSON ({exc.msg})") from exc


def _qrels(path: Path) -> dict[str, dict[str, int]]:
    out: dict[str, dict[str, int]] = {}
    with path.open(encoding="utf-8") as handle:
        rows = csv.reader(handle, delimiter="\t")
        for row in rows:
            if not row or row[0] in ("query-id", "query_id", "qid"):
                continue
            if len(row) == 4:  # TREC: qid 0 docid rel
                qid, _, doc, rel = row
            else:
                qid, doc, rel = row[:3]
            if int(rel) > 0:
                out.setdefault(qid, {})[doc] = int(rel)
    return out


def load_shared(path: Path, split: str = "dev") -> Dataset:
    corpus = [
        CorpusDoc(
            str(r["id"]),
            r.get("title") or "",
            r.get("text") or "",
            {k: v for k, v in r.items() if k not in ("id", "title", "text")},
        )
        for r in _jsonl(path / "corpus.jsonl")
    ]
    qfile = path / f"questions_{split}.jsonl"
    if not qfile.is_file():
        qfile = path / "questions.jsonl"
    if not qfile.is_file():
        raise ConfigError(f"no questions_{split}.jsonl or questions.jsonl in {path}")
    questions = []
    for r in _jsonl(qfile):
        questions.append(
            Question(
                id=str(r["id"]),
                text=r["question"],
                answer=r.get("answer"),
                long_answer=r.get("long_answer"),
                gold_ids=[str(g) for g in r.get("gold_ids", [])],
                extra={
                    k: v
                    for k, v in r.items()
                    if k not in ("id", "question", "answer", "long_answer", "gold_ids")
                },
            )
        )
    qrels_file = path / "qrels" / f"{split}.tsv"
    if qrels_file.is_file():
        qrels = _qrels(qrels_file)
    else:
        qrels = {q.id: dict.fromkeys(q.gold_ids, 1) for q in questions if q.gold_ids}
    return Dataset(path.name, path, corpus, questions, qrels)


def load_beir(path: Path, split: str = "test") -> Dataset:
    qrels_file = path / "qrels" / f"{split}.tsv"
    if not qrels_file.is_file():
        raise ConfigError(f"BEIR folder {path} has no qrels/{split}.tsv")
    qrels = _qrels(qrels_file)
    corpus = [
        CorpusDoc(str(r["_id"]), r.get("title") or "", r.get("text") or "")
        for r in _jsonl(path / "corpus.jsonl")
    ]
    questions = [
        Question(id=str(r["_id"]), text=r["text"], gold_ids=sorted(qrels.get(str(r["_id"]), {})))
        for r in _jsonl(path / "queries.jsonl")
        if str(r["_id"]) in qrels
    ]
    return Dataset(path.name, path, corpus, questions, qrels)


def load_dataset(path: Path | str, split: str = "dev") -> Dataset:
    """Detect the format: BEIR has queries.jsonl, the shared schema questions_*.jsonl."""
    path = Path(path)
    if not (path / "corpus.jsonl").is_file():
        raise ConfigError(f"{path} has no corpus.jsonl")
    if (path / "queries.jsonl").is_file():
        return load_beir(path, split)
    return load_shared(path, split)


def shared_datasets_dir() -> Path:
    """``../shared/datasets`` beside the checkout (override with RAG_DATASETS)."""
    import os

    env = os.environ.get("RAG_DATASETS")
    if env:
        return Path(env)
    here = Path(__file__).resolve()
    for parent in here.parents:
        candidate = parent.parent / "shared" / "datasets"
        if candidate.is_dir():
            return candidate
    return Path.cwd().parent / "shared" / "datasets"

"""Retrieval benchmark: BM25, dense, hybrid and hybrid + rerank on one dataset.

Reads the shared JSONL schema or a BEIR folder, indexes the corpus through the real pipeline
(cached between runs), and scores each configuration with ranx. Rerankers trained on the same
development split are evaluated cross-fitted: a question is reranked only by the model trained
on the other fold, so no question is scored by a model that saw it.
"""

from __future__ import annotations

import hashlib
import json
import time
import zlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from rag.eval.datasets import Dataset, Question
from rag.eval.metrics import ir_metrics, percentiles

from rag.chunk.chunker import ALGORITHM
from rag.models import cache_root, sha256_file
from rag.rerank import Reranker
from rag.settings import Settings

BASE_METRICS = ["ndcg@10", "recall@10", "recall@100", "mrr@10"]


def fold_of(dataset: str, question_id: str, folds: int = 2) -> int:
    """Stable fold assignment shared by reranker training and evaluation."""
    return zlib.crc32(f"{dataset}:{question_id}".encode()) % folds


def dataset_metrics(ds: Dataset) -> list[str]:
    if ds.name == "pubmedqa":
        return ["recall@1", "recall@5", *BASE_METRICS]
    return list(BASE_METRICS)


def index_identity(settings: Settings) -> dict[str, Any]:
    """The settings that decide what an index holds (cache keys for built indexes).

    Batch size and threads change the speed of indexing, not what is indexed.
    """
    embed = settings.embed.model_dump(mode="json", exclude={"batch_size", "threads"})
    if embed.get("dimensions") is None:  # added later: unset, it keeps earlier cache keys
        embed.pop("dimensions", None)
    return {"chunker": ALGORITHM, "chunk": settings.chunk.model_dump(), "embed": embed}


def identity_digest(settings: Settings, **extra: Any) -> str:
    """A short, stable digest of what an index holds (plus ``extra``): a cache folder name."""
    key = json.dumps({**extra, **index_identity(settings)}, sort_keys=True)
    return hashlib.sha256(key.encode()).hexdigest()[:12]


def bench_index_dir(ds: Dataset, settings: Settings) -> Path:
    """A cached index per corpus + embedding/chunking settings (reused across runs).

    Keyed by the corpus file's content, not its path or mtime: the shared datasets are copied
    afresh onto every machine, and a new mtime must not cost a re-index.
    """
    digest = identity_digest(settings, corpus_sha256=sha256_file(ds.path / "corpus.jsonl"))
    return cache_root() / "bench-index" / f"{ds.name}-{digest}"


def build_assistant(
    ds: Dataset, settings: Settings, progress: bool = True, *, generator: Any = None
) -> Any:
    from rag.assistant import Assistant
    from rag.ingest.records import record_document

    staged = settings.model_copy(deep=True)
    staged.index.dir = bench_index_dir(ds, settings)
    staged.index.auto_seed = False
    assistant = Assistant(staged, generator=generator)
    have = {d.doc_id for d in assistant.index.documents()} if staged.index.dir.exists() else set()
    missing = [d for d in ds.corpus if d.id not in have]
    if missing:
        if progress:
            print(f"indexing {len(missing)} {ds.name} documents into {staged.index.dir} ...")
        docs = (
            record_document(d.id, d.title, d.text, meta={"pmid": str(d.extra.get("pmid") or "")})
            for d in missing
        )
        t = time.perf_counter()
        assistant.add_documents(docs, total=len(missing))
        if progress:
            print(f"  indexed in {time.perf_counter() - t:.0f} s")
    return assistant


@dataclass
class Row:
    name: str
    metrics: dict[str, float]
    latency_ms: dict[str, float]
    pmid_metrics: dict[str, float] | None = None


RerankerFor = Callable[[Question], Reranker | None]


def run_config(
    assistant: Any,
    ds: Dataset,
    *,
    name: str,
    mode: str,
    reranker_for: RerankerFor | None = None,
    depth: int = 100,
) -> tuple[Row, dict[str, dict[str, float]]]:
    run: dict[str, dict[str, float]] = {}
    pmid_run: dict[str, dict[str, float]] = {}
    latencies: list[float] = []
    pmid_of = {d.id: d.extra.get("pmid") for d in ds.corpus if d.extra.get("pmid")}
    for q in ds.questions:
        reranker = reranker_for(q) if reranker_for else None
        t = time.perf_counter()
        result = assistant.retriever.run(
            q.text,
            k=depth,
            mode=mode,
            rerank=reranker is not None,
            reranker=reranker,
            diversify=False,
        )
        latencies.append((time.perf_counter() - t) * 1000)
        ranking: dict[str, float] = {}
        pmids: dict[str, float] = {}
        for hit in result.hits:
            doc = hit.chunk.doc_id
            if doc not in ranking:
                ranking[doc] = 1.0 / (len(ranking) + 1)
            pmid = pmid_of.get(doc)
            if pmid and pmid not in pmids:
                pmids[pmid] = 1.0 / (len(pmids) + 1)
        run[q.id] = ranking
        pmid_run[q.id] = pmids
    row = Row(name, ir_metrics(ds.qrels, run, dataset_metrics(ds)), percentiles(latencies))
    if pmid_of:
        pmid_qrels = {
            q.id: dict.fromkeys(q.extra.get("gold_pmids", []), 1)
            for q in ds.questions
            if q.extra.get("gold_pmids")
        }
        row.pmid_metrics = ir_metrics(pmid_qrels, pmid_run, ["recall@10", "ndcg@10"])
    return row, run


def print_table(ds: Dataset, rows: Sequence[Row]) -> str:
    metrics = dataset_metrics(ds)
    header = f"{'configuration':22}" + "".join(f"{m:>11}" for m in metrics)
    header += f"{'p50 ms':>9}{'p95 ms':>9}"
    if rows and rows[0].pmid_metrics is not None:
        header += f"{'PMID R@10':>11}"
    lines = [f"{ds.name} ({len(ds.questions)} questions, {len(ds.corpus)} documents)", header]
    for r in rows:
        line = f"{r.name:22}" + "".join(f"{r.metrics[m]:>11.4f}" for m in metrics)
        line += f"{r.latency_ms['p50']:>9.1f}{r.latency_ms['p95']:>9.1f}"
        if r.pmid_metrics is not None:
            line += f"{r.pmid_metrics['recall@10']:>11.4f}"
        lines.append(line)
    text = "\n".join(lines)
    print(text)
    return text


def rows_to_json(ds: Dataset, rows: Sequence[Row], extra: dict[str, Any]) -> dict[str, Any]:
    return {
        "dataset": ds.name,
        "path": str(ds.path),
        "questions": len(ds.questions),
        "documents": len(ds.corpus),
        "rows": [
            {
                "name": r.name,
                "metrics": r.metrics,
                "latency_ms": r.latency_ms,
                "pmid_metrics": r.pmid_metrics,
            }
            for r in rows
        ],
        **extra,
    }


def rerankers_from_options(
    ds: Dataset, settings: Settings, model: Path | None, folds: Path | None
) -> RerankerFor | None:
    """One reranker for every question, or cross-fitted fold models, or the configured one."""
    from rag.rerank.factory import load_reranker

    if folds is not None:
        by_fold = [
            load_reranker(
                settings.rerank.model_copy(
                    update={"method": "cross-encoder", "model": str(folds / f"fold-{f}")}
                )
            )
            for f in (0, 1)
        ]
        # A question in fold f is scored by the model trained on the other fold.
        return lambda q: by_fold[1 - fold_of(ds.name, q.id)]
    if model is not None:
        single = load_reranker(
            settings.rerank.model_copy(update={"method": "cross-encoder", "model": str(model)})
        )
        return lambda q: single
    configured = load_reranker(settings.rerank, settings.generate)
    return (lambda q: configured) if configured is not None else None


def reranker_provenance(model: Path | None, folds: Path | None) -> dict[str, Any] | None:
    """Which checkpoints scored the rerank row: folder, recipe and content fingerprint."""
    from rag.models import fingerprint_dir

    if folds is not None:
        paths = [folds / f"fold-{f}" for f in (0, 1)]
    elif model is not None:
        paths = [model]
    else:
        return None
    out: dict[str, Any] = {"cross_fitted": folds is not None, "checkpoints": []}
    for path in paths:
        recipe = path / "recipe.json"
        info = json.loads(recipe.read_text()) if recipe.is_file() else {}
        out["checkpoints"].append(
            {
                "path": str(path),
                "recipe": (info.get("recipe") or {}).get("name"),
                "epochs": (info.get("recipe") or {}).get("epochs"),
                "fingerprint": fingerprint_dir(path) if path.is_dir() else None,
            }
        )
    return out

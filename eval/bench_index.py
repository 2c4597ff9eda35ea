"""Indexing throughput benchmark (issue: installable assistant / index).

Runs two phases in separate processes so each has its own peak-RSS figure:
- ``plain``: the baseline a user would write — sentence-transformers fp32, batch 32, whole
  abstracts (title + text), exact inner-product search;
- ``pipeline``: this project's ingest -> chunk -> embed -> FAISS + BM25 + SQLite path.
Both are scored on the same dev questions with ranx; ratios are taken within the run.

    python -m rag.eval.bench_index --dataset ../shared/datasets/scifact \
        --out eval/results/index_scifact.json
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
from rag.eval.datasets import Dataset, load_dataset
from rag.eval.metrics import ir_metrics, percentiles


def _peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _dir_bytes(path: Path) -> int:
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())


def phase_plain(ds: Dataset) -> dict[str, Any]:
    import faiss
    from sentence_transformers import SentenceTransformer

    from rag.embed.sentence import resolve_model_dir

    model = SentenceTransformer(str(resolve_model_dir("all-MiniLM-L6-v2")), device="cpu")
    texts = [f"{d.title} {d.text}".strip() for d in ds.corpus]
    start = time.perf_counter()
    vectors = model.encode(texts, batch_size=32, normalize_embeddings=True, convert_to_numpy=True)
    seconds = time.perf_counter() - start
    index = faiss.IndexFlatIP(vectors.shape[1])
    index.add(vectors.astype(np.float32))
    queries = model.encode([q.text for q in ds.questions], batch_size=32, normalize_embeddings=True)
    _, found = index.search(queries.astype(np.float32), 10)
    run = {
        q.id: {ds.corpus[j].id: 1.0 / (r + 1) for r, j in enumerate(row) if j >= 0}
        for q, row in zip(ds.questions, found, strict=True)
    }
    return {
        "docs": len(texts),
        "encode_seconds": seconds,
        "docs_per_s": len(texts) / seconds,
        "peak_rss_mb": _peak_rss_mb(),
        "dense": ir_metrics(ds.qrels, run, ["ndcg@10", "recall@10"]),
    }


def phase_pipeline(ds: Dataset, overrides: list[str]) -> dict[str, Any]:
    from rag.eval.retrieval import doc_run

    from rag.assistant import Assistant
    from rag.ingest.records import record_document
    from rag.settings import load_settings

    workdir = Path(tempfile.mkdtemp(prefix="bench-index-"))
    try:
        settings = load_settings(
            index_dir=workdir / "index", overrides=["index.auto_seed=false", *overrides]
        )
        assistant = Assistant(settings)
        t_load = time.perf_counter()
        assistant.embedder  # noqa: B018 - load the model outside the timed region
        load_s = time.perf_counter() - t_load
        docs = (record_document(d.id, d.title, d.text) for d in ds.corpus)
        start = time.perf_counter()
        report = assistant.add_documents(docs, total=len(ds.corpus))
        seconds = time.perf_counter() - start
        chunks = sum(r.chunks for r in report.results)
        size = _dir_bytes(workdir / "index")
        latencies = []
        for q in ds.questions:
            t = time.perf_counter()
            assistant.search(q.text, k=10)
            latencies.append((time.perf_counter() - t) * 1000)
        dense = doc_run(assistant, ds.questions, mode="dense", depth=100)
        hybrid = doc_run(assistant, ds.questions, mode="hybrid", depth=100)
        return {
            "docs": len(ds.corpus),
            "chunks": chunks,
            "model_load_seconds": load_s,
            "index_seconds": seconds,
            "docs_per_s": len(ds.corpus) / seconds,
            "chunks_per_s": chunks / seconds,
            "peak_rss_mb": _peak_rss_mb(),
            "index_bytes": size,
            "search_ms": percentiles(latencies),
            "dense": ir_metrics(ds.qrels, dense, ["ndcg@10", "recall@10"]),
            "hybrid": ir_metrics(ds.qrels, hybrid, ["ndcg@10", "recall@10"]),
            "settings": overrides,
        }
    finally:
        shutil.rmtree(workdir, ignore_errors=True)


def _run_phase(phase: str, args: argparse.Namespace) -> dict[str, Any]:
    cmd = [
        sys.executable,
        "-m",
        "rag.eval.bench_index",
        "--phase",
        phase,
        "--dataset",
        str(args.dataset),
        "--split",
        args.split,
    ]
    for item in args.set or []:
        cmd += ["--set", item]
    done = subprocess.run(
        cmd,
        check=True,
        capture_output=True,
        text=True,
        env=os.environ | {"TOKENIZERS_PARALLELISM": "false"},
    )
    return json.loads(done.stdout.strip().splitlines()[-1])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dataset", type=Path, required=True)
    parser.add_argument("--split", default="dev")
    parser.add_argument("--out", type=Path)
    parser.add_argument("--phase", choices=["plain", "pipeline"])
    parser.add_argument("--set", action="append", help="settings override for the pipeline")
    args = parser.parse_args(argv)
    if args.phase:
        ds = load_dataset(args.dataset, args.split)
        result = phase_plain(ds) if args.phase == "plain" else phase_pipeline(ds, args.set or [])
        print(json.dumps(result))
        return 0
    plain = _run_phase("plain", args)
    pipeline = _run_phase("pipeline", args)
    result = {
        "dataset": str(args.dataset),
        "split": args.split,
        "plain": plain,
        "pipeline": pipeline,
        "throughput_ratio": pipeline["docs_per_s"] / plain["docs_per_s"],
        "ndcg10_delta": pipeline["dense"]["ndcg@10"] - plain["dense"]["ndcg@10"],
    }
    _print(result)
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(result, indent=2))
    return 0


def _print(r: dict[str, Any]) -> None:
    p, q = r["plain"], r["pipeline"]
    rows = [
        ("documents/s", f"{p['docs_per_s']:.1f}", f"{q['docs_per_s']:.1f}"),
        ("chunks/s", "-", f"{q['chunks_per_s']:.1f}"),
        ("peak RSS (MB)", f"{p['peak_rss_mb']:.0f}", f"{q['peak_rss_mb']:.0f}"),
        ("index size (MB)", "-", f"{q['index_bytes'] / 1e6:.1f}"),
        ("search p50/p95 (ms)", "-", f"{q['search_ms']['p50']:.1f} / {q['search_ms']['p95']:.1f}"),
        ("dense nDCG@10", f"{p['dense']['ndcg@10']:.4f}", f"{q['dense']['ndcg@10']:.4f}"),
        ("dense recall@10", f"{p['dense']['recall@10']:.4f}", f"{q['dense']['recall@10']:.4f}"),
        ("hybrid nDCG@10", "-", f"{q['hybrid']['ndcg@10']:.4f}"),
    ]
    print(f"{'':24}{'plain ST fp32':>16}{'pipeline':>16}")
    for name, a, b in rows:
        print(f"{name:24}{a:>16}{b:>16}")
    print(
        f"throughput ratio pipeline/plain: {r['throughput_ratio']:.2f}x; "
        f"nDCG@10 delta: {r['ndcg10_delta']:+.4f}"
    )


if __name__ == "__main__":
    raise SystemExit(main())

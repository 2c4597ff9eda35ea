"""Indexing throughput benchmark (issue: installable assistant / index).

Runs two phases in separate processes so each has its own peak-RSS figure:
- ``plain``: the baseline a user would write — sentence-transformers fp32, batch 32, whole
  abstracts (title + text, truncated by the model at 256 tokens), exact inner-product search;
- ``plain-bf16``: the same inputs through the project's encoder setting (bfloat16 on the CPU's
  AMX units) — the encoder speed-up on identical work, and its nDCG cost;
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
import sqlite3
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
from rag.eval.datasets import Dataset, load_dataset
from rag.eval.metrics import ir_metrics, percentiles

from rag.store.index import DB_NAME


def _peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _dir_bytes(path: Path) -> int:
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())


def phase_plain(ds: Dataset, dtype: str = "float32") -> dict[str, Any]:
    import faiss
    import torch
    from sentence_transformers import SentenceTransformer

    from rag.embed.sentence import resolve_model_dir

    kwargs = {"torch_dtype": torch.bfloat16} if dtype == "bfloat16" else {}
    model = SentenceTransformer(
        str(resolve_model_dir("all-MiniLM-L6-v2")), device="cpu", model_kwargs=kwargs
    )
    texts = [f"{d.title} {d.text}".strip() for d in ds.corpus]
    lengths = [len(ids) for ids in model.tokenizer(texts, verbose=False)["input_ids"]]
    tokens = sum(min(n, model.max_seq_length) for n in lengths)
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
        "dtype": dtype,
        "docs": len(texts),
        "encode_seconds": seconds,
        "docs_per_s": len(texts) / seconds,
        "tokens_embedded": tokens,
        "tokens_per_s": tokens / seconds,
        "docs_truncated": sum(n > model.max_seq_length for n in lengths) / len(lengths),
        "peak_rss_mb": _peak_rss_mb(),
        "dense": ir_metrics(ds.qrels, run, ["ndcg@10", "recall@10"]),
    }


def _chunk_tokens(assistant: Any, db: Path) -> int:
    """Tokens the encoder saw: every chunk plus [CLS] and [SEP]."""
    with sqlite3.connect(db) as conn:
        texts = [row[0] for row in conn.execute("SELECT text FROM chunks")]
    return sum(n + 2 for n in assistant.embedder.count_tokens(texts))


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
        tokens = _chunk_tokens(assistant, workdir / "index" / DB_NAME)
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
            "tokens_embedded": tokens,
            "tokens_per_s": tokens / seconds,
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
    parser.add_argument("--phase", choices=["plain", "plain-bf16", "pipeline"])
    parser.add_argument("--set", action="append", help="settings override for the pipeline")
    args = parser.parse_args(argv)
    if args.phase:
        ds = load_dataset(args.dataset, args.split)
        if args.phase == "pipeline":
            result = phase_pipeline(ds, args.set or [])
        else:
            result = phase_plain(ds, "bfloat16" if args.phase == "plain-bf16" else "float32")
        print(json.dumps(result))
        return 0
    plain = _run_phase("plain", args)
    bf16 = _run_phase("plain-bf16", args)
    pipeline = _run_phase("pipeline", args)
    result = {
        "dataset": str(args.dataset),
        "split": args.split,
        "plain": plain,
        "plain_bf16": bf16,
        "pipeline": pipeline,
        "throughput_ratio": pipeline["docs_per_s"] / plain["docs_per_s"],
        "ndcg10_delta": pipeline["dense"]["ndcg@10"] - plain["dense"]["ndcg@10"],
        # Identical inputs, only the encoder precision differs.
        "encoder_ratio_bf16": bf16["docs_per_s"] / plain["docs_per_s"],
        "ndcg10_delta_bf16": bf16["dense"]["ndcg@10"] - plain["dense"]["ndcg@10"],
        # The pipeline embeds every token of every abstract (plain truncates at 256).
        "token_throughput_ratio": pipeline["tokens_per_s"] / plain["tokens_per_s"],
    }
    _print(result)
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(result, indent=2))
    return 0


def _print(r: dict[str, Any]) -> None:
    p, b, q = r["plain"], r["plain_bf16"], r["pipeline"]
    rows = [
        ("documents/s", *(f"{x['docs_per_s']:.1f}" for x in (p, b, q))),
        ("tokens embedded/s", *(f"{x['tokens_per_s']:.0f}" for x in (p, b, q))),
        ("tokens embedded", *(f"{x['tokens_embedded']}" for x in (p, b, q))),
        ("docs truncated", f"{p['docs_truncated']:.0%}", f"{b['docs_truncated']:.0%}", "0%"),
        ("chunks/s", "-", "-", f"{q['chunks_per_s']:.1f}"),
        ("peak RSS (MB)", *(f"{x['peak_rss_mb']:.0f}" for x in (p, b, q))),
        ("index size (MB)", "-", "-", f"{q['index_bytes'] / 1e6:.1f}"),
        (
            "search p50/p95 (ms)",
            "-",
            "-",
            f"{q['search_ms']['p50']:.1f} / {q['search_ms']['p95']:.1f}",
        ),
        ("dense nDCG@10", *(f"{x['dense']['ndcg@10']:.4f}" for x in (p, b, q))),
        ("dense recall@10", *(f"{x['dense']['recall@10']:.4f}" for x in (p, b, q))),
        ("hybrid nDCG@10", "-", "-", f"{q['hybrid']['ndcg@10']:.4f}"),
    ]
    print(f"{'':22}{'plain ST fp32':>15}{'plain ST bf16':>15}{'pipeline':>15}")
    for name, *cells in rows:
        print(f"{name:22}" + "".join(f"{c:>15}" for c in cells))
    print(
        f"encoder bf16/fp32 on identical inputs: {r['encoder_ratio_bf16']:.2f}x, "
        f"nDCG@10 {r['ndcg10_delta_bf16']:+.4f}\n"
        f"pipeline/plain: {r['throughput_ratio']:.2f}x documents/s, "
        f"{r['token_throughput_ratio']:.2f}x tokens/s, nDCG@10 {r['ndcg10_delta']:+.4f}"
    )


if __name__ == "__main__":
    raise SystemExit(main())

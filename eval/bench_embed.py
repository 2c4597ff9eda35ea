"""Embedder comparison: each model indexes the same corpus through the real pipeline.

One process per embedder (so each peak RSS is its own), the same chunking, BM25 and fusion
settings; only ``embed.model`` (and any ``--set``) differs. Per embedder: ingest documents/s and
embedded tokens/s (the model's own tokenizer, prompt and special tokens included), peak RSS,
index size on disk, then dense-only and hybrid rows (nDCG@10, recall@10/100, MRR@10, query
latency) scored with ranx like ``rag eval retrieval``.

    python -m rag.eval.bench_embed --dataset ../shared/datasets/scifact \
        --models all-MiniLM-L6-v2,embeddinggemma --out eval/results/embed_scifact.json

``--corpus-limit N`` keeps every document a scored question cites plus a seeded random sample
of the rest up to N (for corpora too large to embed at one thread; figures then say so).
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import sqlite3
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from rag.eval.bench_index import _dir_bytes, _peak_rss_mb
from rag.eval.bench_retrieval import run_config
from rag.eval.datasets import Dataset, load_dataset

from rag.store.index import DB_NAME

MODES = (("dense", "dense"), ("hybrid", "hybrid"))


def sample(ds: Dataset, limit: int | None, corpus_limit: int | None, seed: int) -> Dataset:
    """Questions sampled first, then the corpus cut around their gold documents."""
    ds = ds.subset(limit, seed)
    if not corpus_limit or corpus_limit >= len(ds.corpus):
        return ds
    gold = {doc for rels in ds.qrels.values() for doc in rels}
    rest = [d.id for d in ds.corpus if d.id not in gold]
    keep = gold | set(random.Random(seed).sample(rest, max(0, corpus_limit - len(gold))))
    return Dataset(ds.name, ds.path, [d for d in ds.corpus if d.id in keep], ds.questions, ds.qrels)


def phase(ds: Dataset, model: str, overrides: list[str]) -> dict[str, Any]:
    """Index ``ds`` with one embedder in a fresh folder and score it."""
    from rag.assistant import Assistant
    from rag.ingest.records import record_document
    from rag.settings import load_settings

    workdir = Path(tempfile.mkdtemp(prefix="bench-embed-"))
    try:
        settings = load_settings(
            index_dir=workdir / "index",
            overrides=["index.auto_seed=false", f"embed.model={model}", *overrides],
        )
        assistant = Assistant(settings)
        start = time.perf_counter()
        embedder = assistant.embedder
        load_s = time.perf_counter() - start
        docs = (record_document(d.id, d.title, d.text) for d in ds.corpus)
        start = time.perf_counter()
        report = assistant.add_documents(docs, total=len(ds.corpus))
        seconds = time.perf_counter() - start
        with sqlite3.connect(workdir / "index" / DB_NAME) as conn:
            texts = [row[0] for row in conn.execute("SELECT text FROM chunks")]
        prompt = getattr(embedder, "document_prompt", "")
        # What the encoder ran: prompt + chunk, plus the two special tokens each side.
        tokens = sum(n + 2 for n in embedder.count_tokens([prompt + t for t in texts]))
        result: dict[str, Any] = {
            "model": model,
            "dim": embedder.dim,
            "fingerprint": embedder.fingerprint,
            "docs": len(ds.corpus),
            "chunks": sum(r.chunks or 0 for r in report.results),
            "model_load_s": load_s,
            "index_s": seconds,
            "docs_per_s": len(ds.corpus) / seconds,
            "tokens_embedded": tokens,
            "tokens_per_s": tokens / seconds,
            "index_bytes": _dir_bytes(workdir / "index"),
            "settings": settings.embed.model_dump(mode="json"),
        }
        for name, mode in MODES:
            row, _ = run_config(assistant, ds, name=name, mode=mode)
            result[name] = {"metrics": row.metrics, "latency_ms": row.latency_ms}
            if row.pmid_metrics is not None:
                result[name]["pmid_metrics"] = row.pmid_metrics
        result["peak_rss_mb"] = _peak_rss_mb()
        return result
    finally:
        shutil.rmtree(workdir, ignore_errors=True)


def _child(args: argparse.Namespace, model: str) -> dict[str, Any]:
    cmd = [sys.executable, "-m", "rag.eval.bench_embed", "--phase", model]
    cmd += ["--dataset", str(args.dataset), "--split", args.split, "--seed", str(args.seed)]
    for flag, value in (("--limit", args.limit), ("--corpus-limit", args.corpus_limit)):
        if value:
            cmd += [flag, str(value)]
    for item in args.set or []:
        cmd += ["--set", item]
    env = os.environ | {"TOKENIZERS_PARALLELISM": "false"}
    done = subprocess.run(cmd, check=True, stdout=subprocess.PIPE, text=True, env=env)
    return json.loads(done.stdout.strip().splitlines()[-1])


def table(results: list[dict[str, Any]]) -> str:
    head = f"{'embedder':18}{'row':8}{'nDCG@10':>9}{'R@10':>8}{'R@100':>8}{'p50 ms':>9}"
    head += f"{'docs/s':>8}{'tok/s':>8}{'RSS MB':>8}{'index MB':>10}"
    lines = [head]
    for r in results:
        for name, _ in MODES:
            m, lat = r[name]["metrics"], r[name]["latency_ms"]
            line = f"{r['model'][:17]:18}{name:8}{m['ndcg@10']:>9.4f}{m['recall@10']:>8.4f}"
            line += f"{m['recall@100']:>8.4f}{lat['p50']:>9.1f}"
            if name == "dense":
                line += f"{r['docs_per_s']:>8.2f}{r['tokens_per_s']:>8.0f}"
                line += f"{r['peak_rss_mb']:>8.0f}{r['index_bytes'] / 1e6:>10.1f}"
            lines.append(line)
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dataset", type=Path, required=True)
    parser.add_argument("--split", default="dev")
    parser.add_argument("--models", default="all-MiniLM-L6-v2,embeddinggemma")
    parser.add_argument("--limit", type=int, help="score a seeded sample of questions")
    parser.add_argument("--corpus-limit", type=int, help="documents kept (gold always kept)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--set", action="append", help="settings override for every embedder")
    parser.add_argument("--out", type=Path)
    parser.add_argument("--phase", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    ds = sample(load_dataset(args.dataset, args.split), args.limit, args.corpus_limit, args.seed)
    if args.phase:
        print(json.dumps(phase(ds, args.phase, args.set or [])))
        return 0
    results: list[dict[str, Any]] = []
    for model in [m.strip() for m in args.models.split(",") if m.strip()]:
        print(f"{model}: indexing {len(ds.corpus)} documents ...", flush=True)
        results.append(_child(args, model))
        text = table(results)
        print(text, flush=True)
        if args.out:  # after every embedder, so a cut-short run keeps what it measured
            out = {
                "dataset": ds.name,
                "split": args.split,
                "questions": len(ds.questions),
                "documents": len(ds.corpus),
                "limit": args.limit,
                "corpus_limit": args.corpus_limit,
                "seed": args.seed,
                "overrides": args.set or [],
                "threads": os.environ.get("OMP_NUM_THREADS"),
                "table": text,
                "embedders": results,
            }
            args.out.parent.mkdir(parents=True, exist_ok=True)
            args.out.write_text(json.dumps(out, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

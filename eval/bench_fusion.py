"""Retrieval settings side by side on one half of each dataset: how the fusion weights are chosen.

Each configuration is a set of ``retrieve.*`` overrides applied to one cached benchmark index
per dataset (the index does not depend on them), so a grid costs queries, not re-indexing.
Weights are chosen on ``--half tune`` and reported on ``--half report``
(``rag.eval.splits``: halves fixed by a hash of the question id).

    python -m rag.eval.bench_fusion --dataset ../shared/datasets/scifact \
        --dataset ../shared/datasets/bioasq --dataset ../shared/datasets/pubmedqa \
        --half tune --config default: \
        --config ctx:context_weight=0.5,expansion_weight=0.25 --out /tmp/fusion_tune.json
"""

from __future__ import annotations

import argparse
import json
import platform
import time
from pathlib import Path
from typing import Any

from rag.eval.bench_retrieval import build_assistant, run_config
from rag.eval.datasets import load_shared

from rag.settings import RetrieveSettings, Settings


def parse_config(text: str) -> tuple[str, dict[str, Any]]:
    """``name:key=value,key=value`` (values read as JSON: numbers, true/false) → overrides."""
    name, _, body = text.partition(":")
    overrides: dict[str, Any] = {}
    for pair in filter(None, body.split(",")):
        key, _, value = pair.partition("=")
        key = key.strip().removeprefix("retrieve.")
        if key not in RetrieveSettings.model_fields:
            raise SystemExit(f"unknown retrieve setting {key!r} in --config {text!r}")
        try:
            overrides[key] = json.loads(value)
        except ValueError:
            overrides[key] = value
    RetrieveSettings(**overrides)  # a bad value fails here, before any index is read
    return name or body or "default", overrides


def run(
    datasets: list[Path], half: str, configs: list[str], mode: str, limit: int | None = None
) -> dict[str, Any]:
    parsed = [parse_config(c) for c in configs]
    results: dict[str, Any] = {}
    for path in datasets:
        ds = load_shared(path, "dev").half(half).subset(limit)
        assistant = build_assistant(ds, Settings())
        base = assistant.retriever.settings
        rows = []
        for name, overrides in parsed:
            assistant.retriever.settings = base.model_copy(update=overrides)
            row, _ = run_config(assistant, ds, name=name, mode=mode)
            rows.append(
                {
                    "name": name,
                    "overrides": overrides,
                    "metrics": row.metrics,
                    "document_metrics": row.pmid_metrics,  # BioASQ: by PubMed id, not snippet
                    "latency_ms": row.latency_ms,
                }
            )
            shown = " ".join(f"{k} {v:.4f}" for k, v in row.metrics.items())
            print(f"{ds.name} {half} n={len(ds.questions)} {name}: {shown}", flush=True)
        assistant.retriever.settings = base
        results[ds.name] = {"questions": len(ds.questions), "rows": rows}
    return results


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--dataset", type=Path, action="append", required=True)
    parser.add_argument("--half", choices=["tune", "report", "all"], required=True)
    parser.add_argument("--config", action="append", required=True, help="name:key=v,key=v")
    parser.add_argument("--mode", default="hybrid", choices=["hybrid", "lexical", "dense"])
    parser.add_argument("--limit", type=int, help="A seeded sample of each half's questions.")
    parser.add_argument("--out", type=Path)
    args = parser.parse_args(argv)
    started = time.perf_counter()
    results = run(args.dataset, args.half, args.config, args.mode, args.limit)
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        payload = {
            "half": args.half,
            "mode": args.mode,
            "limit": args.limit,
            "datasets": results,
            "machine": platform.processor() or platform.machine(),
            "seconds": round(time.perf_counter() - started, 1),
        }
        args.out.write_text(json.dumps(payload, indent=2))


if __name__ == "__main__":
    main()

"""Calibrate the pre-generation relevance gate on development data.

Answerable = a dev question asked of its own corpus (its gold passage is there); unanswerable =
the same question asked of another benchmark's corpus (different topics, so the answer is
almost never there). For each grid point of (min_relevance, min_term_coverage) the gate's
false-abstention rate on answerable questions and its catch rate on unanswerable ones are
reported; the chosen point keeps false abstentions at or below the budget.

    python -m rag.eval.calibrate_gate --out eval/results/gate_calibration.json
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from rag.eval.bench_retrieval import build_assistant
from rag.eval.datasets import load_dataset, shared_datasets_dir

from rag.answer import term_coverage
from rag.settings import load_settings

PAIRS = (("pubmedqa", "bioasq"), ("bioasq", "pubmedqa"), ("scifact", "bioasq"))


def signals(assistant: Any, questions: list[str]) -> list[tuple[float, float]]:
    out = []
    for q in questions:
        r = assistant.retriever.run(q, k=5, rerank=False)
        best = r.best_dense if r.best_dense is not None else 0.0
        out.append((best, term_coverage(q, [h.chunk.text for h in r.hits[:3]])))
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--limit", type=int, default=200, help="questions per dataset")
    parser.add_argument("--budget", type=float, default=0.02, help="max false-abstention rate")
    parser.add_argument("--out", type=Path)
    args = parser.parse_args(argv)
    root = shared_datasets_dir()
    settings = load_settings()
    datasets = {n: load_dataset(root / n) for n in {n for pair in PAIRS for n in pair}}
    assistants = {n: build_assistant(ds, settings, progress=False) for n, ds in datasets.items()}
    answerable: list[tuple[float, float]] = []
    unanswerable: list[tuple[float, float]] = []
    for asked, other in PAIRS:
        qs = [q.text for q in datasets[asked].subset(args.limit, seed=1).questions]
        answerable += signals(assistants[asked], qs)
        unanswerable += signals(assistants[other], qs)
    grid = []
    for rel in (0.05, 0.1, 0.15, 0.2, 0.25, 0.3, 0.35, 0.4):
        for cov in (0.0, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 1.01):

            def gated(x: tuple[float, float], rel: float = rel, cov: float = cov) -> bool:
                return x[0] < rel and x[1] < cov

            false_abstain = sum(map(gated, answerable)) / len(answerable)
            caught = sum(map(gated, unanswerable)) / len(unanswerable)
            grid.append(
                {
                    "min_relevance": rel,
                    "min_term_coverage": cov,
                    "false_abstention": false_abstain,
                    "unanswerable_caught": caught,
                }
            )
    ok = [g for g in grid if g["false_abstention"] <= args.budget]
    best = max(ok, key=lambda g: (g["unanswerable_caught"], -g["false_abstention"]))
    print(f"{len(answerable)} answerable, {len(unanswerable)} cross-corpus unanswerable")
    print(f"{'rel':>6}{'cov':>6}{'false abst.':>13}{'caught':>9}")
    for g in grid:
        mark = "  <- chosen" if g is best else ""
        print(
            f"{g['min_relevance']:>6.2f}{g['min_term_coverage']:>6.2f}"
            f"{g['false_abstention']:>13.3f}{g['unanswerable_caught']:>9.3f}{mark}"
        )
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(
            json.dumps(
                {
                    "chosen": best,
                    "grid": grid,
                    "budget": args.budget,
                    "n_answerable": len(answerable),
                    "n_unanswerable": len(unanswerable),
                },
                indent=2,
            )
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

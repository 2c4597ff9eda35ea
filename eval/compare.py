"""`rag eval compare RUN_A RUN_B`: paired bootstrap deltas and per-question wins/losses."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from rag.eval.harness import MAIN_METRICS, load_run
from rag.eval.scoring import paired_delta


def compare_runs(a: Path, b: Path, *, seed: int = 0) -> dict[str, Any]:
    _, ra = load_run(a)
    _, rb = load_run(b)
    by_metric: dict[str, Any] = {}
    names = [m for m in MAIN_METRICS if not m.startswith(("abstention_", "yes_no_macro"))]
    names += ["latency.ttft_ms", "latency.total_ms", "latency.retrieval_ms"]
    for name in names:
        va = {r["id"]: r["values"][name] for r in ra if r["values"].get(name) is not None}
        vb = {r["id"]: r["values"][name] for r in rb if r["values"].get(name) is not None}
        delta = paired_delta(va, vb, seed=seed)
        if delta["n"]:
            by_metric[name] = delta
    primary = "correct"
    va = {r["id"]: r["values"].get(primary) for r in ra}
    vb = {r["id"]: r["values"].get(primary) for r in rb}
    changed = [
        {
            "id": q,
            "a": va[q],
            "b": vb[q],
            "question": next(r["question"] for r in rb if r["id"] == q),
        }
        for q in sorted(set(va) & set(vb))
        if va[q] is not None and vb[q] is not None and va[q] != vb[q]
    ]
    return {"a": str(a), "b": str(b), "primary": primary, "metrics": by_metric, "changed": changed}


def format_comparison(result: dict[str, Any]) -> str:
    lines = [
        f"A = {result['a']}",
        f"B = {result['b']}",
        "",
        f"{'metric':28}{'A':>9} {'B':>9} {'B-A':>9}  {'95% CI':>19}{'W/L/T':>12}  sig",
    ]
    for name, d in result["metrics"].items():
        # Latencies are milliseconds in the thousands: fewer decimals keep the columns apart.
        p = 0 if name.startswith("latency") else 3
        lines.append(
            f"{name:28}{d['a']:>9.{p}f} {d['b']:>9.{p}f} {d['delta']:>+9.{p}f}  "
            f"[{d['ci_low']:+.{p}f}, {d['ci_high']:+.{p}f}]"
            f"{d['wins']:>5}/{d['losses']}/{d['ties']:<4}"
            f"  {'*' if d['significant'] else ''}"
        )
    if result["changed"]:
        lines += ["", f"questions whose {result['primary']} changed:"]
        for c in result["changed"]:
            arrow = "won" if c["b"] > c["a"] else "lost"
            lines.append(f"  {arrow:4} {c['id']}: {c['question'][:80]}")
    return "\n".join(lines)

"""`rag eval report RUN`: a self-contained HTML report (plots inlined) + the Markdown summary.

Plots are made with matplotlib and embedded as base64 PNG, so the file opens offline and can
be mailed as one attachment.
"""

from __future__ import annotations

import base64
import html
import io
import json
from pathlib import Path
from typing import Any

from rag.eval.harness import MAIN_METRICS, load_run, summary_markdown


def _png(fig: Any) -> str:
    import matplotlib.pyplot as plt

    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=110, bbox_inches="tight")
    plt.close(fig)
    return base64.b64encode(buffer.getvalue()).decode()


def _metric_bars(overall: dict[str, Any]) -> str:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    names = [m for m in MAIN_METRICS if m in overall]
    if not names:
        return ""
    values = [overall[m]["value"] for m in names]
    low = [max(0.0, v - overall[m]["ci_low"]) for m, v in zip(names, values, strict=True)]
    high = [max(0.0, overall[m]["ci_high"] - v) for m, v in zip(names, values, strict=True)]
    fig, ax = plt.subplots(figsize=(8, 0.35 * len(names) + 1))
    ax.barh(names, values, xerr=[low, high], color="#3b6ea8", ecolor="#222", capsize=3)
    ax.set_xlim(0, 1.05)
    ax.invert_yaxis()
    ax.set_xlabel("mean with bootstrap 95% CI")
    ax.grid(axis="x", alpha=0.3)
    return _png(fig)


def _latency_hist(records: list[dict[str, Any]]) -> str:
    import matplotlib.pyplot as plt

    keys = [
        k
        for k in (
            "latency.retrieval_ms",
            "latency.evidence_ms",
            "latency.ttft_ms",
            "latency.total_ms",
        )
        if any(k in r["values"] for r in records)
    ]
    if not keys:
        return ""
    fig, axes = plt.subplots(1, len(keys), figsize=(3.2 * len(keys), 2.6))
    axes = axes if len(keys) > 1 else [axes]
    for ax, key in zip(axes, keys, strict=True):
        values = [r["values"][key] / 1000 for r in records if r["values"].get(key) is not None]
        ax.hist(values, bins=20, color="#6a9f58")
        ax.set_title(key[8:].replace("_ms", " (s)"))
        ax.grid(alpha=0.3)
    return _png(fig)


def _tag_bars(by_tag: dict[str, Any], metric: str = "correct") -> str:
    import matplotlib.pyplot as plt

    tags = [t for t, m in by_tag.items() if metric in m]
    if not tags:
        return ""
    values = [by_tag[t][metric]["value"] for t in tags]
    err = [
        [max(0, v - by_tag[t][metric]["ci_low"]) for t, v in zip(tags, values, strict=True)],
        [max(0, by_tag[t][metric]["ci_high"] - v) for t, v in zip(tags, values, strict=True)],
    ]
    fig, ax = plt.subplots(figsize=(8, 0.35 * len(tags) + 1))
    ax.barh(
        [f"{t} (n={by_tag[t][metric]['n']})" for t in tags],
        values,
        xerr=err,
        color="#a8693b",
        capsize=3,
    )
    ax.set_xlim(0, 1.05)
    ax.invert_yaxis()
    ax.set_xlabel(f"{metric} by tag")
    ax.grid(axis="x", alpha=0.3)
    return _png(fig)


def _worst(records: list[dict[str, Any]], limit: int = 15) -> str:
    def badness(r: dict[str, Any]) -> float:
        v = r["values"]
        score = v.get("correct", v.get("citation_recall", 1.0))
        return score if score is not None else 1.0

    rows = []
    for r in sorted(records, key=badness)[:limit]:
        resp = r.get("response") or {}
        answer = resp.get("label") or resp.get("answer", "")
        quotes = "".join(
            f"<li><b>[{c['number']}] {html.escape(c['title'])}</b>: "
            + " ".join(f"“{html.escape(q['text'])}”" for q in c.get("quotes", []))
            + "</li>"
            for c in resp.get("citations", [])
        )
        values = ", ".join(
            f"{k}={v:.2f}"
            for k, v in r["values"].items()
            if v is not None and not k.startswith("latency.")
        )
        rows.append(
            f"<tr><td>{html.escape(r['id'])}</td><td>{html.escape(r['question'])}</td>"
            f"<td>{html.escape(str(answer))}<ul>{quotes}</ul></td>"
            f"<td><small>{html.escape(values)}</small></td></tr>"
        )
    return "".join(rows)


def write_report(run_dir: Path) -> Path:
    metrics, records = load_run(run_dir)
    config = json.loads((run_dir / "config.json").read_text())
    fingerprints = json.loads((run_dir / "fingerprints.json").read_text())
    environment = json.loads((run_dir / "environment.json").read_text())
    summary = summary_markdown(run_dir, metrics)
    (run_dir / "summary.md").write_text(summary)
    images = {
        "Metrics": _metric_bars(metrics["overall"]),
        "Latency": _latency_hist(records),
        "By tag": _tag_bars(metrics["by_tag"]),
    }
    figures = "".join(
        f"<h2>{name}</h2><img alt='{name}' src='data:image/png;base64,{data}'>"
        for name, data in images.items()
        if data
    )
    table_rows = "".join(
        f"<tr><td>{html.escape(name)}</td><td>{m['value']:.3f}</td>"
        f"<td>{m['ci_low']:.3f} – {m['ci_high']:.3f}</td><td>{m['n']}</td></tr>"
        for name, m in metrics["overall"].items()
        if "value" in m
    )
    page = f"""<!doctype html><html lang="en"><head><meta charset="utf-8">
<title>Evaluation {html.escape(run_dir.name)}</title>
<style>body{{font-family:system-ui,sans-serif;max-width:1100px;margin:2em auto;padding:0 1em;
color:#222}}table{{border-collapse:collapse;width:100%;margin:1em 0}}td,th{{border:1px solid
#ccc;padding:4px 8px;vertical-align:top;text-align:left}}img{{max-width:100%}}
pre{{background:#f5f5f5;padding:1em;overflow:auto}}</style></head><body>
<h1>Evaluation run {html.escape(run_dir.name)}</h1>
<p>{metrics["questions"]} questions · {metrics["seconds"]} s ·
peak RSS {metrics["peak_rss_mb"]} MB</p>
<h2>Aggregates (bootstrap 95% CI)</h2>
<table><tr><th>metric</th><th>mean</th><th>95% CI</th><th>n</th></tr>{table_rows}</table>
{figures}
<h2>Worst questions</h2>
<table><tr><th>id</th><th>question</th><th>answer and cited quotes</th><th>values</th></tr>
{_worst(records)}</table>
<h2>Reproducibility</h2>
<h3>Fingerprints</h3><pre>{html.escape(json.dumps(fingerprints, indent=2))}</pre>
<h3>Configuration</h3><pre>{html.escape(json.dumps(config, indent=2, default=str))}</pre>
<h3>Environment</h3><pre>{html.escape(json.dumps(environment, indent=2))}</pre>
</body></html>"""
    out = run_dir / "report.html"
    out.write_text(page, encoding="utf-8")
    return out

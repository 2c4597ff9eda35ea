"""Answers that hold on questions nobody tuned for: one command, every figure, held-out halves.

    rag eval trust [--half report] [--json eval/results/trust.json] [--before] [--draft-cache D]

Runs, on one half of every set (``rag.eval.splits``; report = never looked at while tuning):
- the seed set: the original questions, two more phrasings of each, new questions on facts the
  originals never ask (``seed_new.jsonl``) and entity-swapped twins of both (correct,
  abstention precision/recall, wrong figures, consistency across phrasings);
- BioASQ dev: yes/no (accuracy, macro-F1, how often "no" is said when the gold is "no"),
  factoid (any-synonym match) and list (F1) questions, on samples of the half;
- PubMedQA dev: yes/no/maybe accuracy and macro-F1;
- the answer judge's precision/recall on held-out SciFact pairs and BioASQ answer sentences;
- first token and total time p50/p95 (seed questions whose draft was generated in this run).
``--before`` runs the same with the trust features off (no judge, no grounding, no quotes,
chunk-only passages, generator yes/no), the configuration this issue started from.
"""

from __future__ import annotations

import json
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from rag.eval.harness import EvalConfig, run

from rag.paths import gold_dir

PARTS = ("seed", "bioasq-yesno", "bioasq-factoid", "bioasq-list", "pubmedqa")
# The tag rag.eval.importers gives each BioASQ question type.
BIOASQ_TAGS = {"bioasq-yesno": "yes_no", "bioasq-factoid": "factoid", "bioasq-list": "list"}
BEFORE = [
    "verify.judge=none",
    "verify.grounding=false",
    "answer.quote_fallback=never",
    "answer.passage_context=chunk",
    "answer.verdict=generator",
]


def _value(metrics: dict[str, Any], name: str) -> float | None:
    m = metrics["overall"].get(name)
    return None if m is None else m.get("value", m.get("p50"))


def _no_when_no(run_dir: Path) -> float | None:
    """Share of gold-"no" questions answered "no" (a constant "yes" scores 0)."""
    said = []
    for path in (run_dir / "records").glob("*.json"):
        record = json.loads(path.read_text())
        if "no" in record.get("tags", []) and "label" in record.get("response", {}):
            said.append(record["response"]["label"] == "no")
    return sum(said) / len(said) if said else None


def _verdicts(metrics: dict[str, Any], run_dir: Path) -> dict[str, Any]:
    """Yes/no figures of one run: accuracy, macro-F1, "no" when "no", verdicts shown."""
    return {
        "questions": metrics["questions"],
        "accuracy": _value(metrics, "yes_no_accuracy"),
        "macro_f1": _value(metrics, "yes_no_macro_f1"),
        "no_when_no": _no_when_no(run_dir),
        "verdict_shown": _value(metrics, "verdict_shown"),
        "verdict_shown_correct": _value(metrics, "verdict_shown_correct"),
    }


def _seed(metrics: dict[str, Any]) -> dict[str, Any]:
    tags = metrics["by_tag"]
    originals = {k: v for k, v in metrics["overall"].items()}
    out: dict[str, Any] = {
        "questions": metrics["questions"],
        "correct": _value(metrics, "correct"),
        "abstention_precision": _value(metrics, "abstention_precision"),
        "abstention_recall": _value(metrics, "abstention_recall"),
        "wrong_figure_rate": _value(metrics, "wrong_figure"),
        "phrasings": metrics.get("phrasings"),
        "drafts_replayed": metrics.get("drafts_replayed"),
    }
    for tag in ("paraphrase", "new-question", "twin"):
        if tag in tags:
            t = tags[tag]
            out[tag] = {
                k: t[k]["value"]
                for k in ("correct", "abstained", "wrong_figure", "abstention_recall")
                if k in t and "value" in t[k]
            }
    for key in ("latency.ttft_ms", "latency.total_ms"):
        if key in originals:
            out[key.removeprefix("latency.")] = {
                "p50": originals[key]["p50"],
                "p95": originals[key]["p95"],
                "n": originals[key]["n"],
            }
    return out


def bench(
    *,
    half: str,
    out_root: Path,
    overrides: list[str],
    datasets: Path,
    factoid: int,
    listed: int,
    yes_no: int | None,
    draft_cache: Path | None,
    preset: str | None = None,
    parts: Sequence[str] = PARTS,
) -> dict[str, Any]:
    unknown = set(parts) - set(PARTS)
    if unknown:
        raise ValueError(f"unknown part(s) {sorted(unknown)}; the parts are {', '.join(PARTS)}")
    gold = gold_dir()
    started = time.perf_counter()
    result: dict[str, Any] = {"half": half, "overrides": overrides, "preset": preset}

    def go(name: str, cfg: EvalConfig) -> tuple[dict[str, Any], Path]:
        run_dir = out_root / name
        print(f"== {name} -> {run_dir}", flush=True)
        return run(cfg, run_dir, draft_cache=draft_cache), run_dir

    seed_cfg = EvalConfig(
        gold=str(gold / "seed.jsonl"),
        more_gold=[
            str(gold / name)
            for name in (
                "seed_paraphrases.jsonl",
                "seed_twins.jsonl",
                "seed_new.jsonl",
                "seed_new_twins.jsonl",
            )
        ],
        half=half,
        preset=preset,
        overrides=overrides,
    )
    if "seed" in parts:
        metrics, _ = go("seed", seed_cfg)
        result["seed"] = _seed(metrics)

    bioasq = str(datasets / "bioasq")
    yn_cfg = EvalConfig(
        gold=bioasq,
        half=half,
        tags=[BIOASQ_TAGS["bioasq-yesno"]],
        limit=yes_no,
        preset=preset,
        overrides=overrides,
    )
    if "bioasq-yesno" in parts:
        metrics, run_dir = go("bioasq-yesno", yn_cfg)
        result["bioasq_yesno"] = _verdicts(metrics, run_dir)
    for tag, limit, key in (("factoid", factoid, "synonym_match"), ("list", listed, "list_f1")):
        if f"bioasq-{tag}" not in parts:
            continue
        cfg = EvalConfig(
            gold=bioasq,
            half=half,
            tags=[BIOASQ_TAGS[f"bioasq-{tag}"]],
            limit=limit,
            preset=preset,
            overrides=overrides,
        )
        metrics, _ = go(f"bioasq-{tag}", cfg)
        result[f"bioasq_{tag}"] = {
            "questions": metrics["questions"],
            key: _value(metrics, key),
            "abstained": _value(metrics, "abstained"),
            "citation_precision": _value(metrics, "citation_precision"),
            "numbers_traced": _value(metrics, "numbers_traced"),
        }
    pubmedqa = EvalConfig(
        gold=str(datasets / "pubmedqa"), half=half, limit=yes_no, preset=preset, overrides=overrides
    )
    if "pubmedqa" in parts:
        metrics, run_dir = go("pubmedqa", pubmedqa)
        result["pubmedqa"] = _verdicts(metrics, run_dir)
    result["seconds"] = round(time.perf_counter() - started, 1)
    return result


def markdown(result: dict[str, Any]) -> str:
    def f(x: Any) -> str:
        return "–" if x is None else f"{x:.3f}" if isinstance(x, float) else str(x)

    lines = [f"half: {result['half']}, overrides: {result['overrides'] or 'none'}", ""]
    lines += ["| figure | value |", "|---|---|"]
    s = result.get("seed")
    if s:
        lines += [
            f"| seed correct (answerable, all phrasings) | {f(s['correct'])} |",
            f"| seed paraphrases correct | {f(s.get('paraphrase', {}).get('correct'))} |",
            f"| seed twins abstained | {f(s.get('twin', {}).get('abstained'))} |",
            f"| seed abstention precision / recall | {f(s['abstention_precision'])} / "
            f"{f(s['abstention_recall'])} |",
            f"| seed wrong-figure rate | {f(s['wrong_figure_rate'])} |",
            f"| seed consistent across phrasings | {f((s['phrasings'] or {}).get('consistent'))} |",
        ]
    for name, label in (("bioasq_yesno", "BioASQ yes/no"), ("pubmedqa", "PubMedQA")):
        if r := result.get(name):
            lines.append(
                f"| {label} accuracy / macro-F1 / no-when-no | {f(r['accuracy'])} / "
                f"{f(r['macro_f1'])} / {f(r['no_when_no'])} |"
            )
    if r := result.get("bioasq_factoid"):
        lines.append(f"| BioASQ factoid any-synonym | {f(r['synonym_match'])} |")
    if r := result.get("bioasq_list"):
        lines.append(f"| BioASQ list F1 | {f(r['list_f1'])} |")
    for key in ("ttft_ms", "total_ms"):
        if s and key in s:
            lines.append(f"| {key} p50 / p95 | {s[key]['p50']:.0f} / {s[key]['p95']:.0f} |")
    return "\n".join(lines) + "\n"


def main(
    half: str,
    json_out: Path | None,
    before: bool,
    datasets: Path,
    factoid: int,
    listed: int,
    yes_no: int | None,
    draft_cache: Path | None,
    runs: Path,
    overrides: list[str],
    preset: str | None = None,
    parts: Sequence[str] = PARTS,
) -> dict[str, Any]:
    """Run ``parts`` and write their figures into ``json_out``, keeping the other parts a
    previous run wrote there (so one part can be re-measured alone)."""
    overrides = [*(BEFORE if before else []), *overrides]
    stamp = time.strftime("%Y%m%d-%H%M%S")
    out_root = runs / f"trust-{'before' if before else 'after'}-{half}-{stamp}"
    result = bench(
        half=half,
        out_root=out_root,
        overrides=overrides,
        datasets=datasets,
        factoid=factoid,
        listed=listed,
        yes_no=yes_no,
        draft_cache=draft_cache,
        preset=preset,
        parts=parts,
    )
    result["runs"] = {part: str(out_root / part) for part in parts}
    if json_out is not None:
        if json_out.is_file() and set(parts) != set(PARTS):
            kept = json.loads(json_out.read_text())
            if (kept.get("half"), kept.get("overrides")) != (half, overrides):
                raise ValueError(f"{json_out} holds another half or overrides; choose a new --json")
            result = (
                kept
                | result
                | {
                    "runs": kept.get("runs", {}) | result["runs"],
                    "seconds": kept.get("seconds", 0) + result["seconds"],
                }
            )
        json_out.parent.mkdir(parents=True, exist_ok=True)
        json_out.write_text(json.dumps(result, indent=2) + "\n")
    print(markdown(result))
    return result

"""`rag eval run`: one command, a run directory an evaluator can trust and compare.

A run directory holds:
- ``config.json``      the evaluation config, the full settings and a hash of both;
- ``environment.json`` package versions, Python, platform, CPU count;
- ``fingerprints.json`` embedder / generator / reranker / index fingerprints;
- ``records/<id>.json`` one record per question (answer, retrieval, metric values) — a re-run
  with the same config skips questions already recorded, so an interrupted run resumes;
- ``metrics.json``     every aggregate with a bootstrap 95% CI, overall and per tag;
- ``summary.md``       the readable summary (``rag eval report`` adds report.html).
"""

from __future__ import annotations

import hashlib
import importlib.metadata as md
import json
import os
import platform
import resource
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from pydantic import BaseModel, Field
from rag.eval.gold import GoldItem, load_gold
from rag.eval.scoring import aggregate, item_values
from rag.eval.splits import select_half

from rag.models import cache_root
from rag.settings import Settings, load_settings

PACKAGES = (
    "torch",
    "transformers",
    "sentence-transformers",
    "faiss-cpu",
    "bm25s",
    "ranx",
    "pydantic",
    "gradio",
    "fastapi",
    "onco-rag",
)


class EvalConfig(BaseModel):
    gold: str = Field(description="Gold JSONL, or a dataset folder (shared schema / BEIR).")
    more_gold: list[str] = Field(
        default_factory=list, description="More gold JSONL files, evaluated with the first."
    )
    half: str = Field(
        "all",
        description="tune, report or all: the half of the set (fixed by a hash of each item's "
        "group id, rag.eval.splits) to run. Tune on one half, report the other.",
    )
    corpus: list[str] = Field(default_factory=list, description="Files/folders, or a dataset dir.")
    split: str = "dev"
    preset: str | None = None
    overrides: list[str] = Field(default_factory=list)
    limit: int | None = None
    seed: int = 0
    tags: list[str] = Field(default_factory=list, description="Keep items with any of these tags.")
    yes_no_mode: str = Field(
        "auto",
        description="classify (label log-probabilities), generate (the cited answer `rag ask` "
        "gives, scored by key facts), or auto: generate where the item has key facts.",
    )
    retrieval_k: int = 10

    def key(self) -> str:
        return hashlib.sha256(self.model_dump_json().encode()).hexdigest()[:16]


def select_items(items: list[GoldItem], cfg: EvalConfig) -> list[GoldItem]:
    items = select_half(items, cfg.half, key=lambda item: item.group)
    if cfg.tags:
        items = [i for i in items if set(i.tags) & set(cfg.tags)]
    if cfg.limit and cfg.limit < len(items):
        import random

        keep = set(random.Random(cfg.seed).sample(range(len(items)), cfg.limit))
        items = [item for n, item in enumerate(items) if n in keep]
    return items


def load_items(cfg: EvalConfig) -> list[GoldItem]:
    path = Path(cfg.gold)
    if path.is_dir():
        from rag.eval.importers import gold_from_path

        return gold_from_path(path, cfg.split)
    return load_gold(path, *cfg.more_gold)


def build_assistant(cfg: EvalConfig, settings: Settings, generator: Any = None) -> Any:
    """An index of the corpus (cached by content + settings), seeds when no corpus is given;
    ``generator`` replaces the configured one (the draft cache)."""
    from rag.assistant import Assistant
    from rag.paths import seeds_dir

    corpus = [Path(c) for c in cfg.corpus]
    if not corpus and Path(cfg.gold).is_dir():
        corpus = [Path(cfg.gold)]
    if len(corpus) == 1 and (corpus[0] / "corpus.jsonl").is_file():
        from rag.eval.bench_retrieval import build_assistant as dataset_assistant
        from rag.eval.datasets import load_dataset

        return dataset_assistant(load_dataset(corpus[0], cfg.split), settings, generator=generator)
    from rag.eval.bench_retrieval import identity_digest

    paths = corpus or [seeds_dir()]
    digest = identity_digest(settings, paths=[str(p.resolve()) for p in paths])
    staged = settings.model_copy(deep=True)
    staged.index.dir = cache_root() / "eval-index" / digest
    staged.index.auto_seed = False
    assistant = Assistant(staged, generator=generator)
    report = assistant.add(paths)
    if report.failed:
        failed = [f"{r.path}: {r.reason}" for r in report.results if r.status == "failed"]
        print("warning: some corpus files failed to ingest:\n  " + "\n  ".join(failed))
    return assistant


def environment() -> dict[str, Any]:
    versions = {}
    for name in PACKAGES:
        try:
            versions[name] = md.version(name)
        except md.PackageNotFoundError:
            versions[name] = None
    return {
        "python": sys.version.split()[0],
        "platform": platform.platform(),
        "cpus": os.cpu_count(),
        "packages": versions,
    }


def _passage_rank(
    assistant: Any, item: GoldItem, hits: list[Any], docs: dict[str, str]
) -> int | None:
    """1-based rank of the first retrieved chunk overlapping a gold quote."""
    spans: list[tuple[str, int, int]] = []
    for doc_id in item.gold_doc_ids:
        if doc_id not in docs:
            doc = assistant.index.load_document(doc_id)
            docs[doc_id] = doc.text if doc else ""
        text = docs[doc_id]
        for quote in item.gold_quotes:
            start = text.find(quote)
            if start >= 0:
                spans.append((doc_id, start, start + len(quote)))
    for rank, hit in enumerate(hits, start=1):
        c = hit.chunk
        for doc_id, a, b in spans:
            overlap = min(b, c.end) - max(a, c.start)
            if c.doc_id == doc_id and overlap >= 0.5 * (b - a):
                return rank
    return None


def evaluate_item(
    assistant: Any, item: GoldItem, cfg: EvalConfig, docs: dict[str, str]
) -> dict[str, Any]:
    t = time.perf_counter()
    retrieval = assistant.retrieve(item.question, k=cfg.retrieval_k)
    retrieval_ms = (time.perf_counter() - t) * 1000
    ranking: list[str] = []
    for hit in retrieval.hits:
        if hit.chunk.doc_id not in ranking:
            ranking.append(hit.chunk.doc_id)
    record: dict[str, Any] = {
        "id": item.id,
        "question": item.question,
        "tags": item.tags,
        "answerable": item.answerable,
        "answer_type": item.answer_type,
        "retrieval": {
            "doc_ranking": ranking,
            "passage_rank": _passage_rank(assistant, item, retrieval.hits, docs),
            "ms": round(retrieval_ms, 2),
        },
    }
    classify = cfg.yes_no_mode == "classify" or (cfg.yes_no_mode == "auto" and not item.key_facts)
    if item.answer_type == "yes_no" and classify:
        response = assistant.classify(item.question)
    else:
        response = assistant.ask(item.question)
    record["response"] = response.model_dump(mode="json")
    record["values"] = item_values(item, record)
    return record


def run(
    cfg: EvalConfig,
    run_dir: Path,
    progress: Callable[[int, int, str], None] | None = None,
    draft_cache: Path | None = None,
    assistant: Any = None,
) -> dict[str, Any]:
    """Evaluate every selected item; ``draft_cache`` replays drafts kept by earlier runs
    (``rag.eval.draft_cache``): verification figures stay comparable, timings do not.

    ``assistant``: answer with this one (its index must hold the corpus) instead of one built
    from ``cfg``; its settings are the ones recorded."""
    if assistant is not None and draft_cache is not None:
        raise ValueError("a draft cache wraps the generator of an assistant built here")
    if assistant is not None:
        settings = assistant.settings
    else:
        settings = load_settings(preset=cfg.preset, overrides=cfg.overrides)
    run_dir.mkdir(parents=True, exist_ok=True)
    records_dir = run_dir / "records"
    records_dir.mkdir(exist_ok=True)
    config = {"eval": cfg.model_dump(), "settings": settings.fingerprint(), "key": cfg.key()}
    previous = run_dir / "config.json"
    if previous.is_file() and json.loads(previous.read_text()).get("key") != cfg.key():
        raise SystemExit(
            f"{run_dir} holds a run with another configuration; choose a new --out directory"
        )
    previous.write_text(json.dumps(config, indent=2, default=str))
    (run_dir / "environment.json").write_text(json.dumps(environment(), indent=2))

    items = select_items(load_items(cfg), cfg)
    cache = None
    if draft_cache is not None:
        from rag.eval.draft_cache import DraftCache

        from rag.generate import load_generator

        g = settings.generate
        identity = f"{g.backend}:{g.model}:{g.remote_model}:{g.dtype}:{g.decode_weights}"
        cache = DraftCache(lambda: load_generator(g), draft_cache, identity)
    if assistant is None:
        assistant = build_assistant(cfg, settings, generator=cache)
    docs: dict[str, str] = {}
    records: list[dict[str, Any]] = []
    started = time.perf_counter()
    for n, item in enumerate(items):
        if progress:
            progress(n, len(items), item.id)
        path = records_dir / f"{_safe(item.id)}.json"
        if path.is_file():
            record = json.loads(path.read_text())
            record["values"] = item_values(item, record)  # metric definitions may have changed
        else:
            replayed = cache.replayed if cache is not None else 0
            record = evaluate_item(assistant, item, cfg, docs)
            if cache is not None and cache.replayed > replayed:
                record["replayed_draft"] = True  # its timings measure no generation
                record["values"] = {
                    k: v for k, v in record["values"].items() if not k.startswith("latency.")
                }
            tmp = path.with_suffix(".tmp")
            tmp.write_text(json.dumps(record, ensure_ascii=False))
            os.replace(tmp, path)
        records.append(record)
    if progress:
        progress(len(items), len(items), "")
    (run_dir / "fingerprints.json").write_text(json.dumps(assistant.fingerprints(), indent=2))
    metrics = {
        "overall": aggregate(items, records, seed=cfg.seed),
        "by_tag": {
            tag: aggregate(
                [i for i in items if tag in i.tags],
                [r for i, r in zip(items, records, strict=True) if tag in i.tags],
                seed=cfg.seed,
            )
            for tag in sorted({t for i in items for t in i.tags})
        },
        "doc_retrieval": _doc_metrics(items, records),
        "phrasings": consistency(items, records),
        "questions": len(items),
        "half": cfg.half,
        "drafts_replayed": sum(1 for r in records if r.get("replayed_draft")),
        "seconds": round(time.perf_counter() - started, 1),
        "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
    }
    (run_dir / "metrics.json").write_text(json.dumps(metrics, indent=2))
    (run_dir / "summary.md").write_text(summary_markdown(run_dir, metrics))
    return metrics


def consistency(items: list[GoldItem], records: list[dict[str, Any]]) -> dict[str, Any]:
    """Questions asked several ways (an original and its paraphrases): the share whose every
    phrasing got the same outcome (all correct, or all abstained when unanswerable)."""
    groups: dict[str, list[float]] = {}
    for item, record in zip(items, records, strict=True):
        if "twin" in item.tags:
            continue
        values = record["values"]
        outcome = values.get("correct", values.get("abstained"))
        if outcome is not None:
            groups.setdefault(item.group, []).append(float(outcome))
    several = {g: v for g, v in groups.items() if len(v) > 1}
    if not several:
        return {}
    same = sum(1 for v in several.values() if len(set(v)) == 1)
    return {"groups": len(several), "consistent": round(same / len(several), 4)}


def _doc_metrics(items: list[GoldItem], records: list[dict[str, Any]]) -> dict[str, float]:
    from rag.eval.metrics import ir_metrics

    qrels = {i.id: dict.fromkeys(i.gold_doc_ids, 1) for i in items if i.gold_doc_ids}
    if not qrels:
        return {}
    run_ = {
        r["id"]: {d: 1.0 / (k + 1) for k, d in enumerate(r["retrieval"]["doc_ranking"])}
        for r in records
    }
    return ir_metrics(qrels, run_, ["recall@5", "recall@10", "mrr@10", "ndcg@10"])


def _safe(name: str) -> str:
    return "".join(c if c.isalnum() or c in "-_." else "_" for c in name)[:120]


def load_run(run_dir: Path) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    metrics = json.loads((run_dir / "metrics.json").read_text())
    records = [json.loads(p.read_text()) for p in sorted((run_dir / "records").glob("*.json"))]
    return metrics, records


MAIN_METRICS = (
    "correct",
    "fact_recall",
    "yes_no_accuracy",
    "yes_no_macro_f1",
    "synonym_match",
    "token_f1",
    "list_f1",
    "verdict_shown",
    "verdict_shown_correct",
    "citation_precision",
    "citation_recall",
    "model_citation_precision",
    "model_citation_recall",
    "numbers_traced",
    "model_numbers_traced",
    "abstention_precision",
    "abstention_recall",
    "abstention_f1",
    "forbidden_free",
    "wrong_figure",
    "passage_recall@1",
    "passage_recall@5",
)


def summary_markdown(run_dir: Path, metrics: dict[str, Any]) -> str:
    overall = metrics["overall"]
    lines = [
        f"# Evaluation run `{run_dir.name}`",
        "",
        f"{metrics['questions']} questions, {metrics['seconds']} s, "
        f"peak RSS {metrics['peak_rss_mb']} MB",
        "",
        "| metric | value | 95% CI | n |",
        "|---|---|---|---|",
    ]
    for name in MAIN_METRICS:
        if name in overall:
            m = overall[name]
            lines.append(
                f"| {name} | {m['value']:.3f} | {m['ci_low']:.3f}–{m['ci_high']:.3f} | {m['n']} |"
            )
    for name, m in metrics.get("doc_retrieval", {}).items():
        lines.append(f"| doc {name} | {m:.3f} | | |")
    lines += ["", "| latency (ms) | p50 | p95 | n |", "|---|---|---|---|"]
    for name, m in overall.items():
        if name.startswith("latency."):
            lines.append(f"| {name[8:]} | {m['p50']:.0f} | {m['p95']:.0f} | {m['n']} |")
    return "\n".join(lines) + "\n"


def gate(metrics: dict[str, Any], minimums: dict[str, float]) -> list[str]:
    """Failures of ``--min metric=value`` thresholds (empty = pass)."""
    failures = []
    for name, floor in minimums.items():
        m = metrics["overall"].get(name)
        value = None if m is None else m.get("value", m.get("p50"))
        if value is None:
            failures.append(f"{name}: not measured in this run")
        elif value < floor:
            failures.append(f"{name}: {value:.3f} < {floor}")
    return failures

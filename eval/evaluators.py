"""The registered evaluators: thin adapters over the benchmark functions that compute the figures.

Each takes its options as dataclass fields and the Assistant under test when called; the
metric code stays where it was (``harness``, ``bench_retrieval``, ``support_eval``,
``judge_eval``, ``bench_trust``), imported on call so ``rag eval list`` loads nothing heavy.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from rag.eval.evaluator import EVALUATORS, Evaluator, numbers, register

if TYPE_CHECKING:
    from rag.assistant import Assistant
    from rag.settings import Settings

DATASETS = Path("../shared/datasets")
RETRIEVAL_ROWS = ("bm25", "dense", "hybrid", "rerank")


def _settings(assistant: Assistant | None) -> Settings:
    from rag.settings import load_settings

    return assistant.settings if assistant is not None else load_settings()


@register("gold")
@dataclass
class GoldRunEvaluator(Evaluator):
    """A gold set end to end (``rag eval run``): a run directory, every answer metric with a CI.

    ``details`` is the run's ``metrics.json``. With an assistant, its index must hold the corpus.
    """

    primary_metric = "correct"

    gold: Sequence[str] = ()
    corpus: Sequence[str] = ()
    run_dir: Path | None = None
    half: str = "all"
    split: str = "dev"
    preset: str | None = None
    overrides: Sequence[str] = ()
    limit: int | None = None
    seed: int = 0
    tags: Sequence[str] = ()
    yes_no_mode: str = "auto"
    draft_cache: Path | None = None
    progress: Callable[[int, int, str], None] | None = field(default=None, compare=False)

    def __post_init__(self) -> None:
        if not self.gold:
            raise ValueError("the gold evaluator needs a gold file or dataset folder")
        if self.run_dir is None:
            first = Path(self.gold[0])
            name = first.stem if first.is_file() else first.name
            self.run_dir = Path("runs") / f"{name}-{time.strftime('%Y%m%d-%H%M%S')}"

    def evaluate(self, assistant: Assistant | None) -> dict[str, Any]:
        from rag.eval.harness import EvalConfig, run

        cfg = EvalConfig(
            gold=self.gold[0],
            more_gold=list(self.gold[1:]),
            half=self.half,
            corpus=list(self.corpus),
            split=self.split,
            preset=self.preset,
            overrides=list(self.overrides),
            limit=self.limit,
            seed=self.seed,
            tags=list(self.tags),
            yes_no_mode=self.yes_no_mode,
        )
        assert self.run_dir is not None
        return run(cfg, self.run_dir, self.progress, self.draft_cache, assistant)

    @classmethod
    def scores(cls, details: dict[str, Any]) -> dict[str, float]:
        out: dict[str, float] = {"questions": float(details["questions"])}
        for name, m in details["overall"].items():
            if "value" in m:
                out[name] = m["value"]
            else:  # latency: medians and tails, not means
                out |= {f"{name}_p50": m["p50"], f"{name}_p95": m["p95"]}
        out |= {f"doc_{k}": v for k, v in details.get("doc_retrieval", {}).items()}
        out |= numbers("phrasings_", details.get("phrasings") or {}, ("consistent",))
        return out


@register("retrieval")
@dataclass
class RetrievalEvaluator(Evaluator):
    """BM25 / dense / hybrid / hybrid+rerank on one dataset (``rag eval retrieval``).

    The primary metric is nDCG@10 of the last row run (the fullest pipeline asked for). With
    an assistant, its index must hold the dataset's corpus (``bench_retrieval.build_assistant``).
    """

    primary_metric = "ndcg@10"

    dataset: Path | None = None
    beir: Path | None = None
    split: str = "dev"
    limit: int | None = None
    seed: int = 0
    rerank_model: Path | None = None
    rerank_folds: Path | None = None
    rows: Sequence[str] = RETRIEVAL_ROWS
    settings: Settings | None = None
    half: str | None = None  # tune / report (by the id hash); None = every question

    def __post_init__(self) -> None:
        if (self.dataset is None) == (self.beir is None):
            raise ValueError("give exactly one of dataset or beir")
        from rag.eval.splits import HALVES

        if self.half not in (None, "all", *HALVES):
            from rag.errors import ConfigError

            raise ConfigError(f"--half must be tune, report or all, not {self.half!r}")

    def evaluate(self, assistant: Assistant | None) -> dict[str, Any]:
        from rag.eval.bench_retrieval import (
            build_assistant,
            print_table,
            reranker_provenance,
            rerankers_from_options,
            rows_to_json,
            run_config,
        )
        from rag.eval.datasets import load_beir, load_shared

        settings = self.settings or _settings(assistant)
        if self.beir is not None:
            ds = load_beir(self.beir, self.split)
        else:
            assert self.dataset is not None
            ds = load_shared(self.dataset, self.split)
        ds = ds.half(self.half).subset(self.limit, self.seed)
        if assistant is None:
            assistant = build_assistant(ds, settings)
        reranker_for = rerankers_from_options(ds, settings, self.rerank_model, self.rerank_folds)
        results = []
        for name, mode in (("bm25", "lexical"), ("dense", "dense"), ("hybrid", "hybrid")):
            if name in self.rows:
                results.append(run_config(assistant, ds, name=name, mode=mode)[0])
        if "rerank" in self.rows and reranker_for is not None:
            results.append(
                run_config(
                    assistant, ds, name="hybrid+rerank", mode="hybrid", reranker_for=reranker_for
                )[0]
            )
        extra = {
            "split": self.split,
            "half": self.half,
            "limit": self.limit,
            "seed": self.seed,
            "table": print_table(ds, results),
            "settings": settings.fingerprint(),
            "reranker": reranker_provenance(self.rerank_model, self.rerank_folds),
        }
        return rows_to_json(ds, results, extra)

    @classmethod
    def scores(cls, details: dict[str, Any]) -> dict[str, float]:
        out: dict[str, float] = {}
        for row in details["rows"]:
            name = row["name"]
            out |= {f"{name}_{k}": v for k, v in row["metrics"].items()}
            out |= numbers(f"{name}_latency_", row["latency_ms"], ("p50", "p95"))
            out |= {f"{name}_pmid_{k}": v for k, v in (row.get("pmid_metrics") or {}).items()}
        if details["rows"]:
            out[cls.primary_metric] = details["rows"][-1]["metrics"]["ndcg@10"]
        return out


@register("support")
@dataclass
class SupportEvaluator(Evaluator):
    """The sentence-support checker's rules (no judge) on labelled pairs (``rag eval support``).

    ``embedding=False`` scores similarity by shared word stems, the checker's fallback, and so
    loads no model. Precision is primary: an unsupported sentence shown as supported is the
    failure that matters most.
    """

    primary_metric = "precision"

    pairs: Path | None = None
    scifact: Path | None = None
    embedding: bool = True

    def evaluate(self, assistant: Assistant | None) -> dict[str, Any]:
        from rag.eval.support_eval import evaluate_checker, load_pairs, scifact_pairs

        if self.embedding:
            from rag.assistant import Assistant

            assistant = assistant or Assistant(_settings(None))
            checker = assistant.support_checker(judge=None, corpus_aliases=False)
        else:
            from rag.retrieve.expand import QueryExpander
            from rag.verify import SupportChecker

            threshold = _settings(assistant).verify.support_threshold
            checker = SupportChecker(aliases=QueryExpander().related, threshold=threshold)
        labelled = scifact_pairs(self.scifact) if self.scifact else load_pairs(self.pairs)
        return evaluate_checker(checker, labelled)

    @classmethod
    def scores(cls, details: dict[str, Any]) -> dict[str, float]:
        return numbers("", details, ("precision", "recall", "f1", "accuracy", "n"))


@register("judge")
@dataclass
class JudgeEvaluator(Evaluator):
    """The trained answer judge on third-party pairs it never saw (``rag eval judge``).

    Primary: the judge's precision on support pairs at its calibrated threshold.
    """

    primary_metric = "support_precision"

    datasets: Path = DATASETS
    half: str = "report"

    def evaluate(self, assistant: Assistant | None) -> dict[str, Any]:
        from rag.eval.judge_eval import evaluate

        from rag.assistant import Assistant

        system = assistant or Assistant(_settings(None))
        judge = system.judge
        if judge is None:
            raise ValueError("the judge evaluator needs verify.judge set to a trained judge")

        def make_checker(j: Any) -> Any:
            return system.support_checker(judge=j, corpus_aliases=False)

        return evaluate(self.datasets, judge, make_checker, self.half)

    @classmethod
    def scores(cls, details: dict[str, Any]) -> dict[str, float]:
        keys = ("precision", "recall", "accuracy", "n")
        out: dict[str, float] = {}
        for task, r in details["judge_alone"].items():
            out |= numbers(f"{task}_", r, (*keys, "auc"))
        for name, r in details["scifact_checker"].items():
            out |= numbers(f"scifact_{name}_", r, keys)
        return out | numbers("bioasq_answer_", details["bioasq_answer_sentences"], keys)


@register("trust")
@dataclass
class TrustEvaluator(Evaluator):
    """Every answer-trust figure on one half (``rag eval trust``).

    Seed variants, BioASQ and PubMedQA; each part indexes its own corpus from ``preset`` and
    ``overrides``, so no caller's assistant is taken.
    """

    primary_metric = "seed_correct"
    takes_assistant = False

    half: str = "report"
    json_out: Path | None = None
    before: bool = False
    datasets: Path = DATASETS
    factoid: int = 60
    listed: int = 40
    yes_no: int | None = None
    draft_cache: Path | None = None
    runs: Path = Path("runs")
    overrides: Sequence[str] = ()
    preset: str | None = None
    parts: Sequence[str] | None = None  # None: every part (bench_trust.PARTS)

    def evaluate(self, assistant: Assistant | None) -> dict[str, Any]:
        from rag.eval.bench_trust import PARTS, main

        return main(
            self.half,
            self.json_out,
            self.before,
            self.datasets,
            self.factoid,
            self.listed,
            self.yes_no,
            self.draft_cache,
            self.runs,
            list(self.overrides),
            self.preset,
            tuple(self.parts or PARTS),
        )

    @classmethod
    def scores(cls, details: dict[str, Any]) -> dict[str, float]:
        out: dict[str, float] = {}
        if s := details.get("seed"):
            keys = ("correct", "abstention_precision", "abstention_recall", "wrong_figure_rate")
            out |= numbers("seed_", s, keys)
            out |= numbers("seed_phrasings_", s.get("phrasings") or {}, ("consistent",))
            out |= numbers("seed_paraphrase_", s.get("paraphrase") or {}, ("correct",))
            out |= numbers("seed_twin_", s.get("twin") or {}, ("abstained",))
            for key in ("ttft_ms", "total_ms"):
                out |= numbers(f"seed_{key}_", s.get(key) or {}, ("p50", "p95"))
        for part in ("bioasq_yesno", "pubmedqa"):
            out |= numbers(
                f"{part}_", details.get(part) or {}, ("accuracy", "macro_f1", "no_when_no")
            )
        out |= numbers("bioasq_factoid_", details.get("bioasq_factoid") or {}, ("synonym_match",))
        return out | numbers("bioasq_list_", details.get("bioasq_list") or {}, ("list_f1",))


# Resource benchmarks and the judge's training take no Assistant and report no single figure:
# ``rag eval bench NAME -- ARGS`` runs their argparse main (``python -m rag.eval.MODULE`` too,
# which the Makefile, docs and recorded commands use). Name -> (module, --out is a JSON file).
SCRIPTS: dict[str, tuple[str, bool]] = {
    "effects": ("rag.eval.bench_effects", True),
    "embed": ("rag.eval.bench_embed", True),
    "fusion": ("rag.eval.bench_fusion", True),
    "fuzz-api": ("rag.eval.fuzz_api", True),
    "generator": ("rag.eval.bench_generator", True),
    "index": ("rag.eval.bench_index", True),
    "injection": ("rag.eval.bench_injection", True),
    "load": ("rag.eval.bench_load", True),
    "ocr": ("rag.eval.bench_ocr", True),
    "speed": ("rag.eval.bench_speed", True),
    "vectors": ("rag.eval.bench_vectors", True),
    "calibrate-gate": ("rag.eval.calibrate_gate", True),
    "train-judge": ("rag.eval.train_judge", False),
}

__all__ = ["EVALUATORS", "SCRIPTS", "Evaluator", "register"]

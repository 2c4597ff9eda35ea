"""The evaluator shape: every registered benchmark names a primary metric its scores hold."""

from __future__ import annotations

import ast
import json
import math
from pathlib import Path
from typing import Any

import pytest
from rag.eval.evaluator import Evaluator
from rag.eval.evaluators import EVALUATORS, SCRIPTS, SupportEvaluator, TrustEvaluator
from rag.eval.gold import GoldItem
from rag.eval.scoring import aggregate
from typer.testing import CliRunner

from rag.assistant import Assistant
from rag.cli import app
from rag.settings import Settings

EVAL = Path(__file__).resolve().parents[2] / "eval"


def _gold_metrics() -> dict[str, Any]:
    """A metrics.json as ``harness.run`` writes it (no run directory is committed)."""
    items = [GoldItem(id=f"q{i}", question=f"question {i}?", key_facts=["x"]) for i in range(3)]
    records = [
        {"id": f"q{i}", "values": {"correct": float(i > 0), "latency.total_ms": 100.0 * i}}
        for i in range(3)
    ]
    return {
        "overall": aggregate(items, records),
        "doc_retrieval": {"ndcg@10": 0.5},
        "phrasings": {},
        "questions": 3,
    }


def _written(name: str) -> dict[str, Any]:
    return json.loads((EVAL / "results" / name).read_text())


# What each evaluator's benchmark wrote: the JSON kept under eval/results/.
DETAILS = {
    "gold": _gold_metrics,
    "retrieval": lambda: _written("retrieval_scifact.json"),
    "support": lambda: _written("support_scifact.json"),
    "judge": lambda: _written("judge.json"),
    "trust": lambda: _written("trust_after.json"),
}


def test_every_evaluator_has_a_written_result_to_score() -> None:
    assert set(EVALUATORS) == set(DETAILS), "give a new evaluator a result in DETAILS"


@pytest.mark.parametrize("name", sorted(DETAILS))
def test_primary_metric_is_scored_from_what_the_benchmark_writes(name: str) -> None:
    cls = EVALUATORS[name]
    assert cls.name == name and cls.primary_metric
    scores = cls.prefix_name_to_metrics(cls.scores(DETAILS[name]()))
    assert all(k.startswith(f"{name}_") for k in scores)
    assert all(isinstance(v, float) for v in scores.values())
    assert not math.isnan(scores[cls.primary_key()])


def test_retrieval_primary_is_the_last_row() -> None:
    details = _written("retrieval_scifact.json")
    scores = EVALUATORS["retrieval"].scores(details)
    last = details["rows"][-1]
    assert scores["ndcg@10"] == last["metrics"]["ndcg@10"]
    assert scores[f"{last['name']}_ndcg@10"] == scores["ndcg@10"]


def test_support_evaluator_runs_on_labelled_pairs(tmp_path: Path) -> None:
    lines = (EVAL / "gold" / "support_pairs.jsonl").read_text().splitlines()[:12]
    pairs = tmp_path / "pairs.jsonl"
    pairs.write_text("\n".join(lines) + "\n")
    evaluator = SupportEvaluator(pairs=pairs, embedding=False)  # word overlap: no model loads
    scores = evaluator(Assistant(Settings()))
    assert all(isinstance(v, float) for v in scores.values())
    assert scores["support_n"] == 12.0
    c = evaluator.details["confusion"]
    assert c["tp"] + c["fp"] + c["fn"] + c["tn"] == 12
    assert scores[evaluator.primary_key()] == (
        c["tp"] / (c["tp"] + c["fp"]) if c["tp"] + c["fp"] else 1.0
    )
    assert len(evaluator.details["errors"]) == c["fp"] + c["fn"]


def test_an_evaluator_that_builds_its_own_assistants_refuses_one() -> None:
    with pytest.raises(ValueError, match="builds its own assistants"):
        TrustEvaluator()(Assistant(Settings()))


def test_registering_a_name_twice_is_refused() -> None:
    from rag.eval.evaluator import register

    with pytest.raises(ValueError, match="twice"):
        register("support")(type("Again", (Evaluator,), {}))


def test_rag_eval_list_prints_each_evaluator_and_its_primary_metric() -> None:
    result = CliRunner().invoke(app, ["eval", "list"])
    assert result.exit_code == 0, result.output
    for cls in EVALUATORS.values():
        assert f"{cls.name}" in result.output and cls.primary_key() in result.output
    assert all(name in result.output for name in SCRIPTS)


def test_rag_eval_bench_refuses_an_unknown_script() -> None:
    result = CliRunner().invoke(app, ["eval", "bench", "nope"])
    assert result.exit_code == 2


@pytest.mark.parametrize("name", sorted(SCRIPTS))
def test_each_bench_script_main_takes_argv(name: str) -> None:
    """`rag eval bench` hands its arguments to main(argv): a main reading sys.argv would get
    `rag eval bench NAME` instead."""
    module = SCRIPTS[name][0].removeprefix("rag.eval.")
    tree = ast.parse((EVAL / f"{module}.py").read_text())
    main = next(n for n in tree.body if isinstance(n, ast.FunctionDef) and n.name == "main")
    assert [a.arg for a in main.args.args] == ["argv"]

"""A small real evaluation: real seed index, real 0.5B generator, real metrics."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from rag.eval.compare import compare_runs
from rag.eval.gold import GoldItem, fact_present, write_gold
from rag.eval.harness import EvalConfig, gate, run
from rag.eval.report import write_report

pytestmark = [pytest.mark.slow, pytest.mark.integration]


@pytest.fixture(scope="module")
def finished_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, EvalConfig]:
    root = tmp_path_factory.mktemp("eval")
    gold = root / "gold.jsonl"
    write_gold(
        [
            GoldItem(
                id="pfs",
                question="What was the median PFS with ivonescimab in HARMONi-A?",
                key_facts=["7.1 months"],
                gold_doc_ids=["000_e0a9c25fbc4c4afa"],
                gold_quotes=["The median PFS was 7.1 months"],
                tags=["figures"],
            ),
            GoldItem(
                id="france",
                question="What is the capital of France?",
                answerable=False,
                answer_type="abstain",
                tags=["unanswerable"],
            ),
            GoldItem(
                id="chemo",
                question="Was ivonescimab given with chemotherapy in HARMONi-A?",
                answer_type="yes_no",
                yes_no="yes",
                tags=["yes-no"],
            ),
        ],
        gold,
    )
    cfg = EvalConfig(gold=str(gold), preset="fast", overrides=["generate.max_new_tokens=64"])
    run(cfg, root / "run", None)
    return root / "run", cfg


def test_run_directory_is_complete_and_metrics_match_records(finished_run) -> None:
    run_dir, _ = finished_run
    for name in (
        "config.json",
        "environment.json",
        "fingerprints.json",
        "metrics.json",
        "summary.md",
    ):
        assert (run_dir / name).is_file(), name
    fingerprints = json.loads((run_dir / "fingerprints.json").read_text())
    assert {"embedder", "index", "generator", "settings"} <= set(fingerprints)
    records = {p.stem: json.loads(p.read_text()) for p in (run_dir / "records").glob("*.json")}
    assert set(records) == {"pfs", "france", "chemo"}
    metrics = json.loads((run_dir / "metrics.json").read_text())["overall"]

    # Hand computation from the raw responses.
    pfs = records["pfs"]["response"]
    pfs_correct = float(not pfs["abstained"] and fact_present("7.1 months", pfs["answer"]))
    chemo = records["chemo"]["response"]
    chemo_correct = float(chemo["label"] == "yes")
    # The label comes from the trained verdict classifier: its most probable label, with
    # the probabilities and whether it was confident enough to be shown.
    verdict = chemo["verdict"]
    assert set(verdict["probabilities"]) == set(chemo["logprobs"]) == {"yes", "no", "maybe"}
    assert chemo["label"] == verdict["label"]
    assert verdict["label"] == max(verdict["probabilities"], key=verdict["probabilities"].get)
    assert metrics["correct"]["value"] == pytest.approx((pfs_correct + chemo_correct) / 2)
    assert metrics["correct"]["n"] == 2
    france_abstained = records["france"]["response"]["abstained"]
    assert metrics["abstention_recall"]["value"] == float(france_abstained)
    assert records["pfs"]["retrieval"]["passage_rank"] == 1
    assert metrics["passage_recall@1"]["value"] == 1.0
    assert metrics["latency.total_ms"]["n"] == 3


def test_rerun_resumes_from_cached_records(finished_run) -> None:
    run_dir, cfg = finished_run
    before = {p.name: p.stat().st_mtime_ns for p in (run_dir / "records").glob("*.json")}
    run(cfg, run_dir, None)
    after = {p.name: p.stat().st_mtime_ns for p in (run_dir / "records").glob("*.json")}
    assert before == after


def test_report_compare_and_gate(finished_run) -> None:
    run_dir, _ = finished_run
    html = write_report(run_dir).read_text()
    assert html.count("data:image/png;base64,") >= 2 and "http" not in html.split("<body>")[0]
    same = compare_runs(run_dir, run_dir)
    assert same["metrics"]["correct"]["delta"] == 0.0 and not same["changed"]
    metrics = json.loads((run_dir / "metrics.json").read_text())
    assert gate(metrics, {"correct": 2.0}) == [
        f"correct: {metrics['overall']['correct']['value']:.3f} < 2.0"
    ]
    assert gate(metrics, {"no_such_metric": 0.1}) == ["no_such_metric: not measured in this run"]


def test_kept_drafts_are_replayed_without_timings(finished_run, tmp_path: Path) -> None:
    _, cfg = finished_run
    drafts = tmp_path / "drafts"
    first = run(cfg, tmp_path / "first", None, draft_cache=drafts)
    kept = sorted(p.name for p in drafts.glob("*.json"))
    assert kept and first["drafts_replayed"] == 0
    second = run(cfg, tmp_path / "second", None, draft_cache=drafts)
    assert second["drafts_replayed"] == len(kept)
    assert sorted(p.name for p in drafts.glob("*.json")) == kept
    a = {p.name: json.loads(p.read_text()) for p in (tmp_path / "first" / "records").glob("*")}
    b = {p.name: json.loads(p.read_text()) for p in (tmp_path / "second" / "records").glob("*")}

    def shown(response: dict) -> dict:
        return {k: v for k, v in response.items() if not k.startswith("timings")}

    for name, record in a.items():
        assert shown(b[name]["response"]) == shown(record["response"])
        if b[name].get("replayed_draft"):
            assert not any(k.startswith("latency.") for k in b[name]["values"])

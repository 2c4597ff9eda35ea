"""The fusion-weight benchmark: settings grids on one half of a real (tiny) dataset."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from rag.eval.bench_fusion import main, parse_config
from rag.eval.datasets import load_shared
from rag.eval.splits import half_of


def test_a_config_is_read_and_checked_before_any_index_is_built() -> None:
    assert parse_config("ctx:context_weight=0.5,expand_queries=false") == (
        "ctx",
        {"context_weight": 0.5, "expand_queries": False},
    )
    assert parse_config("default:") == ("default", {})
    with pytest.raises(SystemExit, match="unknown retrieve setting 'contxt_weight'"):
        parse_config("x:contxt_weight=1")
    with pytest.raises(ValueError):
        parse_config("x:context_weight=-1")


def _dataset(folder: Path) -> Path:
    folder.mkdir(parents=True)
    drugs = ["zorvatinib", "melfuzumab", "tarpelisib", "corvinostat", "dalupatide", "norexitide"]
    corpus = [
        {
            "id": f"d{i}",
            "title": f"Trial of {drug}",
            "text": f"{drug} improved survival in cohort {i}; responses lasted {i + 4} months.",
        }
        for i, drug in enumerate(drugs)
    ]
    questions = [
        {
            "id": f"q{i}",
            "question": f"How long did responses to {drug} last?",
            "gold_ids": [f"d{i}"],
        }
        for i, drug in enumerate(drugs)
    ]
    (folder / "corpus.jsonl").write_text("\n".join(json.dumps(r) for r in corpus) + "\n")
    (folder / "questions_dev.jsonl").write_text("\n".join(json.dumps(r) for r in questions) + "\n")
    return folder


def test_a_grid_runs_on_one_half_and_writes_its_figures(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("RAG_CACHE_DIR", str(tmp_path / "cache"))
    data = _dataset(tmp_path / "tiny")
    tune = [q.id for q in load_shared(data).half("tune").questions]
    assert tune and all(half_of(i) == "tune" for i in tune)
    assert len(tune) < 6  # the other half is left out
    out = tmp_path / "fusion.json"
    main(
        [
            "--dataset", str(data), "--half", "tune",
            "--config", "default:", "--config", "lexical-only:dense_weight=0",
            "--out", str(out),
        ]
    )  # fmt: skip
    result = json.loads(out.read_text())["datasets"]["tiny"]
    assert result["questions"] == len(tune)
    rows = {r["name"]: r for r in result["rows"]}
    assert rows["lexical-only"]["overrides"] == {"dense_weight": 0}
    # Each question names its own drug: both configurations find its document first.
    assert rows["default"]["metrics"]["mrr@10"] == 1.0
    assert rows["lexical-only"]["metrics"]["mrr@10"] == 1.0


def test_rag_eval_retrieval_refuses_an_unknown_half(tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from rag.cli import app

    data = _dataset(tmp_path / "tiny")
    result = CliRunner().invoke(app, ["eval", "retrieval", "--dataset", str(data), "--half", "mid"])
    assert result.exit_code != 0 and "--half must be tune, report or all" in result.output

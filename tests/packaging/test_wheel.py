"""A non-editable wheel carries the seed corpus, web assets and gold sets, and finds them."""

from __future__ import annotations

import os
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.integration
def test_wheel_contents_and_seed_lookup(tmp_path: Path) -> None:
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w", str(tmp_path), str(ROOT)],
        check=True,
        capture_output=True,
    )
    wheel = next(tmp_path.glob("onco_rag-*.whl"))
    names = set(zipfile.ZipFile(wheel).namelist())
    for seed in (ROOT / "seeds").iterdir():
        assert f"rag/seeds/{seed.name}" in names, seed.name
    assert "rag/eval/gold/seed.jsonl" in names
    assert "rag/ui/static/widget.js" in names
    # The trained artifacts a fresh install uses with no training step.
    for artifact in (
        "rag/verify/artifacts/adapter.safetensors",
        "rag/verify/artifacts/judge.json",
        "rag/rerank/artifacts/reranker.safetensors",
        "rag/rerank/artifacts/reranker.json",
    ):
        assert artifact in names, artifact
    assert not any(n.startswith(("tests/", "index/", "ui/", "eval/", "seeds/")) for n in names)

    target = tmp_path / "site"
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "install",
            "--no-deps",
            "-q",
            "--target",
            str(target),
            str(wheel),
        ],
        check=True,
        capture_output=True,
    )
    code = "import rag.paths as p; print(p.seeds_dir()); print(p.static_dir()); print(p.gold_dir())"
    done = subprocess.run(
        [sys.executable, "-c", code],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        check=True,
        env=os.environ | {"PYTHONPATH": str(target)},
    )
    lines = done.stdout.split()
    assert all(line.startswith(str(target)) for line in lines), lines

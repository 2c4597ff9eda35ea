"""The `rag` command line as a user runs it."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from rag.cli import app

runner = CliRunner()


def _rag(*args: str):
    return runner.invoke(app, list(args), catch_exceptions=False)


def test_add_list_stats_search_remove(tmp_path: Path) -> None:
    index = str(tmp_path / "idx")
    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "a.md").write_text("# Alpha trial\n\nOsimertinib improved PFS to 18.9 months.\n")
    (docs / "b.txt").write_text("Beta study\n\nNivolumab showed an ORR of 20%.\n")
    (docs / "notes.docx").write_bytes(b"PK\x03\x04 not really")

    added = _rag("index", "add", str(docs), "--index", index, "--json")
    assert added.exit_code == 0, added.output
    statuses = {Path(r["path"]).name: r["status"] for r in json.loads(added.output)["results"]}
    # Found by walking a folder, an unsupported type is skipped, not a failure.
    assert statuses == {"a.md": "added", "b.txt": "added", "notes.docx": "skipped"}

    listed = json.loads(_rag("index", "list", "--index", index, "--json").output)
    assert {d["doc_id"] for d in listed} == {"a", "b"}
    assert {d["title"] for d in listed} == {"Alpha trial", "Beta study"}

    stats = json.loads(_rag("index", "stats", "--index", index, "--json").output)
    assert stats["documents"] == 2 and stats["embedder"] == "all-MiniLM-L6-v2"
    assert stats["vector_index"] == "flat" and stats["dim"] == 384

    found = json.loads(
        _rag("search", "osimertinib progression-free", "--index", index, "-k", "1", "--json").output
    )
    assert found["hits"][0]["provenance"]["doc_id"] == "a"
    assert "18.9 months" in found["hits"][0]["text"]

    text = _rag("search", "nivolumab response", "--index", index, "-k", "1")
    assert "[1] Beta study" in text.output and "ORR of 20%" in text.output

    removed = _rag("index", "remove", "b", "--index", index)
    assert removed.exit_code == 0 and "removed" in removed.output
    assert _rag("index", "check", "--index", index).exit_code == 0
    missing = _rag("index", "remove", "b", "--index", index)
    assert missing.exit_code == 5 and "no document 'b'" in missing.output


def test_bad_inputs_are_reported_one_line_each_and_exit_nonzero(tmp_path: Path) -> None:
    index = str(tmp_path / "idx")
    good = tmp_path / "good.txt"
    good.write_text("A good document about pembrolizumab.")
    empty = tmp_path / "empty.txt"
    empty.write_text("")
    latin = tmp_path / "latin.txt"
    latin.write_bytes("na\xefve caf\xe9".encode("latin-1"))
    binary = tmp_path / "blob.md"
    binary.write_bytes(bytes(range(256)) * 20)
    big = tmp_path / "big.txt"
    big.write_text("x" * 2_000_000)
    unsupported = tmp_path / "slides.pptx"
    unsupported.write_bytes(b"PK")
    result = _rag(
        "index",
        "add",
        str(good),
        str(empty),
        str(latin),
        str(binary),
        str(big),
        str(unsupported),
        str(tmp_path / "missing.pdf"),
        "--index",
        index,
        "--set",
        "ingest.max_file_mb=1",
        "--json",
    )
    assert result.exit_code == 1
    by_name = {Path(r["path"]).name: r for r in json.loads(result.output)["results"]}
    assert by_name["good.txt"]["status"] == "added"
    reasons = {name: r["reason"] for name, r in by_name.items() if r["status"] == "failed"}
    assert reasons["empty.txt"] == "file is empty"
    assert "not valid UTF-8" in reasons["latin.txt"]
    assert "binary" in reasons["blob.md"]
    assert "exceeds the 1 MB limit" in reasons["big.txt"]
    assert "unsupported file type '.pptx'" in reasons["slides.pptx"]
    assert reasons["missing.pdf"] == "no such file"
    assert all("\n" not in r for r in reasons.values())
    # The good document is searchable despite the failures.
    found = json.loads(_rag("search", "pembrolizumab", "--index", index, "--json").output)
    assert found["hits"][0]["provenance"]["doc_id"] == "good"


def test_settings_errors_are_one_clear_line(tmp_path: Path) -> None:
    bad = _rag("index", "list", "--index", str(tmp_path), "--set", "retrieve.k=banana")
    assert bad.exit_code == 2 and "invalid setting retrieve.k" in bad.output
    preset = _rag("index", "list", "--index", str(tmp_path), "--preset", "nope")
    assert preset.exit_code == 2 and "unknown preset 'nope'" in preset.output


@pytest.mark.integration
def test_first_search_builds_the_seed_index_by_itself(tmp_path: Path) -> None:
    """The installed `rag` entry point, in a fresh directory, with no index yet."""
    rag = Path(sys.executable).parent / "rag"
    env = os.environ | {"RAG_INDEX_DIR": str(tmp_path / "index")}
    done = subprocess.run(
        [str(rag), "search", "pfs ivonescimab", "-k", "1", "--json"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr
    hit = json.loads(done.stdout)["hits"][0]
    assert "HARMONi-A" in hit["text"]
    assert (tmp_path / "index" / "manifest.json").is_file()

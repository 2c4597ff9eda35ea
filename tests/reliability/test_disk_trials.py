"""A full disk, a read-only disk, two writers: nothing breaks, nothing committed is lost.

The index lives on a small tmpfs (mounting needs root, as CI runs; elsewhere these tests skip)
and `rag index add` runs as a user runs it, until the disk fills: the command stops with a
message naming the disk, the last committed state loads, answers and checks consistent, no
temp file is left, and once space is freed the same command completes. A read-only index
refuses writes clearly and still answers. An upload through the API while `rag index add`
runs: both finish, the index holds both. Figures: eval/results/disk_trials.json.
"""

from __future__ import annotations

import os
import random
import subprocess
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import pytest

from rag.paths import seeds_dir

from .hostile import merge_results

pytestmark = pytest.mark.integration

RESULTS = "disk_trials.json"
N_DOCS = 12
# Wide lines: an error message is checked whole, not as the terminal would wrap it.
ENV = os.environ | {"HF_HUB_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "false", "COLUMNS": "400"}


def rag(*args: str | Path, timeout: float = 900) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "rag.cli", *map(str, args)],
        capture_output=True,
        text=True,
        env=ENV,
        timeout=timeout,
    )


def write_docs(folder: Path, n: int, seed: int = 7) -> None:
    """Trial reports of ~8 KB each, every one distinct (no duplicate is skipped)."""
    rng = random.Random(seed)
    folder.mkdir(parents=True, exist_ok=True)
    for i in range(n):
        paras = [
            f"Cohort {i}-{j}: patients with advanced non-small cell lung cancer received "
            f"regimen R{i}x{j} in study S{i:03d}. The median overall survival was "
            f"{rng.randint(5, 30)}.{rng.randint(0, 9)} months versus {rng.randint(5, 30)}."
            f"{rng.randint(0, 9)} months (HR {rng.random():.2f}). Grade 3 events occurred in "
            f"{rng.randint(1, 60)}% of patients, marker m{rng.randint(0, 10**9)}."
            for j in range(30)
        ]
        (folder / f"report{i:02d}.txt").write_text("\n\n".join(paras), encoding="utf-8")


@contextmanager
def tmpfs(where: Path, size_kb: int) -> Iterator[Path]:
    where.mkdir(parents=True, exist_ok=True)
    mounted = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", f"size={size_kb}k", "tmpfs", str(where)],
        capture_output=True,
        text=True,
    )
    if mounted.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here (needs root): {mounted.stderr.strip()}")
    try:
        yield where
    finally:
        subprocess.run(["umount", "-l", str(where)], capture_output=True)


def remount(where: Path, options: str) -> None:
    subprocess.run(["mount", "-o", f"remount,{options}", str(where)], check=True)


def leftovers(index: Path) -> list[str]:
    """Temp files of the atomic writers (SQLite's own -wal/-shm files are not leftovers)."""
    return sorted(
        p.name
        for p in index.iterdir()
        if (p.name.startswith(".") and p.name != ".write.lock") or p.name.endswith(".tmp")
    )


def documents(index: Path) -> int:
    listed = rag("index", "list", "--index", index, "--json")
    assert listed.returncode == 0, listed.stderr[-2000:]
    import json

    return len(json.loads(listed.stdout))


@pytest.mark.parametrize("size_kb", [520, 900])
def test_a_full_disk_stops_clearly_and_the_same_command_completes_later(
    tmp_path: Path, size_kb: int
) -> None:
    docs = tmp_path / "docs"
    write_docs(docs, N_DOCS)
    with tmpfs(tmp_path / "disk", size_kb) as disk:
        index = disk / "index"
        assert rag("index", "add", seeds_dir(), "--index", index).returncode == 0
        full = rag("index", "add", docs, "--index", index, "--set", "ingest.commit_every=3")
        assert full.returncode == 8, (full.stdout[-1500:], full.stderr[-1500:])
        message = " ".join((full.stdout + full.stderr).split())
        assert f"no space left on the disk that holds the index {index.resolve()}" in message
        assert "Traceback" not in full.stdout + full.stderr
        left = leftovers(index)
        check = rag("index", "check", "--index", index)
        committed = documents(index)
        search = rag("search", "median overall survival regimen", "--index", index, "-k", "1")
        remount(disk, f"size={size_kb * 8}k")  # space freed
        again = rag("index", "add", docs, "--index", index, "--set", "ingest.commit_every=3")
        after = documents(index)
        final_check = rag("index", "check", "--index", index)
    trial = {
        "disk_kb": size_kb,
        "exit_code": full.returncode,
        "documents_committed_before_full": committed,
        "temp_leftovers": left,
        "consistent_after_full": check.returncode == 0,
        "answers_after_full": search.returncode == 0 and "[1]" in search.stdout,
        "rerun_exit_code": again.returncode,
        "documents_after_rerun": after,
        "consistent_after_rerun": final_check.returncode == 0,
    }
    merge_results(RESULTS, f"disk_full_{size_kb}kb", trial)
    assert not left
    assert check.returncode == 0 and "index is consistent" in check.stdout
    assert committed >= 2  # the seed documents, committed before, are all still there
    assert trial["answers_after_full"], search.stdout[-1000:]
    assert again.returncode == 0, again.stdout[-1500:]
    assert after == 2 + N_DOCS  # nothing committed was lost, nothing is missing
    assert final_check.returncode == 0


def test_a_read_only_index_refuses_writes_clearly_and_still_answers(tmp_path: Path) -> None:
    with tmpfs(tmp_path / "disk", 4096) as disk:
        index = disk / "index"
        assert rag("index", "add", seeds_dir(), "--index", index).returncode == 0
        remount(disk, "ro")
        refused = rag("index", "add", Path(__file__), "--index", index)
        search = rag("search", "ivonescimab progression-free survival", "--index", index)
        removed = rag("index", "remove", "000_e0a9c25fbc4c4afa", "--index", index)
        remount(disk, "rw")
        check = rag("index", "check", "--index", index)
        kept = documents(index)
    message = " ".join((refused.stdout + refused.stderr).split())
    merge_results(
        RESULTS,
        "read_only",
        {
            "add_exit_code": refused.returncode,
            "remove_exit_code": removed.returncode,
            "search_exit_code": search.returncode,
            "documents_kept": kept,
        },
    )
    assert refused.returncode == 8 and "cannot be written" in message, refused.stdout[-1500:]
    assert "search and answers still work" in message
    assert removed.returncode == 8
    assert search.returncode == 0 and "[1]" in search.stdout
    assert check.returncode == 0 and kept == 2


def test_an_upload_while_the_cli_adds_documents_both_finish(tmp_path: Path) -> None:
    from rag.api.launch import ServerProcess

    docs = tmp_path / "docs"
    write_docs(docs, N_DOCS, seed=11)
    index = tmp_path / "index"
    assert rag("index", "add", seeds_dir(), "--index", index).returncode == 0
    server = ServerProcess(index, workdir=tmp_path)
    server.start()
    try:
        results: dict[str, object] = {}

        def cli() -> None:
            results["cli"] = rag("index", "add", docs, "--index", index, "--set",
                                 "ingest.commit_every=2")  # fmt: skip

        writer = threading.Thread(target=cli)
        writer.start()
        upload = tmp_path / "upload.md"
        upload.write_text(
            "# Uploaded during an ingest\n\nThe phase 2 study of drug Q7 reported a response "
            "rate of 31% in previously treated patients.\n",
            encoding="utf-8",
        )
        with upload.open("rb") as handle:
            response = httpx.post(
                f"{server.url}/api/documents",
                files={"files": ("upload.md", handle, "text/markdown")},
                timeout=900,
            )
        writer.join(timeout=900)
    finally:
        server.stop()
    cli_run = results["cli"]
    assert isinstance(cli_run, subprocess.CompletedProcess)
    check = rag("index", "check", "--index", index)
    total = documents(index)
    merge_results(
        RESULTS,
        "two_writers",
        {
            "upload_status": response.status_code,
            "cli_exit_code": cli_run.returncode,
            "documents": total,
            "consistent": check.returncode == 0,
        },
    )
    assert response.status_code == 200, response.text
    assert response.json()["results"][0]["status"] == "added"
    assert cli_run.returncode == 0, cli_run.stdout[-1500:]
    assert check.returncode == 0 and total == 2 + N_DOCS + 1


def test_only_errors_about_the_index_directory_are_called_a_disk_problem(tmp_path: Path) -> None:
    """An unreadable input file is the input's problem, not a read-only index."""
    import errno
    import sqlite3

    from rag.errors import IndexDiskFullError, IndexReadOnlyError
    from rag.store.disk import disk_problem

    index = tmp_path / "index"
    outside = PermissionError(errno.EACCES, "Permission denied", str(tmp_path / "paper.pdf"))
    assert disk_problem(outside, index) is None
    inside = OSError(errno.EROFS, "Read-only file system", str(index / ".write.lock"))
    assert isinstance(disk_problem(inside, index), IndexReadOnlyError)
    full = sqlite3.OperationalError("database or disk is full")
    assert isinstance(disk_problem(full, index), IndexDiskFullError)
    assert disk_problem(ValueError("no"), index) is None

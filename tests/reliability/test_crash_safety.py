"""Kill `rag index add` at 20 seeded moments; every time the index must load, be consistent and
keep every document whose commit completed. Then the interrupted ingest runs to completion.

The child is the real CLI command (``rag.cli.main`` in a subprocess, ~60 small text files,
``ingest.commit_every=3``) with three print hooks: the ingest starting, each completed commit
(``Indexer.on_commit``, as tests/store/test_index.py does) and the derived-file writes at the
end of the write session (FAISS + BM25 + manifest). Fourteen kills are spread over the whole
ingest, each anchored on the child's START or n-th commit marker plus a seeded fraction of one
commit's time (a wall-clock plan from a calibration run misses when the machine is busier or
idler than it was); six land inside the derived-file writes. Figures go to
eval/results/crash_safety.json.
"""

from __future__ import annotations

import os
import random
import shutil
import signal
import subprocess
import sys
import threading
import time
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from rag.assistant import Assistant

from ..conftest import make_settings
from .hostile import merge_results

pytestmark = [pytest.mark.slow, pytest.mark.integration]

N_DOCS = 60
SPREAD_KILLS = 14
SYNC_KILLS = 6
SEED = 20240611
RESULTS = "crash_safety.json"

CHILD = """
import sys, time

import rag.cli as cli
import rag.indexer as indexer
from rag.store.index import IndexWriter


def say(*parts):
    print(*parts, flush=True)


_init = indexer.Indexer.__init__
_add_paths = indexer.Indexer.add_paths
_sync = IndexWriter.sync_derived


def init(self, *args, **kwargs):
    _init(self, *args, **kwargs)
    self.on_commit = lambda results: say("COMMITTED", *(r.doc_id for r in results))


def add_paths(self, *args, **kwargs):
    say("START")
    return _add_paths(self, *args, **kwargs)


def sync(self):
    say("SYNC")
    _sync(self)
    say("SYNCED")


if __name__ == "__main__":  # the parser sandbox spawns: a child must not rerun the command
    indexer.Indexer.__init__ = init
    indexer.Indexer.add_paths = add_paths
    IndexWriter.sync_derived = sync
    sys.argv = ["rag", "index", "add", sys.argv[1], "--index", sys.argv[2], "--json",
                "--set", "ingest.commit_every=3"]
    try:
        cli.main()
    finally:
        say("DONE")
"""


def write_docs(folder: Path, n: int) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    for i in range(n):
        (folder / f"paper{i:03d}.txt").write_text(
            f"Study {i}\n\nIn cohort {i}, drug D{i} improved progression-free survival to "
            f"{i + 3}.{i % 10} months (HR, 0.{40 + i % 50}). Responses lasted a median of "
            f"{i + 8} months and toxicity was manageable in {i + 20} patients.\n",
            encoding="utf-8",
        )


class Child:
    """The CLI ingest in a subprocess, its marker lines timestamped by a reader thread."""

    def __init__(self, script: Path, docs: Path, index: Path, log: Path) -> None:
        env = os.environ | {"PYTHONUNBUFFERED": "1", "HF_HUB_OFFLINE": "1"}
        self.stderr = log.open("w")
        self.proc = subprocess.Popen(
            [sys.executable, str(script), str(docs), str(index)],
            stdout=subprocess.PIPE,
            stderr=self.stderr,
            text=True,
            env=env,
        )
        self.events: list[tuple[float, str]] = []
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self.events.append((time.monotonic(), line.rstrip("\n")))

    def wait_for(self, marker: str, timeout: float, nth: int = 1) -> float:
        """When the ``nth`` line starting with ``marker`` was read."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            seen = [t for t, line in list(self.events) if line.split(" ", 1)[0] == marker]
            if len(seen) >= nth:
                return seen[nth - 1]
            if self.proc.poll() is not None and not self._reader.is_alive():
                break
            time.sleep(0.002)
        raise TimeoutError(f"no {marker} from the child")

    def kill(self) -> float:
        at = time.monotonic()
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait()
        self._reader.join(timeout=10)
        self.stderr.close()
        return at

    def finish(self, timeout: float) -> int:
        code = self.proc.wait(timeout=timeout)
        self._reader.join(timeout=10)
        self.stderr.close()
        return code

    def committed(self, before: float | None = None) -> set[str]:
        return {
            doc
            for t, line in self.events
            if line.startswith("COMMITTED") and (before is None or t <= before)
            for doc in line.split()[1:]
        }

    def phase(self, at: float) -> str:
        """Where the kill landed, from the markers seen before it."""
        seen = [line.split(" ", 1)[0] for t, line in self.events if t <= at]
        if "SYNCED" in seen or "DONE" in seen:
            return "after the derived-file writes"
        if "SYNC" in seen:
            return "during the derived-file writes"
        if "COMMITTED" in seen:
            return "between or inside batch commits"
        return "before the first commit"


def temp_leftovers(index: Path) -> list[str]:
    """Half-written derived files a crash leaves behind (the atomic writers' temp names)."""
    prefixes = (".dense.", ".lexical.", ".manifest.json.")
    return sorted(p.name for p in index.iterdir() if p.name.startswith(prefixes))


def test_killed_cli_ingest_never_loses_committed_documents(tmp_path: Path, embedder) -> None:
    docs = tmp_path / "docs"
    write_docs(docs, N_DOCS)
    script = tmp_path / "child.py"
    script.write_text(CHILD)

    # A completed ingest that every crash must leave intact.
    base = tmp_path / "base-index"
    first = Assistant(make_settings(base), embedder=embedder)
    assert first.add([docs / "paper000.txt"]).summary() == {"added": 1}
    first.index.close()

    # Calibration: one uninterrupted run gives the span to spread the kills over.
    calib_index = tmp_path / "calibration"
    shutil.copytree(base, calib_index)
    calib = Child(script, docs, calib_index, tmp_path / "calibration.log")
    start = calib.wait_for("START", 600)
    assert calib.finish(600) == 0, (tmp_path / "calibration.log").read_text()[-2000:]
    sync_at = calib.wait_for("SYNC", 1)
    run_s = calib.wait_for("DONE", 1) - start
    sync_s = calib.wait_for("SYNCED", 1) - sync_at
    assert len(calib.committed()) == N_DOCS - 1

    commits = [t for t, line in calib.events if line.startswith("COMMITTED")]
    gap_s = (commits[-1] - start) / len(commits)

    # Spread kills are anchored on the child's own markers (START, then the n-th commit) plus
    # a seeded fraction of one commit's time, so they land across the whole ingest however
    # much faster or slower this run is than the calibration; sync kills land in the writes.
    rng = random.Random(SEED)
    plan: list[tuple[str, int, float]] = [
        ("spread", i * len(commits) // SPREAD_KILLS, rng.random() * gap_s)
        for i in range(SPREAD_KILLS)
    ]
    plan += [("sync", 0, rng.random() * 0.9 * sync_s) for _ in range(SYNC_KILLS)]
    rng.shuffle(plan)

    trials: list[dict[str, Any]] = []
    for n, (kind, after_commits, delay) in enumerate(plan):
        index = tmp_path / f"index-{n:02d}"
        shutil.copytree(base, index)
        child = Child(script, docs, index, tmp_path / f"child-{n:02d}.log")
        if kind == "sync":
            anchor = child.wait_for("SYNC", 900)
        elif after_commits:
            anchor = child.wait_for("COMMITTED", 900, nth=after_commits)
        else:
            anchor = child.wait_for("START", 600)
        while time.monotonic() < anchor + delay and child.proc.poll() is None:
            time.sleep(0.001)
        exited_first = child.proc.poll() is not None
        killed_at = child.kill()
        committed = child.committed(before=killed_at)
        leftovers = temp_leftovers(index)

        after = Assistant(make_settings(index), embedder=embedder)
        problems = after.index.check()
        present = {d.doc_id for d in after.documents()}
        half_added = [
            d.doc_id for d in after.documents()
            if d.chunks != len(after.index.store.chunk_ids_for_doc(d.doc_id))
        ]  # fmt: skip
        hits = after.search("drug D5 progression-free survival", k=3).hits
        rerun = after.add([docs])
        final = {d.doc_id for d in after.documents()}
        final_problems = after.index.check()
        after.index.close()
        trials.append(
            {
                "kind": kind,
                "after_commits": after_commits,
                "delay_s": round(delay, 3),
                "phase": "process had already exited" if exited_first else child.phase(killed_at),
                "committed_before_kill": len(committed),
                "documents_after_kill": len(present),
                "lost": sorted(committed - present),
                "base_document_kept": "paper000" in present,
                "check_problems": problems,
                "half_added": half_added,
                "search_hits": len(hits),
                "temp_leftovers": leftovers,
                "rerun_failed": rerun.failed,
                "rerun_summary": rerun.summary(),
                "documents_after_rerun": len(final),
                "check_after_rerun": final_problems,
            }
        )

    # The real command, once more, over the last interrupted index: it completes.
    finish = subprocess.run(
        [sys.executable, "-m", "rag.cli", "index", "add", str(docs), "--index",
         str(tmp_path / f"index-{len(plan) - 1:02d}"), "--set", "ingest.commit_every=3"],
        capture_output=True, text=True, env=os.environ | {"HF_HUB_OFFLINE": "1"}, timeout=900,
    )  # fmt: skip
    check = subprocess.run(
        [sys.executable, "-m", "rag.cli", "index", "check", "--index",
         str(tmp_path / f"index-{len(plan) - 1:02d}")],
        capture_output=True, text=True, env=os.environ | {"HF_HUB_OFFLINE": "1"}, timeout=900,
    )  # fmt: skip

    consistent = sum(1 for t in trials if not t["check_problems"] and not t["half_added"])
    lost = sum(len(t["lost"]) for t in trials)
    figures = {
        "kills": len(trials),
        "consistent_loads": consistent,
        "lost_committed_documents": lost,
        "base_document_kept": sum(t["base_document_kept"] for t in trials),
        "kills_by_phase": dict(Counter(t["phase"] for t in trials)),
        "reruns_completed": sum(
            1
            for t in trials
            if not t["rerun_failed"]
            and t["documents_after_rerun"] == N_DOCS
            and not t["check_after_rerun"]
        ),
        "kills_leaving_temp_files": sum(1 for t in trials if t["temp_leftovers"]),
        "cli_rerun_exit_code": finish.returncode,
        "cli_check_exit_code": check.returncode,
        "calibration": {
            "run_s": round(run_s, 2),
            "commits": len(commits),
            "commit_s": round(gap_s, 3),
            "derived_writes_s": round(sync_s, 3),
        },
        "docs": N_DOCS,
        "commit_every": 3,
        "seed": SEED,
        "trials": trials,
    }
    merge_results(RESULTS, "kill_during_ingest", figures)

    assert lost == 0, [t for t in trials if t["lost"]]
    assert consistent == len(trials), [t for t in trials if t["check_problems"] or t["half_added"]]
    assert all(t["base_document_kept"] and t["search_hits"] for t in trials)
    assert figures["reruns_completed"] == len(trials)
    assert finish.returncode == 0, finish.stderr[-2000:]
    assert check.returncode == 0 and "index is consistent" in check.stdout
    phases = figures["kills_by_phase"]
    assert phases.get("during the derived-file writes", 0) >= 3, phases
    assert phases.get("between or inside batch commits", 0) >= 5, phases

"""Hostile and malformed files through the loaders, `rag index add` and the upload endpoint.

For every generated input (see hostile.py): no crash (exit code 0/1, no traceback, no HTTP
500), no hang (each file within the per-file limit), a specific one-line reason for each
rejection, good files mixed in still indexed, and the index unchanged by what was rejected.
Counts land in eval/results/hostile_files.json.
"""

from __future__ import annotations

import itertools
import json
import os
import shutil
import sqlite3
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from rag.errors import IngestError
from rag.indexer import shown_path
from rag.ingest import LoaderProcess
from rag.ingest.registry import SUFFIXES, format_for, load_file, run_loader
from rag.settings import IngestSettings

from .hostile import Case, generate, generate_big, merge_results, secret_leaked

pytestmark = pytest.mark.integration

TIMEOUT_S = 5.0  # ingest.timeout_s for every run here: short, so bombs cost little
# Chunking, embedding and committing one accepted file on a busy 2-core machine (the largest
# pathological text here is 600 KB of one-word paragraphs). A hang shows up as far more.
GRACE_S = 60.0
RESULTS = "hostile_files.json"
REJECTED = {"failed", "skipped"}
INDEXED = {"added", "replaced", "unchanged", "duplicate"}
ADMIN_KEY = "hostile-admin-0c1d2e3f"

# `rag index add` exactly as the console script runs it, plus one timestamp per file on stderr
# (the progress hook the CLI drives; without a terminal it is otherwise silent).
TIMED_CLI = """
import json, sys, time
from contextlib import contextmanager
import rag.cli as cli
import rag.cli.index as index_commands

@contextmanager
def _progress(label, enabled=True):
    def update(done, total, item):
        sys.stderr.write("PROGRESS " + json.dumps({"t": time.monotonic(), "item": item}) + "\\n")
        sys.stderr.flush()
    yield update

if __name__ == "__main__":  # the parser sandbox spawns: a child must not rerun the command
    index_commands.progress_bar = _progress
    sys.argv = ["rag", *sys.argv[1:]]
    cli.main()
"""


@pytest.fixture(scope="module")
def corpus(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Path, list[Case]]]:
    root = tmp_path_factory.mktemp("hostile")
    cases = generate(root)
    yield root, cases
    for path in root.rglob("*"):  # chmod 000 files would otherwise stay behind
        if not path.is_symlink():
            path.chmod(0o700)


@pytest.fixture(scope="module")
def big(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Path, list[Case]]]:
    root = tmp_path_factory.mktemp("hostile-big")
    yield root, generate_big(root)
    shutil.rmtree(root, ignore_errors=True)


def _one_line(reason: str | None) -> bool:
    return bool(reason and reason.strip()) and "\n" not in reason and len(reason) <= 400


def _reason_problem(case: Case, error: str | None, reason: str | None) -> str | None:
    """Why a rejection is not acceptable (None when it is)."""
    if not _one_line(reason):
        return f"{case.path.name!r}: reason is not one specific line: {reason!r}"
    if case.errors and error not in case.errors:
        return f"{case.path.name!r}: {error} ({reason}) not in {sorted(case.errors)}"
    if reason and reason.startswith("parser failed:"):
        return f"{case.path.name!r}: an unexpected parser exception leaked: {reason}"
    return None


def _check_outcome(
    case: Case, status: str | None, error: str | None, reason: str | None, expect: str
) -> str | None:
    """Compare one file's status with what must happen to it ("none" = not in the report)."""
    got = "none" if status is None else status
    if expect == "absent":
        return None if got == "none" else f"{case.path.name!r}: expected no result, got {got}"
    if expect == "accept":
        if got not in INDEXED:
            return f"{case.path.name!r}: expected it indexed, got {got}: {error}: {reason}"
        return None
    if expect == "skip":
        if got != "skipped":
            return f"{case.path.name!r}: expected skipped, got {got}: {reason}"
        return (
            _reason_problem(case, error, reason)
            if case.errors
            else (None if _one_line(reason) else f"{case.path.name!r}: no reason for the skip")
        )
    if expect == "reject":
        if got not in REJECTED:
            return f"{case.path.name!r}: expected a rejection, got {got}"
        return _reason_problem(case, error, reason)
    # either: indexed, or rejected with a proper reason
    if got in REJECTED:
        return _reason_problem(case, error, reason)
    return None if got in INDEXED else f"{case.path.name!r}: no result for an 'either' case"


# -- the generator --------------------------------------------------------------------------


def test_generator_covers_every_kind_of_hostile_input(corpus: tuple[Path, list[Case]]) -> None:
    _, cases = corpus
    assert len(cases) >= 200
    groups = Counter(c.group for c in cases)
    for group in (
        "good", "pdf-truncated", "pdf-encrypted", "pdf-bomb", "pdf-damaged", "xml-entities",
        "xml-external", "xml-structure", "html-bomb", "html-odd", "text-encoding",
        "markdown-pathological", "binary", "empty", "names", "upload-names", "sidecar", "special",
    ):  # fmt: skip
        assert groups[group] > 0, group
    assert groups["pdf-truncated"] >= 40
    for suffix in SUFFIXES:  # garbage and emptiness under every supported extension
        for group in ("binary", "empty"):
            assert any(c.group == group and c.path.suffix == suffix for c in cases)
    kinds = {c.note.split(" ")[0] for c in cases if c.group == "special"}
    assert {"symlink", "FIFO:"} <= kinds


# -- loaders, directly (quick) --------------------------------------------------------------


def test_loaders_reject_hostile_files_by_reason_within_the_time_limit(
    corpus: tuple[Path, list[Case]],
) -> None:
    """Every plain file through read checks + the loader (sandboxed where the CLI sandboxes)."""
    _, cases = corpus
    settings = IngestSettings(timeout_s=TIMEOUT_S)
    problems: list[str] = []
    seconds: dict[str, float] = {}
    reasons: Counter[str] = Counter()
    with LoaderProcess(TIMEOUT_S, settings.max_memory_mb) as sandbox:
        for case in cases:
            # Names, links and special files are the indexer's business (tested below).
            if case.group in ("names", "upload-names", "special"):
                continue
            started = time.perf_counter()
            status, error, reason = "added", None, None
            try:
                fmt = format_for(case.path)
                parse = sandbox.load if fmt.sandboxed else run_loader
                load_file(case.path, settings, doc_id="probe", parse=parse)
            except IngestError as exc:
                status, error, reason = "failed", type(exc).__name__, str(exc)
                reasons[error] += 1
            elapsed = time.perf_counter() - started
            seconds[case.path.name] = elapsed
            limit = TIMEOUT_S + 5 if format_for(case.path).sandboxed else GRACE_S
            if elapsed > limit:
                problems.append(f"{case.path.name}: {elapsed:.1f} s > {limit:.0f} s")
            problem = _check_outcome(case, status, error, reason, case.expect)
            if problem:
                problems.append(problem)
    slowest = sorted(seconds.items(), key=lambda kv: -kv[1])[:8]
    merge_results(
        RESULTS,
        "loaders",
        {
            "files": len(seconds),
            "rejected_by_error": dict(sorted(reasons.items())),
            "max_file_s": round(slowest[0][1], 2),
            "slowest": {k: round(v, 2) for k, v in slowest},
            "problems": problems,
        },
        timeout_s=TIMEOUT_S,
    )
    assert not problems, "\n".join(problems)


def test_chunking_time_grows_linearly_with_blocks(embedder) -> None:
    """A document of one-word paragraphs: 4x the blocks may cost about 4x the time, not 16x.

    (The chunker scanned every span for every chunk: 600 KB of "para" took eight minutes.)
    """
    from rag.chunk import Chunker
    from rag.ingest.records import record_document
    from rag.settings import ChunkSettings

    chunker = Chunker(ChunkSettings(), embedder.count_tokens)

    def seconds(n: int) -> float:
        doc = record_document(f"p{n}", "", "\n\n".join(["para"] * n))
        started = time.perf_counter()
        chunks = chunker.run(doc)
        assert all(doc.text[c.start : c.end] == c.text for c in chunks)
        return time.perf_counter() - started

    seconds(2_000)  # warm-up
    small, large = seconds(15_000), seconds(60_000)
    assert large < 8 * small + 2.0, (small, large)


# -- `rag index add` in a subprocess --------------------------------------------------------


def _rag(*args: str, timeout: float = 600) -> subprocess.CompletedProcess[str]:
    env = os.environ | {"HF_HUB_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "false"}
    return subprocess.run(
        [sys.executable, "-m", "rag.cli", *args],
        capture_output=True,
        text=True,
        errors="backslashreplace",
        timeout=timeout,
        env=env,
    )


def _listing(index: Path) -> dict[str, dict[str, Any]]:
    listed = _rag("index", "list", "--index", str(index), "--json")
    assert listed.returncode == 0, listed.stderr
    return {d["doc_id"]: d for d in json.loads(listed.stdout)}


def _consistent(index: Path) -> None:
    checked = _rag("index", "check", "--index", str(index))
    assert checked.returncode == 0, checked.stdout + checked.stderr
    assert "index is consistent" in checked.stdout


def _chunk_texts(index: Path) -> list[str]:
    with sqlite3.connect(f"file:{index / 'chunks.sqlite3'}?mode=ro", uri=True) as conn:
        return [row[0] for row in conn.execute("SELECT text FROM chunks")]


def _tracebacks(text: str) -> int:
    return text.count("Traceback (most recent call last)")


def _base_docs(folder: Path) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "base_one.txt").write_text(
        "Base study one\n\nOsimertinib improved progression-free survival to 18.9 months.\n"
    )
    (folder / "base_two.md").write_text("# Base two\n\nNivolumab showed an ORR of 20%.\n")
    return folder


@pytest.mark.slow
def test_cli_index_add_survives_hostile_files(
    corpus: tuple[Path, list[Case]], big: tuple[Path, list[Case]], tmp_path: Path
) -> None:
    root, cases = corpus
    big_root, big_cases = big
    everything = cases + big_cases
    index = tmp_path / "index"
    base = _rag("index", "add", str(_base_docs(tmp_path / "base")), "--index", str(index))
    assert base.returncode == 0, base.stderr
    before = _listing(index)
    _consistent(index)
    chunks_before = len(_chunk_texts(index))

    missing = tmp_path / "does-not-exist.pdf"
    script = tmp_path / "timed_cli.py"
    script.write_text(TIMED_CLI)
    env = os.environ | {"HF_HUB_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "false"}
    started = time.monotonic()
    proc = subprocess.run(
        [
            sys.executable, str(script), "index", "add", str(root), str(big_root), str(missing),
            "--index", str(index), "--json",
            "--set", f"ingest.timeout_s={TIMEOUT_S}",
            "--set", "ingest.commit_every=1",  # each file's time includes its own commit
        ],
        capture_output=True, text=True, errors="backslashreplace", env=env, timeout=3000,
    )  # fmt: skip
    wall = time.monotonic() - started
    stderr = "\n".join(x for x in proc.stderr.splitlines() if not x.startswith("PROGRESS "))
    assert proc.returncode in (0, 1), proc.stderr[-3000:]
    assert _tracebacks(proc.stderr) == 0, stderr[-3000:]
    report = json.loads(proc.stdout)

    # Seconds per file: from one progress call to the next.
    stamps = [json.loads(x[9:]) for x in proc.stderr.splitlines() if x.startswith("PROGRESS ")]
    seconds = {a["item"]: b["t"] - a["t"] for a, b in itertools.pairwise(stamps)}
    by_path = {r["path"]: r for r in report["results"]}
    assert by_path[str(missing)]["status"] == "failed"
    assert by_path[str(missing)]["reason"] == "no such file"

    problems: list[str] = []
    for case in everything:
        result = by_path.get(shown_path(case.path))
        status = result["status"] if result else None
        error = result.get("error") if result else None
        reason = result.get("reason") if result else None
        problem = _check_outcome(case, status, error, reason, case.expect)
        if problem:
            problems.append(problem)
    for item, spent in seconds.items():
        sandboxed = Path(item).suffix.lower() in SUFFIXES and format_for(Path(item)).sandboxed
        limit = TIMEOUT_S + GRACE_S if sandboxed else GRACE_S
        if spent > limit:
            problems.append(f"{item}: {spent:.1f} s > {limit:.0f} s")

    # The index: exactly the documents before plus those reported added, all consistent.
    after = _listing(index)
    _consistent(index)
    added = {r["doc_id"]: r for r in report["results"] if r["status"] == "added"}
    assert set(after) == set(before) | set(added)
    assert all(after[d]["chunks"] == r["chunks"] for d, r in added.items())
    texts = _chunk_texts(index)
    assert len(texts) == chunks_before + sum(r["chunks"] for r in added.values())
    assert not any(secret_leaked(t) for t in texts), "/etc/passwd or /etc/shadow got indexed"
    rejected_paths = {r["path"] for r in report["results"] if r["status"] in REJECTED}
    assert not {d["source"] for d in after.values()} & rejected_paths

    statuses = Counter(r["status"] for r in report["results"])
    errors = Counter(r["error"] for r in report["results"] if r["status"] in REJECTED)
    slowest = sorted(seconds.items(), key=lambda kv: -kv[1])[:10]
    merge_results(
        RESULTS,
        "cli",
        {
            "files": len(report["results"]),
            "hostile_cases": len(everything),
            "exit_code": proc.returncode,
            "tracebacks": _tracebacks(proc.stderr),
            "outcomes": dict(sorted(statuses.items())),
            "rejected_by_error": dict(sorted(errors.items())),
            "rejected_by_group": _by_group(everything, by_path),
            "max_file_s": round(slowest[0][1], 2) if slowest else None,
            "slowest_files": {Path(k).name: round(v, 2) for k, v in slowest},
            "wall_s": round(wall, 1),
            "documents_before": len(before),
            "documents_after": len(after),
            "index_consistent_after": True,
            "problems": problems,
        },
        timeout_s=TIMEOUT_S,
    )
    assert not problems, "\n".join(problems)


def _by_group(cases: list[Case], by_path: dict[str, dict[str, Any]]) -> dict[str, dict[str, int]]:
    out: dict[str, Counter[str]] = {}
    for case in cases:
        result = by_path.get(shown_path(case.path))
        status = result["status"] if result else "not listed"
        key = f"{status}:{result['error']}" if result and result.get("error") else status
        out.setdefault(case.group, Counter())[key] += 1
    return {g: dict(sorted(c.items())) for g, c in sorted(out.items())}


# -- the upload endpoint of a real server ---------------------------------------------------


def _multipart(files: list[tuple[bytes, bytes]], boundary: bytes = b"hostileBoundary7f") -> bytes:
    """A multipart body built by hand: file names go out as raw bytes, as a hostile client's do."""
    body = bytearray()
    for name, data in files:
        body += b"--" + boundary + b"\r\n"
        body += b'Content-Disposition: form-data; name="files"; filename="' + name + b'"\r\n'
        body += b"Content-Type: application/octet-stream\r\n\r\n" + data + b"\r\n"
    body += b"--" + boundary + b"--\r\n"
    return bytes(body)


def _upload_batches(cases: list[Case]) -> list[list[Case]]:
    """Files by group, at most 10 a request; a file the whole request fails for goes alone."""
    batches: list[list[Case]] = []
    current: list[Case] = []
    for case in cases:
        alone = case.big or case.upload_expect in ("reject", "either")
        if alone:
            batches.append([case])
            continue
        if current and (len(current) >= 10 or current[-1].group != case.group):
            batches.append(current)
            current = []
        current.append(case)
    if current:
        batches.append(current)
    return batches


@pytest.mark.slow
def test_upload_endpoint_survives_hostile_files(
    corpus: tuple[Path, list[Case]], big: tuple[Path, list[Case]], tmp_path: Path
) -> None:
    from rag.api.launch import ServerProcess

    _, cases = corpus
    _, big_cases = big
    uploadable = [
        c
        for c in cases + big_cases
        if c.uploadable and c.path.is_file() and not c.path.is_symlink()
    ]
    index = tmp_path / "index"
    _rag("index", "add", str(_base_docs(tmp_path / "base")), "--index", str(index))
    server = ServerProcess(
        index,
        workdir=tmp_path,
        overrides=[
            f"ingest.timeout_s={TIMEOUT_S}",
            f"server.api_key={ADMIN_KEY}",
            "server.max_upload_mb=25",
        ],
        extra_args=["--no-ui"],
    )
    data_dir = (index / "data").resolve()
    problems: list[str] = []
    request_seconds: list[float] = []
    statuses: Counter[str] = Counter()
    errors: Counter[str] = Counter()
    with (
        server,
        httpx.Client(
            base_url=server.url, headers={"Authorization": f"Bearer {ADMIN_KEY}"}, timeout=900
        ) as client,
    ):
        before = {d["doc_id"] for d in client.get("/api/documents").json()}
        chunks_before = client.get("/healthz").json()["chunks"]
        added_chunks = 0
        added_ids: set[str] = set()
        for batch in _upload_batches(uploadable):
            files = [(os.fsencode(c.name), c.path.read_bytes()) for c in batch]
            started = time.monotonic()
            try:
                response = client.post(
                    "/api/documents",
                    content=_multipart(files),
                    headers={"Content-Type": "multipart/form-data; boundary=hostileBoundary7f"},
                )
            except httpx.HTTPError as exc:  # the server may stop reading an oversized body
                response = None
                if not all(c.big for c in batch):
                    problems.append(f"{batch[0].path.name}: {type(exc).__name__}: {exc}")
            spent = time.monotonic() - started
            request_seconds.append(spent)
            limit = 30 + len(batch) * (TIMEOUT_S + GRACE_S)
            if spent > limit:
                problems.append(f"request of {len(batch)} ({batch[0].group}) took {spent:.0f} s")
            if response is None:
                statuses["connection closed (oversized)"] += len(batch)
                continue
            if response.status_code != 200:
                body = response.json()
                statuses[f"http {response.status_code}"] += len(batch)
                errors[body["error"]["type"]] += len(batch)
                if response.status_code >= 500 or not _one_line(body["error"]["message"]):
                    problems.append(f"{batch[0].path.name}: {response.status_code} {body}")
                for case in batch:
                    want = case.upload_expect or case.expect
                    if want == "accept":
                        problems.append(f"{case.name!r}: refused with {response.status_code}")
                continue
            results = response.json()["results"]
            if len(results) != len(batch):
                problems.append(f"{batch[0].group}: {len(results)} results for {len(batch)}")
                continue
            for case, result in zip(batch, results, strict=True):
                statuses[result["status"]] += 1
                if result["status"] in REJECTED:
                    errors[result["error"]] += 1
                want = case.upload_expect or case.expect
                want = "either" if want == "skip" else want
                problem = _check_outcome(
                    case, result["status"], result.get("error"), result.get("reason"), want
                )
                if problem:
                    problems.append("upload " + problem)
                if result["status"] == "added":
                    added_ids.add(result["doc_id"])
                    added_chunks += result["chunks"]
                # Reported paths are relative to the data dir and stay inside it.
                stored = (data_dir / result["path"]).resolve()
                if not stored.is_relative_to(data_dir / "uploads"):
                    problems.append(f"{case.name!r} stored outside the uploads dir: {stored}")
        after = {d["doc_id"]: d for d in client.get("/api/documents").json()}
        health = client.get("/healthz").json()
        assert health["status"] == "ok"
        if set(after) != before | added_ids:
            problems.append(f"documents changed beyond those added: {set(after) ^ before}")
        if health["chunks"] != chunks_before + added_chunks:
            problems.append(f"chunks {health['chunks']} != {chunks_before} + {added_chunks}")
        for doc in after.values():
            if doc["doc_id"] in added_ids and not Path(doc["source"]).resolve().is_relative_to(
                data_dir
            ):
                problems.append(f"{doc['doc_id']} stored at {doc['source']}")
    log = server.log_path.read_text("utf-8", "replace")
    tracebacks = _tracebacks(log)
    if tracebacks:
        problems.append(f"server log has {tracebacks} traceback(s):\n{log[-3000:]}")
    for stored in (data_dir / "uploads").rglob("*"):
        if not stored.resolve().is_relative_to(data_dir):
            problems.append(f"{stored} resolves outside the data dir")
    assert not Path("/tmp/hostile_escape.txt").exists()
    assert not Path("/etc/cron.d/hostile_abs.md").exists()
    _consistent(index)
    assert not any(secret_leaked(t) for t in _chunk_texts(index))
    merge_results(
        RESULTS,
        "upload",
        {
            "files": len(uploadable),
            "requests": len(request_seconds),
            "outcomes": dict(sorted(statuses.items())),
            "rejected_by_error": dict(sorted(errors.items())),
            "max_request_s": round(max(request_seconds), 2),
            "server_tracebacks": tracebacks,
            "http_5xx": sum(v for k, v in statuses.items() if k.startswith("http 5")),
            "problems": problems,
        },
        timeout_s=TIMEOUT_S,
    )
    assert not problems, "\n".join(problems)

"""A short run of eval/bench_load.py: 32 clients against a real server, no errors, flat memory.

The full benchmark (``python -m rag.eval.bench_load --duration 90``) writes the figures quoted
in eval/results/load.json; this test runs a shorter mixed phase and records its own figures in
the same file under ``test_short``.
"""

from __future__ import annotations

import pytest
from rag.eval.bench_load import run_benchmark, table

from .hostile import merge_results

pytestmark = [pytest.mark.slow, pytest.mark.integration]


def test_32_clients_get_answers_or_clean_busy_replies(tmp_path, capsys) -> None:
    result = run_benchmark(
        duration_s=40.0, clients=32, idle_s=8.0, long_tokens=96, workdir=tmp_path, seed=1
    )
    result["rss"].pop("series_mb", None)
    merge_results("load.json", "test_short", result)
    with capsys.disabled():
        print("\n" + table(result))

    mixed = result["mixed"]
    assert result["errors"] == 0, result["error_samples"]
    assert result["server_log_tracebacks"] == 0
    # Every kind of request got through at least once; generations queue for their one slot
    # and the rest are refused cleanly (503 + Retry-After), never left hanging.
    for kind in ("search", "healthz", "upload", "delete"):
        assert mixed[kind]["ok"] > 0, kind
    assert mixed["ask"]["ok"] + mixed["ask_stream"]["ok"] > 0
    assert mixed["search"]["requests"] > 100
    # Uploads were each deleted again: the index is back to the seed corpus.
    assert result["documents_after"] == 2
    # Search stays usable while the model generates (two cores shared with the generator).
    idle_p95 = result["search_idle"]["p95_ms"]
    during_p95 = result["search_during_generation"]["p95_ms"]
    assert result["long_generation"]["status"] == 200
    assert during_p95 is not None and during_p95 < 5000, (idle_p95, during_p95)
    # Memory: no growth beyond 25% across a short run (the 90 s benchmark checks 10%).
    rss = result["rss"]
    assert rss["flat"] is not None and abs(rss["change"]) < 0.25, rss

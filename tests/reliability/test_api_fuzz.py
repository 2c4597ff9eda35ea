"""Every endpoint under generated hostile requests: a bounded Schemathesis run in CI.

The nightly-sized run is ``python -m rag.eval.fuzz_api --examples 1000 --out
eval/results/api_fuzz.json``; this one draws a few cases per operation and key role against a
real `rag serve` on loopback and fails on any 5xx but the documented 503, any response the
schema does not describe, any error body not shaped ``{"error": {"type", "message"}}``, any
key reaching past what the README says, and an index left inconsistent.
"""

from __future__ import annotations

import pytest
from rag.eval.fuzz_api import classify, run_against_server

pytestmark = pytest.mark.integration


def test_the_failure_kinds_are_what_a_client_relies_on() -> None:
    """The classifier itself: each kind fires on its case and not on the documented ones."""
    error = {"error": {"type": "ValidationError", "message": "question: too long"}}
    assert classify("/api/ask", "admin", 503, {"retry-after": "2"}, error) == []
    assert classify("/api/ask", "admin", 503, {}, error) == ["server_error"]
    assert classify("/api/ask", "admin", 500, {}, {"detail": "boom"}) == [
        "server_error",
        "error_shape",
    ]
    assert classify("/api/ask", "admin", 422, {}, {"detail": []}) == ["error_shape"]
    assert classify("/api/documents", "chat", 200, {}, []) == ["key_scope"]
    assert classify("/api/documents", "chat", 403, {}, error) == []
    assert classify("/api/search", "chat", 200, {}, {}) == []
    assert classify("/api/search", "none", 200, {}, {}) == ["key_scope"]
    assert classify("/healthz", "none", 200, {}, {}) == []


def test_generated_requests_to_every_operation_break_nothing() -> None:
    report = run_against_server(max_examples=8, seed=20261207)
    assert len(report["operations"]) >= 14  # every operation the schema lists
    assert report["cases"] >= 14 * 3 * 4  # under three key roles
    failing = {
        f"{name} [{role}]": run["examples"]
        for name, roles in report["operations"].items()
        for role, run in roles.items()
        if run["failures"]
    }
    assert not failing, failing
    assert report["index_consistent"], report["index_check"]

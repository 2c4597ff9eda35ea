"""Every HTTP endpoint under generated hostile requests (Schemathesis), with and without keys.

Schemathesis reads the live server's OpenAPI schema on loopback and generates requests for
every operation: valid ones, and (``negative`` mode) ones that break the schema on purpose.
Each response is checked for what a client may rely on:

- ``server_error``: no 5xx, except the documented 503 with a ``Retry-After`` header;
- ``schema``: status code, content type and body as the schema documents them
  (Schemathesis's own conformance checks);
- ``error_shape``: every 4xx/5xx body is ``{"error": {"type": str, "message": str}}``;
- ``key_scope``: without a key a write or read endpoint answers 401; the chat key reaches
  only the chat endpoints and ``/healthz`` (anything else 403), as the README says.

A schema-valid request refused by a rule the schema cannot state (a span whose end is before
its start, a file type the server does not read, a document id that does not exist) is
counted as ``rejected_by_rule``, not as a failure, when it is refused with a specific error
type and message; refused as a bare ``ValidationError`` it means the schema promised more
than the server accepts, and counts under ``schema``.

Afterwards ``rag index check`` must find the index consistent. Failures are counted by kind
and the first few of each kind are kept with the request that caused them.

    python -m rag.eval.fuzz_api --examples 1000 --out eval/results/api_fuzz.json  # nightly
    rag eval bench fuzz-api -- --examples 25                                       # bounded
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from rag.paths import write_json_atomic

# What the chat key reaches (README "Keys"): ask, stream, chat completions, search, citation
# export (and the quote view it links), the trials table, feedback, the model list, health.
CHAT_PATHS = (
    "/api/ask",
    "/api/ask/stream",
    "/api/search",
    "/api/feedback",
    "/api/documents/cite",
    "/api/documents/{doc_id}/cite",
    "/api/documents/{doc_id}/view",
    "/api/trials",
    "/v1/chat/completions",
    "/v1/models",
    "/healthz",
)
OPEN_PATHS = ("/healthz",)
KEPT_EXAMPLES = 3  # failing requests kept per kind, per operation and key


def _error_shape(body: Any) -> bool:
    error = body.get("error") if isinstance(body, dict) else None
    return (
        isinstance(error, dict)
        and isinstance(error.get("type"), str)
        and isinstance(error.get("message"), str)
    )


def _error_type(body: Any) -> str | None:
    return body["error"]["type"] if _error_shape(body) else None


def classify(
    path: str, key_role: str, status: int, headers: dict[str, str], body: Any
) -> list[str]:
    """The kinds of failure one response shows (schema conformance is checked apart)."""
    kinds = []
    if status >= 500 and not (status == 503 and "retry-after" in headers):
        kinds.append("server_error")
    if status >= 400 and not _error_shape(body):
        kinds.append("error_shape")
    if key_role == "none" and path not in OPEN_PATHS and status < 400:
        kinds.append("key_scope")
    if key_role == "chat" and path not in CHAT_PATHS and status < 400:
        kinds.append("key_scope")
    return kinds


@dataclass
class _Tally:
    """One operation under one key role."""

    cases: int = 0
    statuses: Counter[str] = field(default_factory=Counter)
    failures: Counter[str] = field(default_factory=Counter)
    rejected_by_rule: Counter[str] = field(default_factory=Counter)
    examples: dict[str, list[dict[str, Any]]] = field(default_factory=dict)

    def keep(self, kind: str, case: Any, status: int, detail: str) -> None:
        self.failures[kind] += 1
        kept = self.examples.setdefault(kind, [])
        if len(kept) < KEPT_EXAMPLES:
            request = {"path": case.path_parameters, "query": case.query}
            kept.append(
                {
                    "status": status,
                    "detail": detail[:400],
                    "request": request | {"body": repr(case.body)[:300]},
                }
            )

    def record(self, case: Any, response: Any, path: str, role: str) -> None:
        """Classify one response and run the schema's own checks on it."""
        from schemathesis.checks import not_a_server_error
        from schemathesis.core.failures import FailureGroup

        self.cases += 1
        self.statuses[str(response.status_code)] += 1
        try:
            body = response.json()
        except ValueError:
            body = None
        lowered = {k.lower(): v for k, v in response.headers.items()}
        for kind in classify(path, role, response.status_code, lowered, body):
            self.keep(kind, case, response.status_code, response.text)
        try:  # the schema's own checks; 5xx is judged above (503 is documented)
            case.validate_response(response, excluded_checks=[not_a_server_error])
        except FailureGroup as group:
            for failure in group.exceptions:
                kind = _error_type(body)
                rule = kind not in (None, "ValidationError")
                if type(failure).__name__ == "RejectedPositiveData" and rule:
                    self.rejected_by_rule[str(kind)] += 1
                    continue
                self.keep("schema", case, response.status_code, str(failure.title))
        except AssertionError as exc:
            self.keep("schema", case, response.status_code, str(exc))

    def as_dict(self) -> dict[str, Any]:
        return {
            "cases": self.cases,
            "statuses": dict(self.statuses),
            "failures": dict(self.failures),
            "rejected_by_rule": dict(self.rejected_by_rule),
            "examples": self.examples,
        }


def _run_operation(
    operation: Any, url: str, role: str, key: str | None, session: Any, max_examples: int, seed: int
) -> _Tally:
    import hypothesis
    from hypothesis import HealthCheck, Phase, given

    headers = {"Authorization": f"Bearer {key}"} if key else {}
    tally = _Tally()

    @hypothesis.settings(
        max_examples=max_examples,
        deadline=None,
        database=None,
        phases=[Phase.explicit, Phase.generate],
        suppress_health_check=list(HealthCheck),
        print_blob=False,
    )
    @hypothesis.seed(seed)
    @given(case=operation.as_strategy())
    def run(case: Any) -> None:
        response = case.call(base_url=url, session=session, headers=headers, timeout=120)
        tally.record(case, response, operation.path, role)

    run()
    return tally


def fuzz(
    url: str,
    keys: dict[str, str | None],
    *,
    max_examples: int,
    seed: int = 0,
    operations: Iterable[str] | None = None,
) -> dict[str, Any]:
    """Run every operation of ``url``'s schema ``max_examples`` times under each key role."""
    import requests
    import schemathesis
    from schemathesis.generation import GenerationMode

    schema = schemathesis.openapi.from_url(f"{url}/openapi.json")
    schema.config.generation.update(modes=[GenerationMode.POSITIVE, GenerationMode.NEGATIVE])
    wanted = set(operations or ())
    report: dict[str, Any] = {"operations": {}, "cases": 0, "failures": Counter()}
    session = requests.Session()
    for result in schema.get_all_operations():
        operation = result.ok()
        name = f"{operation.method.upper()} {operation.path}"
        if wanted and name not in wanted:
            continue
        for role, key in keys.items():
            tally = _run_operation(operation, url, role, key, session, max_examples, seed)
            report["failures"].update(tally.failures)
            report["cases"] += tally.cases
            report["operations"].setdefault(name, {})[role] = tally.as_dict()
    report["failures"] = dict(report["failures"])
    return report


def index_check(index: Path) -> tuple[bool, str]:
    checked = subprocess.run(
        [sys.executable, "-m", "rag.cli", "index", "check", "--index", str(index)],
        capture_output=True,
        text=True,
        timeout=600,
    )
    return checked.returncode == 0 and "index is consistent" in checked.stdout, checked.stdout


def run_against_server(
    max_examples: int, seed: int = 0, operations: Iterable[str] | None = None
) -> dict[str, Any]:
    """Start `rag serve` on loopback with both keys, fuzz it under each key role, check it."""
    from rag.api.launch import ServerProcess

    admin, chat = "fuzz-admin-5c1e9a7d3b", "fuzz-chat-8f2a6c4e0d"
    with tempfile.TemporaryDirectory(prefix="onco-rag-fuzz-") as tmp:
        root = Path(tmp)
        server = ServerProcess(
            root / "index",
            workdir=root,
            overrides=[
                "generate.max_new_tokens=16",
                f"server.api_key={admin}",
                f"server.chat_key={chat}",
                "server.max_upload_mb=0.25",
                "server.queue_timeout_s=2",
            ],
        )
        started = time.perf_counter()
        server.start()
        try:
            report = fuzz(
                server.url,
                {"admin": admin, "chat": chat, "none": None},
                max_examples=max_examples,
                seed=seed,
                operations=operations,
            )
        finally:
            server.stop()
        consistent, detail = index_check(root / "index")
    report.update(
        max_examples=max_examples,
        seed=seed,
        seconds=round(time.perf_counter() - started, 1),
        index_consistent=consistent,
        index_check=detail.strip()[-400:],
    )
    return report


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--examples", type=int, default=25, help="cases per operation and key")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--operation", action="append", help="only this one, e.g. 'GET /api/search'"
    )
    parser.add_argument("--out", type=Path)
    args = parser.parse_args(argv)
    report = run_against_server(args.examples, args.seed, args.operation)
    summary = {k: report[k] for k in ("cases", "failures", "index_consistent", "seconds")}
    print(json.dumps(summary, indent=1))
    if args.out:
        write_json_atomic(args.out, report)
    return 0 if not report["failures"] and report["index_consistent"] else 1


if __name__ == "__main__":
    sys.exit(main())

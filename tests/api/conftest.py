"""One real `rag serve` on loopback for the API tests (fast preset, keys, CORS, small limits)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

ADMIN_KEY = "admin-7f3c9a1e5b2d4680"
CHAT_KEY = "chat-4b8e2d6a0c1f3957"
ALLOWED_ORIGIN = "http://journal.example"
QUESTION = "What was the median PFS with ivonescimab in HARMONi-A?"
MAX_UPLOAD_MB = 0.05  # 51 KB: big enough for the fixtures, small enough to exceed cheaply
MAX_REQUEST_KB = 16


@dataclass
class Live:
    url: str
    data_dir: Path
    server: Any
    admin_key: str = ADMIN_KEY
    chat_key: str = CHAT_KEY
    origin: str = ALLOWED_ORIGIN
    question: str = QUESTION
    max_upload_mb: float = MAX_UPLOAD_MB
    max_request_kb: int = MAX_REQUEST_KB

    def client(self, key: str | None = None, **kwargs: Any) -> httpx.Client:
        headers = {"Authorization": f"Bearer {key}".encode()} if key else {}
        return httpx.Client(base_url=self.url, headers=headers, timeout=600, **kwargs)


@pytest.fixture(scope="session")
def live(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Live]:
    """The server every API test talks to; generation slots = 1 so queueing is testable."""
    from rag.api.launch import ServerProcess

    root = tmp_path_factory.mktemp("api-server")
    server = ServerProcess(
        root / "index",
        workdir=root,
        overrides=[
            "generate.max_new_tokens=32",
            # MiniLM scores the abbreviated seed question 0.24 against its passage; the default
            # gate (0.30) would abstain before generating, which other tests cover.
            f"server.api_key={ADMIN_KEY}",
            f"server.chat_key={CHAT_KEY}",
            f"server.cors_origins=[{ALLOWED_ORIGIN}]",
            f"server.max_upload_mb={MAX_UPLOAD_MB}",
            f"server.max_request_kb={MAX_REQUEST_KB}",
            "server.max_concurrent_generations=1",
            "server.queue_timeout_s=1.5",
        ],
    )
    server.start()
    try:
        yield Live(url=server.url, data_dir=root / "index" / "data", server=server)
    finally:
        server.stop()


@pytest.fixture(scope="session")
def admin(live: Live) -> Iterator[httpx.Client]:
    with live.client(ADMIN_KEY) as client:
        yield client


@pytest.fixture(scope="session")
def chat(live: Live) -> Iterator[httpx.Client]:
    with live.client(CHAT_KEY) as client:
        yield client


@pytest.fixture(scope="session")
def anonymous(live: Live) -> Iterator[httpx.Client]:
    with live.client() as client:
        yield client


@pytest.fixture(scope="session")
def sse():
    """The SSE parser, as a fixture (test modules cannot import conftest under importlib)."""
    return sse_events


def sse_events(lines: Iterator[str]) -> Iterator[tuple[str, Any]]:
    """(event, parsed JSON data) for each Server-Sent Event; comments are skipped."""
    event, data = "message", []
    for line in lines:
        if not line:
            if data:
                yield event, json.loads("\n".join(data))
            event, data = "message", []
        elif line.startswith(":"):
            continue
        elif line.startswith("event:"):
            event = line[6:].strip()
        elif line.startswith("data:"):
            data.append(line[5:].lstrip())
    if data:
        yield event, json.loads("\n".join(data))

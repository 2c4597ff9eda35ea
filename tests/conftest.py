"""Shared fixtures: real models, real indexes in temporary directories."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

from rag.paths import seeds_dir
from rag.settings import Settings, load_settings

FIXTURES = Path(__file__).parent / "fixtures"
SHARED = Path(__file__).resolve().parents[2] / "shared"


def make_settings(index_dir: Path, *overrides: str) -> Settings:
    return load_settings(index_dir=index_dir, overrides=list(overrides))


@pytest.fixture(scope="session")
def embedder():
    """The packaged all-MiniLM-L6-v2, loaded once per test session."""
    from rag.embed import load_embedder

    return load_embedder(Settings().embed)


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return make_settings(tmp_path / "index")


@pytest.fixture
def assistant(settings: Settings, embedder):
    from rag.assistant import Assistant

    a = Assistant(settings, embedder=embedder)  # share the session's model instead of reloading it
    yield a
    if "index" in a.__dict__:
        a.index.close()


@pytest.fixture(scope="session")
def seeds() -> Path:
    return seeds_dir()


@pytest.fixture(scope="session")
def seed_index(tmp_path_factory: pytest.TempPathFactory, embedder):
    """A real index of the seed corpus shared by read-only tests."""
    from rag.assistant import Assistant

    directory = tmp_path_factory.mktemp("seed-index") / "index"
    a = Assistant(make_settings(directory), embedder=embedder)
    a.ensure_index()
    return a


def writer_child(*overrides: str) -> str:
    """A `python -c` script that ingests argv[2] into the index argv[1], printing READY, one
    COMMITTED line per committed document and DONE, for the kill-the-writer tests."""
    return f"""
import sys
from rag.assistant import Assistant
from rag.settings import load_settings
s = load_settings(index_dir=sys.argv[1], overrides={list(overrides)!r})
a = Assistant(s)
def committed(results):
    for r in results:
        print("COMMITTED", r.doc_id, flush=True)
a.indexer.on_commit = committed
print("READY", flush=True)
a.add([sys.argv[2]])
print("DONE", flush=True)
"""

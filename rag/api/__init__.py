"""HTTP shell: FastAPI app over one Assistant (JSON, SSE, OpenAI-compatible), UI mounted at /."""

from __future__ import annotations

from typing import Any


def create_app(assistant: Any, settings: Any = None, *, ui: bool = True) -> Any:
    """Build the app (imported lazily: the CLI and library never pay for FastAPI/Gradio)."""
    from rag.api.app import create_app as build

    return build(assistant, settings, ui=ui)


__all__ = ["create_app"]

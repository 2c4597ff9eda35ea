"""HTTP shell: FastAPI app over one Assistant (JSON, SSE, OpenAI-compatible).

``rag.web`` serves it together with the Gradio UI on one port.
"""

from __future__ import annotations

from typing import Any


def create_app(assistant: Any, settings: Any = None) -> Any:
    """Build the API app (imported lazily: the CLI and library never pay for FastAPI)."""
    from rag.api.app import create_app as build

    return build(assistant, settings)


__all__ = ["create_app"]

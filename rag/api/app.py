"""HTTP API: JSON and Server-Sent Events over one Assistant, plus an OpenAI-compatible endpoint.

A thin shell: every route validates input, checks the key, takes a generation slot when it
generates, and calls the Assistant. Generations run on worker threads so the event loop keeps
serving search, health and other clients while a model writes an answer. Routes live in
``answers``, ``documents`` and ``openai``; errors in ``errors``; limits and mounts in
``middleware``.
"""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI
from starlette.middleware.cors import CORSMiddleware

from rag.api.answers import router as answers_router
from rag.api.documents import router as documents_router
from rag.api.errors import install_error_handlers
from rag.api.middleware import BodyLimit, PagePolicy, mount_offline_docs, static_files
from rag.api.openai import router as openai_router
from rag.api.trials import router as trials_router
from rag.errors import ConfigError
from rag.server import ServerState
from rag.settings import Settings


def create_app(
    assistant: Any, settings: Settings | None = None, *, state: ServerState | None = None
) -> FastAPI:
    """The FastAPI app: /api, /v1, /healthz, /static (``rag.web`` mounts the UI at /).

    ``state``: the server state to share with another shell (the UI); default a new one.
    """
    settings = settings or assistant.settings
    state = state or ServerState(assistant, settings)
    server = settings.server
    app = FastAPI(
        title="onco-rag",
        version="0.1.0",
        description=(
            "Cited, verified answers from an oncology literature index. Keys: "
            "`server.api_key` reaches everything; `server.chat_key` only ask, stream, chat "
            "completions, search and feedback."
        ),
        docs_url=None,  # served below from local assets: FastAPI's default loads a CDN
        redoc_url=None,
    )
    app.state.rag = state
    mount_offline_docs(app)

    install_error_handlers(app)
    for router in (answers_router, documents_router, trials_router, openai_router):
        app.include_router(router)

    app.mount("/static", static_files(), name="static")

    app.add_middleware(BodyLimit, limit_bytes=server.max_request_kb * 1024)
    app.add_middleware(PagePolicy)
    app.add_middleware(
        CORSMiddleware,
        allow_origins=list(server.cors_origins),
        allow_methods=["GET", "POST", "DELETE", "OPTIONS"],
        allow_headers=["Authorization", "Content-Type"],
        expose_headers=["Retry-After"],
        max_age=600,
    )
    if server.chat_key and not server.api_key:
        raise ConfigError(
            "server.chat_key is set but server.api_key is empty: a chat key is meant for public "
            "pages, so set server.api_key too, or uploads and deletions would be open to anyone"
        )

    return app

"""Middleware and mounts: the JSON body limit, /static for the widget, offline /docs."""

from __future__ import annotations

import logging
from typing import Any

from fastapi import FastAPI
from starlette.staticfiles import StaticFiles
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from rag.api.common import UPLOAD_PATH, error_json
from rag.paths import static_dir

log = logging.getLogger(__name__)


class BodyLimit:
    """413 for JSON bodies over server.max_request_kb, checked before any route reads them.

    Bodies are small by design, so the middleware buffers up to the limit and replays it;
    uploads are exempt here and limited while they stream (see ``upload_documents``).
    """

    def __init__(self, app: ASGIApp, limit_bytes: int) -> None:
        self.app = app
        self.limit = limit_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        path = scope.get("path", "")
        if (
            scope["type"] != "http"
            or scope["method"] in ("GET", "HEAD", "OPTIONS", "DELETE")
            or not (path.startswith("/api/") or path.startswith("/v1/"))
            or (path == UPLOAD_PATH and scope["method"] == "POST")
        ):
            await self.app(scope, receive, send)
            return
        too_large = error_json(
            413,
            "RequestTooLarge",
            f"request body exceeds server.max_request_kb ({self.limit // 1024} KB)",
        )
        headers = {k.lower(): v for k, v in scope.get("headers", [])}
        length = headers.get(b"content-length")
        if length is not None and length.isdigit() and int(length) > self.limit:
            await too_large(scope, receive, send)
            return
        body = bytearray()
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                return
            body += message.get("body", b"")
            if len(body) > self.limit:
                await too_large(scope, receive, send)
                return
            if not message.get("more_body", False):
                break
        replayed = False

        async def replay() -> Message:
            nonlocal replayed
            if not replayed:
                replayed = True
                return {"type": "http.request", "body": bytes(body), "more_body": False}
            return await receive()

        await self.app(scope, replay, send)


class PublicStatic(StaticFiles):
    """/static: the widget and its example page (any origin may load them), then Gradio's own
    bundled files, which the UI mounted at / expects under the same prefix."""

    async def get_response(self, path: str, scope: Scope) -> Any:
        response = await super().get_response(path, scope)
        response.headers["Access-Control-Allow-Origin"] = "*"
        response.headers.setdefault("Cache-Control", "no-cache")
        return response


def static_files() -> StaticFiles:
    packages: list[str | tuple[str, str]] = []
    try:
        import gradio  # noqa: F401  (only to know whether its static folder exists)

        packages.append(("gradio", "templates/frontend/static"))
    except ImportError:
        pass
    return PublicStatic(directory=static_dir(), packages=packages or None, check_dir=False)


def mount_offline_docs(app: FastAPI) -> None:
    """Swagger UI at /docs from the swagger-ui-bundle package (no CDN: works air-gapped)."""
    from fastapi.openapi.docs import get_swagger_ui_html
    from fastapi.staticfiles import StaticFiles
    from swagger_ui_bundle import swagger_ui_path

    app.mount("/docs-assets", StaticFiles(directory=swagger_ui_path), name="docs-assets")

    @app.get("/docs", include_in_schema=False)
    async def docs() -> Any:
        return get_swagger_ui_html(
            openapi_url="/openapi.json",
            title="onco-rag API",
            swagger_js_url="/docs-assets/swagger-ui-bundle.js",
            swagger_css_url="/docs-assets/swagger-ui.css",
            swagger_favicon_url="/docs-assets/favicon-32x32.png",
        )

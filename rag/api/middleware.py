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


# The pages the server serves load everything from this server and send data nowhere else:
# text from an uploaded document that slipped past escaping could neither fetch from nor
# report to another host. No plugins, no <base>, no framing by other sites.
_COMMON = (
    "default-src 'self'; img-src 'self' data: blob:; font-src 'self' data:; "
    "media-src 'self' blob:; connect-src 'self'; object-src 'none'; base-uri 'self'; "
    "form-action 'self'; frame-ancestors 'self'"
)
# The Gradio UI bootstraps with inline script and styles, and its HTML component evaluates
# its templates with `new Function` (blocked, the source cards do not render), so it needs
# 'unsafe-inline' and 'unsafe-eval'; the other directives still hold.
UI_POLICY = (
    f"{_COMMON}; script-src 'self' 'unsafe-inline' 'unsafe-eval'; "
    "style-src 'self' 'unsafe-inline'; frame-src 'self'; worker-src 'self' blob:"
)
# The widget's example page and the offline API docs under /static: script only from files
# of this server (the widget's styles live in a <style> of its shadow root).
STATIC_POLICY = f"{_COMMON}; script-src 'self'; style-src 'self' 'unsafe-inline'"


class PagePolicy:
    """A Content-Security-Policy on every HTML response that does not set its own (the
    quote view sends a stricter one: no script at all)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        path = scope.get("path", "")
        policy = (STATIC_POLICY if path.startswith("/static/") else UI_POLICY).encode()

        async def send_with_policy(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = list(message.get("headers", []))
                names = {k.lower(): v for k, v in headers}
                html = names.get(b"content-type", b"").startswith(b"text/html")
                if html and b"content-security-policy" not in names:
                    headers.append((b"content-security-policy", policy))
                    message = {**message, "headers": headers}
            await send(message)

        await self.app(scope, receive, send_with_policy)


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

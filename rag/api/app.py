"""HTTP API: JSON and Server-Sent Events over one Assistant, plus an OpenAI-compatible endpoint.

A thin shell: every route validates input, checks the key, takes a generation slot when it
generates, and calls the Assistant. Generations run on worker threads so the event loop keeps
serving search, health and other clients while a model writes an answer.
"""

from __future__ import annotations

import asyncio
import hmac
import json
import logging
import os
import re
import time
import uuid
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Annotated, Any, Literal

import anyio
from fastapi import Depends, FastAPI, Query, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, StreamingResponse
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from pydantic_core import to_jsonable_python
from python_multipart.multipart import MultipartParser, parse_options_header
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.middleware.cors import CORSMiddleware
from starlette.staticfiles import StaticFiles
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from rag.answer import StreamEvent
from rag.api.models import (
    AskRequest,
    AssistantMessage,
    ChatCompletion,
    ChatCompletionRequest,
    Choice,
    ErrorResponse,
    FeedbackRequest,
    FeedbackResponse,
    HealthResponse,
    ModelCard,
    ModelList,
    Usage,
)
from rag.api.service import Pump, ServerBusyError, ServerState
from rag.errors import ConfigError, RagError
from rag.generate import GenerationStats
from rag.ingest.registry import SUFFIXES
from rag.paths import static_dir
from rag.schemas import AnswerResponse, DocumentInfo, IngestReport, IngestResult, SearchResponse
from rag.settings import Settings
from rag.types import Filters

log = logging.getLogger(__name__)

RAG_MODEL = "onco-rag"
UPLOAD_PATH = "/api/documents"
KEEPALIVE_S = 10.0
MAX_FILES = 20
ERRORS: dict[int | str, dict[str, Any]] = {
    401: {"model": ErrorResponse, "description": "Missing or wrong bearer key"},
    403: {"model": ErrorResponse, "description": "The key does not reach this endpoint"},
    413: {"model": ErrorResponse, "description": "Request body too large"},
    422: {"model": ErrorResponse, "description": "Invalid request"},
}
BUSY: dict[int | str, dict[str, Any]] = {
    503: {"model": ErrorResponse, "description": "All generation slots busy (see Retry-After)"}
}


class ApiError(Exception):
    """An HTTP error with the JSON error body every route uses."""

    def __init__(
        self, status: int, kind: str, message: str, headers: dict[str, str] | None = None
    ) -> None:
        super().__init__(message)
        self.status = status
        self.kind = kind
        self.message = message
        self.headers = headers or {}


def error_json(status: int, kind: str, message: str, headers: dict[str, str] | None = None):
    return JSONResponse(
        {"error": {"type": kind, "message": message}}, status_code=status, headers=headers
    )


# -- middleware -------------------------------------------------------------------------------


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


def _static_files() -> StaticFiles:
    packages: list[str | tuple[str, str]] = []
    try:
        import gradio  # noqa: F401  (only to know whether its static folder exists)

        packages.append(("gradio", "templates/frontend/static"))
    except ImportError:
        pass
    return PublicStatic(directory=static_dir(), packages=packages or None, check_dir=False)


# -- auth -----------------------------------------------------------------------------------------

_bearer = HTTPBearer(auto_error=False, description="server.api_key, or server.chat_key")
Role = Literal["admin", "chat", "open"]


def _same(a: str, b: str) -> bool:
    """Constant-time comparison (bytes, so a non-ASCII token is simply wrong, not a crash)."""
    return bool(b) and hmac.compare_digest(a.encode("utf-8"), b.encode("utf-8"))


def _unauthorized(message: str) -> ApiError:
    return ApiError(401, "Unauthorized", message, {"WWW-Authenticate": "Bearer"})


def _auth(level: Literal["admin", "chat"]) -> Callable[..., Role]:
    def check(
        request: Request,
        creds: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
    ) -> Role:
        server = request.app.state.rag.settings.server
        api_key, chat_key = server.api_key, server.chat_key
        token = creds.credentials if creds else ""
        if level == "admin":
            if not api_key:
                return "open"
            if _same(token, api_key):
                return "admin"
            if _same(token, chat_key):
                raise ApiError(403, "Forbidden", "the chat key cannot use this endpoint")
            raise _unauthorized("this endpoint needs the server's API key (Bearer)")
        if not api_key and not chat_key:
            return "open"
        if _same(token, api_key):
            return "admin"
        if _same(token, chat_key):
            return "chat"
        raise _unauthorized("this endpoint needs the server's API key or chat key (Bearer)")

    return check


AdminKey = Annotated[Role, Depends(_auth("admin"))]
ChatKey = Annotated[Role, Depends(_auth("chat"))]


# -- helpers ------------------------------------------------------------------------------------


def _state(request: Request) -> ServerState:
    return request.app.state.rag


def _sse(event: str, data: Any) -> str:
    return f"event: {event}\ndata: {json.dumps(data, ensure_ascii=False)}\n\n"


def _event_json(event: StreamEvent) -> dict[str, Any]:
    """``{"type", "data"}`` like StreamEvent.to_dict, also for lists of models (evidence)."""
    return {"type": event.type, "data": to_jsonable_python(event.data)}


def _error_data(exc: BaseException) -> dict[str, str]:
    if isinstance(exc, RagError):
        return {"type": type(exc).__name__, "message": str(exc)}
    log.exception("generation failed", exc_info=exc)
    return {"type": "InternalError", "message": f"{type(exc).__name__}: {exc}"}


def _history(turns: list[Any]) -> list[dict[str, str]]:
    return [{"role": t.role, "content": t.content} for t in turns if t.role != "system"]


async def _slot(state: ServerState) -> None:
    await state.limiter.acquire_async()


async def _in_slot(state: ServerState, work: Callable[[], Any]) -> Any:
    """Run blocking generation work on a worker thread while holding a generation slot."""
    await _slot(state)
    try:
        return await anyio.to_thread.run_sync(work)
    finally:
        state.limiter.release()


def _usage(response: AnswerResponse) -> Usage:
    prompt = int(response.timings.get("prompt_tokens", 0))
    completion = int(response.timings.get("new_tokens", 0))
    total = prompt + completion
    return Usage(prompt_tokens=prompt, completion_tokens=completion, total_tokens=total)


def _answer_events(state: ServerState, request: AskRequest) -> Callable[[], Any]:
    """The ask stream for a request (rewrite first when it is a follow-up), as a thread body."""

    def events() -> Any:
        history = _history(request.history)
        standalone = state.standalone(history, request.question)
        if standalone:
            yield StreamEvent("status", {"standalone_question": standalone})
        yield from state.assistant.ask_stream(
            request.question,
            k=request.k,
            filters=Filters(doc_ids=tuple(request.doc_ids)) if request.doc_ids else None,
            rerank=request.rerank,
            standalone=standalone,
        )

    return events


# -- app ----------------------------------------------------------------------------------------


def _mount_offline_docs(app: FastAPI) -> None:
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


def create_app(assistant: Any, settings: Settings | None = None, *, ui: bool = True) -> FastAPI:
    """The FastAPI app: /api, /v1, /healthz, /static and (``ui``) the Gradio UI at /."""
    settings = settings or assistant.settings
    state = ServerState(assistant, settings)
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
    _mount_offline_docs(app)

    # -- errors ---------------------------------------------------------------------------------

    @app.exception_handler(ApiError)
    async def _api_error(request: Request, exc: ApiError) -> JSONResponse:
        return error_json(exc.status, exc.kind, exc.message, exc.headers)

    @app.exception_handler(RagError)
    async def _rag_error(request: Request, exc: RagError) -> JSONResponse:
        headers = (
            {"Retry-After": str(exc.retry_after)} if isinstance(exc, ServerBusyError) else None
        )
        return error_json(exc.http_status, type(exc).__name__, str(exc), headers)

    @app.exception_handler(RequestValidationError)
    async def _invalid(request: Request, exc: RequestValidationError) -> JSONResponse:
        parts = []
        for err in exc.errors()[:5]:
            where = ".".join(str(p) for p in err.get("loc", ()) if p != "body")
            parts.append(f"{where}: {err.get('msg')}" if where else str(err.get("msg")))
        return error_json(422, "ValidationError", "; ".join(parts) or "invalid request")

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        kind = re.sub(r"\W", "", str(_reason(exc.status_code))) or "HTTPError"
        return error_json(exc.status_code, kind, str(exc.detail), getattr(exc, "headers", None))

    @app.exception_handler(Exception)
    async def _crash(request: Request, exc: Exception) -> JSONResponse:
        log.exception("unhandled error on %s", request.url.path)
        return error_json(500, "InternalError", f"{type(exc).__name__}: {exc}")

    # -- answers --------------------------------------------------------------------------------

    @app.post(
        "/api/ask",
        response_model=AnswerResponse,
        tags=["answers"],
        responses=ERRORS | BUSY,
        summary="Answer a question with verified citations (or abstain)",
    )
    async def ask(body: AskRequest, request: Request, _: ChatKey) -> AnswerResponse:
        events = _answer_events(state, body)

        def work() -> AnswerResponse:
            final = None
            for event in events():
                if event.type == "final":
                    final = event.data
            assert final is not None
            return final

        return await _in_slot(state, work)

    @app.post(
        "/api/ask/stream",
        tags=["answers"],
        responses=ERRORS | BUSY | {200: {"content": {"text/event-stream": {}}}},
        summary="The same answer as Server-Sent Events: evidence, token..., final",
        response_class=StreamingResponse,
    )
    async def ask_stream(body: AskRequest, request: Request, _: ChatKey) -> StreamingResponse:
        """Events: `status` (a follow-up's rewrite), `evidence` (quotes, before any token),
        `token` (draft text), `retry` (discard the draft so far: a second draft follows),
        `final` (the verified AnswerResponse) or `error`. Each `data`
        is JSON: `{"type": ..., "data": ...}`."""
        await _slot(state)
        pump = Pump(_answer_events(state, body), state.limiter.release, asyncio.get_running_loop())

        async def stream() -> AsyncIterator[str]:
            try:
                async for event in pump.aiter(KEEPALIVE_S):
                    if event is Pump.KEEPALIVE:
                        yield ": keep-alive\n\n"
                        continue
                    yield _sse(event.type, _event_json(event))
            except Exception as exc:
                yield _sse("error", {"type": "error", "data": _error_data(exc)})

        return StreamingResponse(stream(), media_type="text/event-stream", headers=_SSE_HEADERS)

    @app.get(
        "/api/search",
        response_model=SearchResponse,
        tags=["search"],
        responses=ERRORS,
        summary="Passages that best match a question (never waits for a generation)",
    )
    def search(
        _: ChatKey,
        q: Annotated[str, Query(min_length=1, max_length=2_000, description="The query.")],
        k: Annotated[int | None, Query(ge=1, le=100)] = None,
        doc: Annotated[list[str] | None, Query(description="Only these document ids.")] = None,
        rerank: bool | None = None,
    ) -> SearchResponse:
        filters = Filters(doc_ids=tuple(doc)) if doc else None
        return state.assistant.search(q, k=k, filters=filters, rerank=rerank)

    # -- documents ------------------------------------------------------------------------------

    @app.get(
        "/api/documents", response_model=list[DocumentInfo], tags=["documents"], responses=ERRORS
    )
    def list_documents(_: AdminKey) -> list[DocumentInfo]:
        return state.assistant.documents()

    @app.post(
        UPLOAD_PATH,
        response_model=IngestReport,
        tags=["documents"],
        responses=ERRORS | {415: {"model": ErrorResponse, "description": "Unsupported type"}},
        summary="Upload files (multipart, field `files` or `file`) and add them to the index",
        openapi_extra={
            "requestBody": {
                "content": {
                    "multipart/form-data": {
                        "schema": {
                            "type": "object",
                            "properties": {
                                "files": {
                                    "type": "array",
                                    "items": {"type": "string", "format": "binary"},
                                }
                            },
                        }
                    }
                },
                "required": True,
            }
        },
    )
    async def upload_documents(request: Request, _: AdminKey) -> IngestReport:
        """Files are written only under the data dir with sanitised names, limited to
        server.max_upload_mb each while they stream (413), and to the supported types (415)."""
        stored = await _receive_uploads(request, state)
        if not stored:
            raise ApiError(422, "ValidationError", "no file in the upload (field `files`)")
        report = await anyio.to_thread.run_sync(state.assistant.add, stored)
        for result in report.results:
            result.path = state.shown_path(result.path)
        return report

    @app.delete(
        "/api/documents/{doc_id}",
        response_model=IngestResult,
        tags=["documents"],
        responses=ERRORS | {404: {"model": ErrorResponse, "description": "No such document"}},
    )
    def delete_document(doc_id: str, _: AdminKey) -> IngestResult:
        result = state.remove_document(doc_id)
        result.path = state.shown_path(result.path)
        return result

    # -- feedback / health ----------------------------------------------------------------------

    @app.post("/api/feedback", response_model=FeedbackResponse, tags=["feedback"], responses=ERRORS)
    def feedback(body: FeedbackRequest, _: ChatKey) -> FeedbackResponse:
        ts = state.record_feedback(
            question=body.question,
            answer=body.answer,
            rating=body.rating,
            comment=body.comment,
            answer_fingerprints=body.fingerprints,
        )
        return FeedbackResponse(timestamp=ts)

    @app.get("/healthz", response_model=HealthResponse, tags=["health"])
    def healthz() -> HealthResponse:
        stats = state.assistant.stats()
        return HealthResponse(
            documents=stats.documents,
            chunks=stats.chunks,
            generation=stats.generation,
            models=state.loaded_models(),
            generations_running=state.limiter.active,
            generations_limit=state.limiter.limit,
        )

    # -- OpenAI-compatible ----------------------------------------------------------------------

    @app.get("/v1/models", response_model=ModelList, tags=["openai"], responses=ERRORS)
    def models(_: ChatKey) -> ModelList:
        now = int(time.time())
        # The raw generator first: a RemoteGenerator without generate.remote_model takes the
        # first listed id, and as a generator backend it must get plain completions.
        return ModelList(
            data=[
                ModelCard(
                    id=state.generator_id(),
                    created=now,
                    description="The raw generator: messages in, text out, no retrieval.",
                ),
                ModelCard(
                    id=RAG_MODEL,
                    created=now,
                    description="Retrieval + verified, cited answer (references in the reply).",
                ),
            ]
        )

    @app.post(
        "/v1/chat/completions",
        response_model=ChatCompletion,
        tags=["openai"],
        responses=ERRORS | BUSY | {404: {"model": ErrorResponse, "description": "No such model"}},
        summary="OpenAI-compatible chat completions (stream and non-stream)",
        response_model_exclude_none=True,
    )
    async def chat_completions(body: ChatCompletionRequest, _: ChatKey) -> Any:
        """`model: "onco-rag"` answers the last user message from the index (earlier turns are
        history) with the verified answer as content and the cited passages as `references`;
        `model: <generator name>` (see /v1/models) passes the messages to the model as is."""
        model = body.model or RAG_MODEL
        if model == RAG_MODEL:
            return await _rag_completion(state, body)
        if model == state.generator_id():
            return await _raw_completion(state, body)
        raise ApiError(
            404,
            "ModelNotFound",
            f"unknown model {model!r}; choose {RAG_MODEL!r} or {state.generator_id()!r}",
        )

    # -- static files and the UI ----------------------------------------------------------------

    app.mount("/static", _static_files(), name="static")

    app.add_middleware(BodyLimit, limit_bytes=server.max_request_kb * 1024)
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

    if ui:
        # Gradio keeps browser uploads in its own cache: put it inside the data dir too.
        os.environ.setdefault("GRADIO_TEMP_DIR", str(state.data_dir / "gradio-cache"))
        from rag.ui.app import mount_ui

        app = mount_ui(app, state)
    return app


_SSE_HEADERS = {"Cache-Control": "no-cache", "X-Accel-Buffering": "no"}


def _reason(status: int) -> str:
    from http import HTTPStatus

    try:
        return HTTPStatus(status).phrase
    except ValueError:
        return "HTTPError"


# -- uploads ------------------------------------------------------------------------------------


async def _receive_uploads(request: Request, state: ServerState) -> list[Path]:
    """Stream a multipart body to files under the data dir, enforcing size and type limits.

    Starlette's form parser would spool large files to the system temp folder first; parsing
    here keeps every byte inside the data dir and stops reading at the first file over the
    limit.
    """
    limit = int(state.settings.server.max_upload_mb * 1024 * 1024)
    ctype, params = parse_options_header(request.headers.get("content-type", ""))
    if ctype != b"multipart/form-data" or b"boundary" not in params:
        raise ApiError(415, "UnsupportedMediaType", "send the files as multipart/form-data")
    length = request.headers.get("content-length", "")
    if length.isdigit() and int(length) > limit * MAX_FILES + 65536:
        raise _too_large(state)

    supported = ", ".join(sorted(SUFFIXES))
    parts: list[dict[str, Any]] = []
    current: dict[str, Any] = {}
    header_field = bytearray()
    header_value = bytearray()
    problem: list[ApiError] = []

    def on_part_begin() -> None:
        current.clear()
        current["headers"] = {}

    def on_header_field(data: bytes, start: int, end: int) -> None:
        header_field.extend(data[start:end])

    def on_header_value(data: bytes, start: int, end: int) -> None:
        header_value.extend(data[start:end])

    def on_header_end() -> None:
        current["headers"][bytes(header_field).lower()] = bytes(header_value)
        header_field.clear()
        header_value.clear()

    def on_headers_finished() -> None:
        _, disp = parse_options_header(current["headers"].get(b"content-disposition", b""))
        filename = disp.get(b"filename")
        if filename is None or problem:
            current["handle"] = None  # a plain form field: ignored
            return
        name = filename.decode("utf-8", "replace")
        suffix = Path(name.replace("\\", "/")).suffix.lower()
        if suffix not in SUFFIXES:
            problem.append(
                ApiError(
                    415,
                    "UnsupportedFormatError",
                    f"unsupported file type {suffix or '(no extension)'!r} for {name!r}; "
                    f"supported: {supported}",
                )
            )
            current["handle"] = None
            return
        if len(parts) >= MAX_FILES:
            problem.append(ApiError(413, "TooManyFiles", f"at most {MAX_FILES} files per upload"))
            current["handle"] = None
            return
        partial = state.partial_path()
        current.update(name=name, partial=partial, size=0, handle=partial.open("xb"))
        parts.append(current.copy())

    def on_part_data(data: bytes, start: int, end: int) -> None:
        handle = current.get("handle")
        if handle is None or problem:
            return
        current["size"] += end - start
        if current["size"] > limit:
            problem.append(_too_large(state))
            return
        handle.write(data[start:end])

    def on_part_end() -> None:
        handle = current.get("handle")
        if handle is not None:
            handle.close()

    parser = MultipartParser(
        params[b"boundary"],
        {
            "on_part_begin": on_part_begin,
            "on_header_field": on_header_field,
            "on_header_value": on_header_value,
            "on_header_end": on_header_end,
            "on_headers_finished": on_headers_finished,
            "on_part_data": on_part_data,
            "on_part_end": on_part_end,
        },
    )
    try:
        async for chunk in request.stream():
            parser.write(chunk)
            if problem:
                raise problem[0]
        parser.finalize()
        if problem:
            raise problem[0]

        def keep() -> list[Path]:  # hashing large files: off the event loop
            return [state.keep_upload(p["partial"], p["name"]) for p in parts]

        return await anyio.to_thread.run_sync(keep)
    except ApiError:
        raise
    except Exception as exc:
        raise ApiError(400, "MalformedUpload", f"cannot read the multipart body: {exc}") from exc
    finally:
        handle = current.get("handle")
        if handle is not None and not handle.closed:
            handle.close()
        for p in parts:
            p["partial"].unlink(missing_ok=True)  # kept files were moved already


def _too_large(state: ServerState) -> ApiError:
    mb = state.settings.server.max_upload_mb
    return ApiError(413, "FileTooLargeError", f"a file exceeds server.max_upload_mb ({mb:g} MB)")


# -- chat completions ---------------------------------------------------------------------------


def _completion_id() -> str:
    return f"chatcmpl-{uuid.uuid4().hex[:24]}"


def _chunk(cid: str, created: int, model: str, delta: dict[str, Any], finish: str | None = None):
    return {
        "id": cid,
        "object": "chat.completion.chunk",
        "created": created,
        "model": model,
        "choices": [{"index": 0, "delta": delta, "finish_reason": finish, "logprobs": None}],
    }


def _data(obj: Any) -> str:
    return f"data: {json.dumps(obj, ensure_ascii=False)}\n\n"


def _rag_request(body: ChatCompletionRequest) -> AskRequest:
    turns = [(m.role, m.text()) for m in body.messages if m.role in ("user", "assistant")]
    last = max((i for i, (role, _) in enumerate(turns) if role == "user"), default=None)
    if last is None or not turns[last][1].strip():
        raise ApiError(422, "ValidationError", "messages: no user message to answer")
    history = [{"role": r, "content": c} for r, c in turns[:last] if c.strip()]
    return AskRequest.model_validate({"question": turns[last][1][:2000], "history": history})


async def _rag_completion(state: ServerState, body: ChatCompletionRequest) -> Any:
    request = _rag_request(body)
    events = _answer_events(state, request)
    cid, created = _completion_id(), int(time.time())
    if not body.stream:

        def work() -> AnswerResponse:
            final = None
            for event in events():
                if event.type == "final":
                    final = event.data
            assert final is not None
            return final

        response: AnswerResponse = await _in_slot(state, work)
        return ChatCompletion(
            id=cid,
            created=created,
            model=RAG_MODEL,
            choices=[Choice(message=AssistantMessage(content=response.answer))],
            usage=_usage(response),
            references=response.citations,
            abstained=response.abstained,
        )

    await _slot(state)
    pump = Pump(events, state.limiter.release, asyncio.get_running_loop())
    include_usage = bool(body.stream_options and body.stream_options.include_usage)

    async def stream() -> AsyncIterator[str]:
        yield _data(_chunk(cid, created, RAG_MODEL, {"role": "assistant", "content": ""}))
        final: AnswerResponse | None = None
        try:
            async for event in pump.aiter(KEEPALIVE_S):
                # The draft is not sent: clients concatenate deltas, and only the verified
                # answer may end up as the message content.
                if event is Pump.KEEPALIVE or event.type == "token":
                    yield ": keep-alive\n\n"
                elif event.type == "final":
                    final = event.data
        except Exception as exc:
            yield _data({"error": _error_data(exc)})
            return
        assert final is not None
        for piece in re.findall(r"\S+\s*|\s+", final.answer):
            yield _data(_chunk(cid, created, RAG_MODEL, {"content": piece}))
        last = _chunk(cid, created, RAG_MODEL, {}, "stop")
        last["references"] = [c.model_dump(mode="json") for c in final.citations]
        last["abstained"] = final.abstained
        if include_usage:
            last["usage"] = _usage(final).model_dump()
        yield _data(last)
        yield "data: [DONE]\n\n"

    return StreamingResponse(stream(), media_type="text/event-stream", headers=_SSE_HEADERS)


async def _raw_completion(state: ServerState, body: ChatCompletionRequest) -> Any:
    """The generator as a plain LLM server: one instance can be another's remote generator."""
    messages = [{"role": m.role, "content": m.text()} for m in body.messages]
    gen_settings = state.settings.generate
    max_tokens = body.max_completion_tokens or body.max_tokens or gen_settings.max_new_tokens
    temperature = gen_settings.temperature if body.temperature is None else body.temperature
    stops = body.stops()
    model = state.generator_id()
    cid, created = _completion_id(), int(time.time())

    def pieces() -> Any:
        yield from state.assistant.generator.stream(
            messages, max_new_tokens=max_tokens, temperature=temperature, stop=stops or None
        )

    def usage(stats: GenerationStats | None) -> Usage:
        if stats is None:
            return Usage()
        total = stats.prompt_tokens + stats.new_tokens
        prompt, completion = stats.prompt_tokens, stats.new_tokens
        return Usage(prompt_tokens=prompt, completion_tokens=completion, total_tokens=total)

    def finish(stats: GenerationStats | None) -> Literal["stop", "length"]:
        return "length" if stats is not None and stats.new_tokens >= max_tokens else "stop"

    if not body.stream:

        def work() -> tuple[str, GenerationStats | None]:
            text, stats = [], None
            for item in pieces():
                if isinstance(item, GenerationStats):
                    stats = item
                else:
                    text.append(item)
            return "".join(text), stats

        text, stats = await _in_slot(state, work)
        return ChatCompletion(
            id=cid,
            created=created,
            model=model,
            choices=[Choice(message=AssistantMessage(content=text), finish_reason=finish(stats))],
            usage=usage(stats),
        )

    await _slot(state)
    pump = Pump(pieces, state.limiter.release, asyncio.get_running_loop())
    include_usage = bool(body.stream_options and body.stream_options.include_usage)

    async def stream() -> AsyncIterator[str]:
        yield _data(_chunk(cid, created, model, {"role": "assistant", "content": ""}))
        stats: GenerationStats | None = None
        try:
            async for item in pump.aiter(KEEPALIVE_S):
                if item is Pump.KEEPALIVE:
                    yield ": keep-alive\n\n"
                elif isinstance(item, GenerationStats):
                    stats = item
                else:
                    yield _data(_chunk(cid, created, model, {"content": item}))
        except Exception as exc:
            yield _data({"error": _error_data(exc)})
            return
        yield _data(_chunk(cid, created, model, {}, finish(stats)))
        if include_usage:
            tail = _chunk(cid, created, model, {})
            tail["choices"] = []
            tail["usage"] = usage(stats).model_dump()
            yield _data(tail)
        yield "data: [DONE]\n\n"

    return StreamingResponse(stream(), media_type="text/event-stream", headers=_SSE_HEADERS)

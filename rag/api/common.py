"""What every route module shares: limits, error bodies, keys, the server state, SSE helpers."""

from __future__ import annotations

import hmac
import json
import logging
from collections.abc import Callable
from typing import Annotated, Any, Literal

import anyio
from fastapi import Depends, Query, Request
from fastapi.responses import JSONResponse
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from pydantic_core import to_jsonable_python

from rag.api.schemas import (
    AskRequest,
    ErrorResponse,
)
from rag.errors import RagError, RequestError
from rag.schemas import (
    StreamEvent,
)
from rag.server import ServerState

log = logging.getLogger(__name__)


UPLOAD_PATH = "/api/documents"
KEEPALIVE_S = 10.0
ERRORS: dict[int | str, dict[str, Any]] = {
    401: {"model": ErrorResponse, "description": "Missing or wrong bearer key"},
    403: {"model": ErrorResponse, "description": "The key does not reach this endpoint"},
    413: {"model": ErrorResponse, "description": "Request body too large"},
    422: {"model": ErrorResponse, "description": "Invalid request"},
}
NOT_FOUND: dict[int | str, dict[str, Any]] = {
    404: {"model": ErrorResponse, "description": "No such document"}
}
BUSY: dict[int | str, dict[str, Any]] = {
    503: {"model": ErrorResponse, "description": "All generation slots busy (see Retry-After)"}
}


def json_errors(errors: dict[int | str, dict[str, Any]]) -> dict[int | str, dict[str, Any]]:
    """``errors`` declared as JSON bodies, for a route whose own responses are not JSON (FastAPI
    would otherwise document its error bodies under the route's media type)."""
    ref = {"$ref": "#/components/schemas/ErrorResponse"}
    return {
        code: {"description": spec["description"], "content": {"application/json": {"schema": ref}}}
        for code, spec in errors.items()
    }


def error_json(
    status: int, kind: str, message: str, headers: dict[str, str] | None = None
) -> JSONResponse:
    """The one error body every route and handler returns."""
    return JSONResponse(
        {"error": {"type": kind, "message": message}}, status_code=status, headers=headers
    )


# -- keys ---

_bearer = HTTPBearer(auto_error=False, description="server.api_key, or server.chat_key")
Role = Literal["admin", "chat", "open"]


def _same(a: str, b: str) -> bool:
    """Constant-time comparison (bytes, so a non-ASCII token is simply wrong, not a crash)."""
    return bool(b) and hmac.compare_digest(a.encode("utf-8"), b.encode("utf-8"))


def _unauthorized(message: str) -> RequestError:
    return RequestError(401, "Unauthorized", message, {"WWW-Authenticate": "Bearer"})


def require_key(level: Literal["admin", "chat"]) -> Callable[..., Role]:
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
                raise RequestError(403, "Forbidden", "the chat key cannot use this endpoint")
            raise _unauthorized("this endpoint needs the server's API key (Bearer)")
        if not api_key and not chat_key:
            return "open"
        if _same(token, api_key):
            return "admin"
        if _same(token, chat_key):
            return "chat"
        raise _unauthorized("this endpoint needs the server's API key or chat key (Bearer)")

    return check


# The span a quote view shows; declared once, for the route and the access check alike (the
# schema takes a parameter's first declaration, and the check reads the same three).
SpanStart = Annotated[int, Query(ge=0, description="Start of the span in the document's text.")]
SpanEnd = Annotated[int, Query(ge=1, description="End of the span (exclusive).")]
ViewSignature = Annotated[
    str, Query(max_length=64, description="The signature a citation's view_url carries.")
]


def view_access(
    request: Request,
    doc_id: str,
    start: SpanStart,
    end: SpanEnd,
    sig: ViewSignature = "",
    creds: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)] = None,
) -> Role:
    """A quote's page opens with either key as Bearer, or by the signed link an answer's
    citation carries (a link opened in a new tab sends no header)."""
    state = request.app.state.rag
    server = state.settings.server
    if not server.api_key and not server.chat_key:
        return "open"
    token = creds.credentials if creds else ""
    if _same(token, server.api_key) or _same(token, server.chat_key):
        return "chat"
    if _same(sig, state.view_signature(doc_id, start, end)):
        return "chat"
    raise _unauthorized("this link needs its signature (sig) or a key (Bearer)")


AdminKey = Annotated[Role, Depends(require_key("admin"))]
ViewAccess = Annotated[Role, Depends(view_access)]
ChatKey = Annotated[Role, Depends(require_key("chat"))]


# -- state and streaming ---


def server_state(request: Request) -> ServerState:
    return request.app.state.rag


def sse(event: str, data: Any) -> str:
    return f"event: {event}\ndata: {json.dumps(data, ensure_ascii=False)}\n\n"


def event_json(event: StreamEvent) -> dict[str, Any]:
    """``{"type", "data"}`` like StreamEvent.to_dict, also for lists of models (evidence)."""
    return {"type": event.type, "data": to_jsonable_python(event.data)}


def error_data(exc: BaseException) -> dict[str, str]:
    if isinstance(exc, RagError):
        return {"type": type(exc).__name__, "message": str(exc)}
    log.exception("generation failed", exc_info=exc)
    return {"type": "InternalError", "message": f"{type(exc).__name__}: {exc}"}


def history_messages(turns: list[Any]) -> list[dict[str, str]]:
    return [{"role": t.role, "content": t.content} for t in turns if t.role != "system"]


async def take_slot(state: ServerState) -> None:
    await state.limiter.acquire_async()


async def in_slot(state: ServerState, work: Callable[[], Any]) -> Any:
    """Run blocking generation work on a worker thread while holding a generation slot."""
    await take_slot(state)
    try:
        return await anyio.to_thread.run_sync(work)
    finally:
        state.limiter.release()


def answer_events(state: ServerState, request: AskRequest) -> Callable[[], Any]:
    """The ask stream for a request (rewrite first when it is a follow-up), as a thread body."""

    def events() -> Any:
        yield from state.answer_stream(
            request.question,
            history_messages(request.history),
            k=request.k,
            doc_ids=request.doc_ids,
            rerank=request.rerank,
        )

    return events


StateDep = Annotated[ServerState, Depends(server_state)]
SSE_HEADERS = {"Cache-Control": "no-cache", "X-Accel-Buffering": "no"}

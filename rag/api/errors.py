"""Every error as `{"error": {"type", "message"}}`: library errors, validation, HTTP, crashes."""

from __future__ import annotations

import logging
import re

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from rag.api.common import error_json
from rag.errors import RagError, RequestError
from rag.server import ServerBusyError

log = logging.getLogger(__name__)


def install_error_handlers(app: FastAPI) -> None:
    """Map each error family to its status and JSON body."""

    @app.exception_handler(RequestError)
    async def _api_error(request: Request, exc: RequestError) -> JSONResponse:
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


def _reason(status: int) -> str:
    from http import HTTPStatus

    try:
        return HTTPStatus(status).phrase
    except ValueError:
        return "HTTPError"

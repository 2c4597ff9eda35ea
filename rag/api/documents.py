"""Documents: list, upload (multipart, streamed to the data dir under limits), remove, and
export as references (BibTeX, RIS, CSL-JSON)."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Annotated, Any, Literal

import anyio
from fastapi import APIRouter, Query, Request, Response
from fastapi.responses import HTMLResponse
from python_multipart.multipart import MultipartParser, parse_options_header

from rag.api.common import (
    ERRORS,
    NOT_FOUND,
    UPLOAD_PATH,
    AdminKey,
    ChatKey,
    SpanEnd,
    SpanStart,
    StateDep,
    ViewAccess,
    ViewSignature,
    json_errors,
)
from rag.api.schemas import (
    ErrorResponse,
)
from rag.errors import RequestError
from rag.references import MEDIA_TYPES, SUFFIXES, check_format
from rag.schemas import (
    DocumentInfo,
    IngestReport,
    IngestResult,
)
from rag.server import ServerState

log = logging.getLogger(__name__)

MAX_FILES = 20
router = APIRouter()


@router.get(
    "/api/documents", response_model=list[DocumentInfo], tags=["documents"], responses=ERRORS
)
def list_documents(state: StateDep, _: AdminKey) -> list[DocumentInfo]:
    return state.assistant.documents()


# The view shows document text anyone may have uploaded: nothing on it may run or load.
VIEW_HEADERS = {
    "Content-Security-Policy": "default-src 'none'; img-src data:; style-src 'unsafe-inline'; "
    "base-uri 'none'; form-action 'none'; frame-ancestors 'self'",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
}
CiteFormat = Annotated[
    Literal["bibtex", "ris", "csl-json"], Query(alias="format", description="Reference format.")
]
_CITE_RESPONSES: dict[int | str, dict[str, Any]] = {
    200: {
        "description": "The references, as a file",
        "content": {
            media: {
                "schema": {"type": "array", "items": {"type": "object"}}
                if form == "csl-json"
                else {"type": "string"}
            }
            for form, media in MEDIA_TYPES.items()
        },
    },
    **json_errors(ERRORS | NOT_FOUND),
}


def _references(state: ServerState, doc_ids: list[str] | None, fmt: str) -> Response:
    form = check_format(fmt)
    text = state.assistant.references(doc_ids, form)
    name = f"{doc_ids[0] if doc_ids and len(doc_ids) == 1 else 'references'}{SUFFIXES[form]}"
    return Response(
        content=text.encode("utf-8"),
        media_type=f"{MEDIA_TYPES[form]}; charset=utf-8",
        headers={"Content-Disposition": f'attachment; filename="{name}"'},
    )


@router.get(
    "/api/documents/cite",
    response_class=Response,
    tags=["documents"],
    responses=_CITE_RESPONSES,
    summary="Indexed documents as references (all, or the ids given)",
)
def cite_documents(
    state: StateDep,
    _: ChatKey,
    fmt: CiteFormat = "bibtex",
    doc: Annotated[list[str] | None, Query(description="Only these document ids.")] = None,
) -> Response:
    return _references(state, doc, fmt)


@router.get(
    "/api/documents/{doc_id}/cite",
    response_class=Response,
    tags=["documents"],
    responses=_CITE_RESPONSES,
    summary="One indexed document as a reference",
)
def cite_document(state: StateDep, doc_id: str, _: ChatKey, fmt: CiteFormat = "bibtex") -> Response:
    return _references(state, [doc_id], fmt)


@router.get(
    "/api/documents/{doc_id}/view",
    response_class=HTMLResponse,
    tags=["documents"],
    responses={
        200: {"content": {"text/html": {"schema": {"type": "string"}}}},
        **json_errors(ERRORS | NOT_FOUND),
    },
    summary="A span of a document where it stands (a PDF's page rendered, the quote boxed)",
)
def view_document(
    state: StateDep,
    doc_id: str,
    _: ViewAccess,
    start: SpanStart,
    end: SpanEnd,
    sig: ViewSignature = "",
) -> HTMLResponse:
    return HTMLResponse(state.assistant.view(doc_id, start, end), headers=VIEW_HEADERS)


@router.post(
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
                                "minItems": 1,
                            }
                        },
                        "required": ["files"],
                    }
                }
            },
            "required": True,
        }
    },
)
async def upload_documents(state: StateDep, request: Request, _: AdminKey) -> IngestReport:
    """Files are written only under the data dir with sanitised names, limited to
    server.max_upload_mb each while they stream (413), and to the supported types (415)."""
    stored = await receive_uploads(request, state)
    if not stored:
        raise RequestError(422, "ValidationError", "no file in the upload (field `files`)")
    report = await anyio.to_thread.run_sync(state.assistant.add, stored)
    for result in report.results:
        result.path = state.shown_path(result.path)
    return report


@router.delete(
    "/api/documents/{doc_id}",
    response_model=IngestResult,
    tags=["documents"],
    responses=ERRORS | NOT_FOUND,
)
def delete_document(state: StateDep, doc_id: str, _: AdminKey) -> IngestResult:
    result = state.remove_document(doc_id)
    result.path = state.shown_path(result.path)
    return result


async def receive_uploads(request: Request, state: ServerState) -> list[Path]:
    """Stream a multipart body to files under the data dir, enforcing size and type limits.

    Starlette's form parser would spool large files to the system temp folder first; parsing
    here keeps every byte inside the data dir and stops reading at the first file over the
    limit.
    """
    limit = int(state.settings.server.max_upload_mb * 1024 * 1024)
    ctype, params = parse_options_header(request.headers.get("content-type", ""))
    if ctype != b"multipart/form-data" or b"boundary" not in params:
        raise RequestError(415, "UnsupportedMediaType", "send the files as multipart/form-data")
    length = request.headers.get("content-length", "")
    if length.isdigit() and int(length) > limit * MAX_FILES + 65536:
        raise too_large(state)

    suffixes = state.assistant.supported_suffixes()
    supported = ", ".join(suffixes)
    parts: list[dict[str, Any]] = []
    current: dict[str, Any] = {}
    header_field = bytearray()
    header_value = bytearray()
    problem: list[RequestError] = []

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
        if suffix not in suffixes:
            problem.append(
                RequestError(
                    415,
                    "UnsupportedFormatError",
                    f"unsupported file type {suffix or '(no extension)'!r} for {name!r}; "
                    f"supported: {supported}",
                )
            )
            current["handle"] = None
            return
        if len(parts) >= MAX_FILES:
            problem.append(
                RequestError(413, "TooManyFiles", f"at most {MAX_FILES} files per upload")
            )
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
            problem.append(too_large(state))
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
    except RequestError:
        raise
    except Exception as exc:
        raise RequestError(
            400, "MalformedUpload", f"cannot read the multipart body: {exc}"
        ) from exc
    finally:
        handle = current.get("handle")
        if handle is not None and not handle.closed:
            handle.close()
        for p in parts:
            p["partial"].unlink(missing_ok=True)  # kept files were moved already


def too_large(state: ServerState) -> RequestError:
    mb = state.settings.server.max_upload_mb
    return RequestError(
        413, "FileTooLargeError", f"a file exceeds server.max_upload_mb ({mb:g} MB)"
    )

"""Answers, search, feedback, health: /api/ask, /api/ask/stream, /api/search, /healthz..."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from typing import Annotated

from fastapi import APIRouter, Query, Request
from fastapi.responses import StreamingResponse

from rag.api.common import (
    BUSY,
    ERRORS,
    KEEPALIVE_S,
    SSE_HEADERS,
    ChatKey,
    StateDep,
    answer_events,
    error_data,
    event_json,
    in_slot,
    sse,
    take_slot,
)
from rag.api.schemas import (
    AskRequest,
    FeedbackRequest,
    FeedbackResponse,
    HealthResponse,
)
from rag.schemas import (
    AnswerResponse,
    SearchResponse,
    final_response,
)
from rag.server import Pump
from rag.types import Filters

log = logging.getLogger(__name__)

router = APIRouter()


@router.post(
    "/api/ask",
    response_model=AnswerResponse,
    tags=["answers"],
    responses=ERRORS | BUSY,
    summary="Answer a question with verified citations (or abstain)",
)
async def ask(state: StateDep, body: AskRequest, request: Request, _: ChatKey) -> AnswerResponse:
    events = answer_events(state, body)
    return await in_slot(state, lambda: final_response(events()))


@router.post(
    "/api/ask/stream",
    tags=["answers"],
    responses=ERRORS | BUSY | {200: {"content": {"text/event-stream": {}}}},
    summary="The same answer as Server-Sent Events: evidence, token..., final",
    response_class=StreamingResponse,
)
async def ask_stream(
    state: StateDep, body: AskRequest, request: Request, _: ChatKey
) -> StreamingResponse:
    """Events: `status` (a follow-up's rewrite), `evidence` (quotes, before any token),
    `token` (draft text), `retry` (discard the draft so far: a second draft follows),
    `final` (the verified AnswerResponse) or `error`. Each `data`
    is JSON: `{"type": ..., "data": ...}`."""
    await take_slot(state)
    pump = Pump(answer_events(state, body), state.limiter.release, asyncio.get_running_loop())

    async def stream() -> AsyncIterator[str]:
        try:
            async for event in pump.aiter(KEEPALIVE_S):
                if event is Pump.KEEPALIVE:
                    yield ": keep-alive\n\n"
                    continue
                yield sse(event.type, event_json(event))
        except Exception as exc:
            yield sse("error", {"type": "error", "data": error_data(exc)})

    return StreamingResponse(stream(), media_type="text/event-stream", headers=SSE_HEADERS)


@router.get(
    "/api/search",
    response_model=SearchResponse,
    tags=["search"],
    responses=ERRORS,
    summary="Passages that best match a question (never waits for a generation)",
)
def search(
    state: StateDep,
    _: ChatKey,
    q: Annotated[str, Query(min_length=1, max_length=2_000, description="The query.")],
    k: Annotated[int | None, Query(ge=1, le=100)] = None,
    doc: Annotated[list[str] | None, Query(description="Only these document ids.")] = None,
    rerank: bool | None = None,
) -> SearchResponse:
    filters = Filters(doc_ids=tuple(doc)) if doc else None
    return state.assistant.search(q, k=k, filters=filters, rerank=rerank)


@router.post("/api/feedback", response_model=FeedbackResponse, tags=["feedback"], responses=ERRORS)
def feedback(state: StateDep, body: FeedbackRequest, _: ChatKey) -> FeedbackResponse:
    ts = state.record_feedback(
        question=body.question,
        answer=body.answer,
        rating=body.rating,
        comment=body.comment,
        answer_fingerprints=body.fingerprints,
    )
    return FeedbackResponse(timestamp=ts)


@router.get("/healthz", response_model=HealthResponse, tags=["health"])
def healthz(state: StateDep) -> HealthResponse:
    stats = state.assistant.stats()
    return HealthResponse(
        documents=stats.documents,
        chunks=stats.chunks,
        generation=stats.generation,
        models=state.loaded_models(),
        generations_running=state.limiter.active,
        generations_limit=state.limiter.limit,
    )

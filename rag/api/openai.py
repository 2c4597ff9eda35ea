"""OpenAI-compatible /v1/models and /v1/chat/completions (RAG with references, or the raw model)."""

from __future__ import annotations

import asyncio
import json
import logging
import re
import time
import uuid
from collections.abc import AsyncIterator
from typing import Any, Literal

from fastapi import APIRouter
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
    in_slot,
    take_slot,
)
from rag.api.schemas import (
    AskRequest,
    AssistantMessage,
    ChatCompletion,
    ChatCompletionRequest,
    Choice,
    ErrorResponse,
    ModelCard,
    ModelList,
    Usage,
)
from rag.errors import RequestError
from rag.generate import GenerationStats, generate_text
from rag.schemas import (
    AnswerResponse,
    final_response,
)
from rag.server import Pump, ServerState

log = logging.getLogger(__name__)

RAG_MODEL = "onco-rag"
router = APIRouter()


@router.get("/v1/models", response_model=ModelList, tags=["openai"], responses=ERRORS)
def models(state: StateDep, _: ChatKey) -> ModelList:
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


@router.post(
    "/v1/chat/completions",
    response_model=ChatCompletion,
    tags=["openai"],
    responses=ERRORS
    | BUSY
    | {
        200: {
            "description": "A chat completion; with `stream: true`, chunks as Server-Sent "
            "Events ending in `data: [DONE]`",
            "content": {"text/event-stream": {}},  # chat.completion.chunk objects, then [DONE]
        },
        404: {"model": ErrorResponse, "description": "No such model"},
    },
    summary="OpenAI-compatible chat completions (stream and non-stream)",
    response_model_exclude_none=True,
)
async def chat_completions(state: StateDep, body: ChatCompletionRequest, _: ChatKey) -> Any:
    """`model: "onco-rag"` answers the last user message from the index (earlier turns are
    history) with the verified answer as content and the cited passages as `references`;
    `model: <generator name>` (see /v1/models) passes the messages to the model as is."""
    model = body.model or RAG_MODEL
    if model == RAG_MODEL:
        return await _rag_completion(state, body)
    if model == state.generator_id():
        return await _raw_completion(state, body)
    raise RequestError(
        404,
        "ModelNotFound",
        f"unknown model {model!r}; choose {RAG_MODEL!r} or {state.generator_id()!r}",
    )


def usage_of(response: AnswerResponse) -> Usage:
    prompt = int(response.timings.get("prompt_tokens", 0))
    completion = int(response.timings.get("new_tokens", 0))
    total = prompt + completion
    return Usage(prompt_tokens=prompt, completion_tokens=completion, total_tokens=total)


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
        raise RequestError(422, "NoUserMessage", "messages: no user message to answer")
    history = [{"role": r, "content": c} for r, c in turns[:last] if c.strip()]
    return AskRequest.model_validate({"question": turns[last][1][:2000], "history": history})


async def _rag_completion(state: ServerState, body: ChatCompletionRequest) -> Any:
    request = _rag_request(body)
    events = answer_events(state, request)
    cid, created = _completion_id(), int(time.time())
    if not body.stream:
        response: AnswerResponse = await in_slot(state, lambda: final_response(events()))
        return ChatCompletion(
            id=cid,
            created=created,
            model=RAG_MODEL,
            choices=[Choice(message=AssistantMessage(content=response.answer))],
            usage=usage_of(response),
            references=response.citations,
            abstained=response.abstained,
        )

    await take_slot(state)
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
            yield _data({"error": error_data(exc)})
            return
        assert final is not None
        for piece in re.findall(r"\S+\s*|\s+", final.answer):
            yield _data(_chunk(cid, created, RAG_MODEL, {"content": piece}))
        last = _chunk(cid, created, RAG_MODEL, {}, "stop")
        last["references"] = [c.model_dump(mode="json") for c in final.citations]
        last["abstained"] = final.abstained
        if include_usage:
            last["usage"] = usage_of(final).model_dump()
        yield _data(last)
        yield "data: [DONE]\n\n"

    return StreamingResponse(stream(), media_type="text/event-stream", headers=SSE_HEADERS)


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

        def work() -> tuple[str, GenerationStats]:
            return generate_text(
                state.assistant.generator,
                messages,
                max_new_tokens=max_tokens,
                temperature=temperature,
                stop=stops or None,
            )

        text, stats = await in_slot(state, work)
        return ChatCompletion(
            id=cid,
            created=created,
            model=model,
            choices=[Choice(message=AssistantMessage(content=text), finish_reason=finish(stats))],
            usage=usage(stats),
        )

    await take_slot(state)
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
            yield _data({"error": error_data(exc)})
            return
        yield _data(_chunk(cid, created, model, {}, finish(stats)))
        if include_usage:
            tail = _chunk(cid, created, model, {})
            tail["choices"] = []
            tail["usage"] = usage(stats).model_dump()
            yield _data(tail)
        yield "data: [DONE]\n\n"

    return StreamingResponse(stream(), media_type="text/event-stream", headers=SSE_HEADERS)

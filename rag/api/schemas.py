"""Request and response models that exist only at the HTTP boundary.

Library results (AnswerResponse, SearchResponse, IngestReport, DocumentInfo, Citation) are
returned as they are; these models describe what clients send and the OpenAI-compatible shapes.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from rag.schemas import Citation


class ChatTurn(BaseModel):
    role: Literal["system", "user", "assistant"]
    content: str = Field(max_length=20_000)


class AskRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    question: str = Field(min_length=1, max_length=2_000)
    k: int | None = Field(None, ge=1, le=20, description="Passages given to the model.")
    doc_ids: list[str] | None = Field(None, description="Answer only from these documents.")
    rerank: bool | None = None
    history: list[ChatTurn] = Field(
        default_factory=list,
        description="Earlier turns; a follow-up is rewritten to stand alone before retrieval.",
    )

    @field_validator("question")
    @classmethod
    def _not_blank(cls, v: str) -> str:
        if not v.strip():
            raise ValueError("question is blank")
        return v.strip()


class FeedbackRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    question: str = Field(max_length=4_000)
    answer: str = Field(max_length=20_000)
    rating: Literal["up", "down"]
    comment: str | None = Field(None, max_length=4_000)
    fingerprints: dict[str, str] | None = Field(
        None, description="The fingerprints of the answer being rated (from AnswerResponse)."
    )


class FeedbackResponse(BaseModel):
    stored: bool = True
    timestamp: float


class HealthResponse(BaseModel):
    status: Literal["ok"] = "ok"
    documents: int
    chunks: int
    generation: int = Field(description="Index generation: changes with every committed write.")
    models: dict[str, str | None] = Field(
        description="Loaded models (null = not loaded yet; loads on first use)."
    )
    generations_running: int
    generations_limit: int


class ErrorBody(BaseModel):
    type: str
    message: str


class ErrorResponse(BaseModel):
    error: ErrorBody


# -- OpenAI-compatible chat completions ---------------------------------------------------------


class ChatMessage(BaseModel):
    model_config = ConfigDict(extra="allow")

    role: Literal["system", "user", "assistant", "tool", "developer"]
    content: str | list[dict[str, Any]] | None = None

    def text(self) -> str:
        """Plain text of the message (text parts of a multi-part content joined)."""
        if self.content is None:
            return ""
        if isinstance(self.content, str):
            return self.content
        return "".join(str(p.get("text", "")) for p in self.content if p.get("type") == "text")


class StreamOptions(BaseModel):
    model_config = ConfigDict(extra="allow")

    include_usage: bool = False


class ChatCompletionRequest(BaseModel):
    """The subset of the OpenAI request the server honours; other fields are accepted and
    ignored so stock clients work unchanged."""

    model_config = ConfigDict(extra="allow")

    model: str = "onco-rag"
    messages: list[ChatMessage] = Field(min_length=1)
    stream: bool = False
    stream_options: StreamOptions | None = None
    max_tokens: int | None = Field(None, ge=1, le=4096)
    max_completion_tokens: int | None = Field(None, ge=1, le=4096)
    temperature: float | None = Field(None, ge=0, le=2)
    stop: str | list[str] | None = None
    logprobs: bool | None = None
    top_logprobs: int | None = None
    n: int | None = Field(None, ge=1, le=1)

    def stops(self) -> list[str]:
        if self.stop is None:
            return []
        return [self.stop] if isinstance(self.stop, str) else [s for s in self.stop if s]


class Usage(BaseModel):
    prompt_tokens: int = 0
    completion_tokens: int = 0
    total_tokens: int = 0


class AssistantMessage(BaseModel):
    role: Literal["assistant"] = "assistant"
    content: str


class Choice(BaseModel):
    index: int = 0
    message: AssistantMessage
    finish_reason: Literal["stop", "length"] = "stop"
    logprobs: None = None


class ChatCompletion(BaseModel):
    id: str
    object: Literal["chat.completion"] = "chat.completion"
    created: int
    model: str
    choices: list[Choice]
    usage: Usage
    references: list[Citation] | None = Field(
        None, description="model onco-rag: the passages cited as [n] in the answer."
    )
    abstained: bool | None = Field(
        None, description="model onco-rag: true when the documents do not answer the question."
    )


class ModelCard(BaseModel):
    id: str
    object: Literal["model"] = "model"
    created: int
    owned_by: str = "onco-rag"
    description: str = ""


class ModelList(BaseModel):
    object: Literal["list"] = "list"
    data: list[ModelCard]


__all__ = [
    "AskRequest",
    "ChatCompletion",
    "ChatCompletionRequest",
    "ChatMessage",
    "ChatTurn",
    "Choice",
    "ErrorResponse",
    "FeedbackRequest",
    "FeedbackResponse",
    "HealthResponse",
    "ModelCard",
    "ModelList",
    "Usage",
]

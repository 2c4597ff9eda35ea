"""Generation on any OpenAI-compatible server (vLLM, TGI, llama.cpp server, Ollama).

Speaks only ``POST {base}/v1/chat/completions`` (and ``GET {base}/v1/models`` when no model name
is configured), so one client covers every server. Failures name ``generate.base_url``: a remote
answer must never silently turn into a local one.
"""

from __future__ import annotations

import hashlib
import json
import math
import time
from collections.abc import Iterator
from typing import Any

from rag.errors import GenerationError, ModelUnavailableError
from rag.generate.base import GenerationStats, Message, scan_stops
from rag.settings import GenerateSettings

MAX_STOPS = 4  # the OpenAI API accepts at most four stop strings; the rest are enforced here


def api_base(base_url: str) -> str:
    """``http://host:8000``, ``.../v1`` and ``.../v1/`` all become ``http://host:8000/v1``."""
    base = base_url.strip().rstrip("/")
    return base if base.endswith("/v1") else base + "/v1"


class RemoteGenerator:
    """Streams chat completions over HTTP (SSE); one connection pool per instance."""

    def __init__(self, settings: GenerateSettings) -> None:
        import httpx

        if not settings.base_url.strip():
            raise ModelUnavailableError(
                "generate.backend=remote needs generate.base_url (an OpenAI-compatible server, "
                "e.g. http://127.0.0.1:8000/v1); it is empty"
            )
        self.settings = settings
        self.base = api_base(settings.base_url)
        self._model = settings.remote_model
        self.name = f"remote:{settings.remote_model or self.base}"
        headers = {"Authorization": f"Bearer {settings.api_key}"} if settings.api_key else {}
        timeout = httpx.Timeout(settings.timeout_s, connect=min(settings.timeout_s, 10.0))
        self._httpx = httpx
        self._client = httpx.Client(timeout=timeout, headers=headers)
        self._stream_options = True  # dropped after a server rejects it

    @property
    def fingerprint(self) -> str:
        key = f"{self.base}|{self.settings.remote_model}"
        return hashlib.sha256(key.encode()).hexdigest()[:16]

    def count_tokens(self, text: str) -> int:
        """An estimate (about four characters per token): the server's tokenizer is not local."""
        return max(1, math.ceil(len(text) / 4)) if text else 0

    def close(self) -> None:
        self._client.close()

    # -- requests -------------------------------------------------------------------------------

    def stream(
        self,
        messages: list[Message],
        *,
        max_new_tokens: int,
        temperature: float = 0.0,
        stop: list[str] | None = None,
    ) -> Iterator[str | GenerationStats]:
        stops = [s for s in (stop or []) if s]
        payload: dict[str, Any] = {
            "model": self.model_name(),
            "messages": messages,
            "max_tokens": max_new_tokens,
            "temperature": temperature,
            "stream": True,
        }
        if stops:
            payload["stop"] = stops[:MAX_STOPS]
        started = time.perf_counter()
        first: float | None = None
        chunks = 0
        usage: dict[str, Any] = {}
        text, sent, stopped = "", 0, False
        with self._open_stream(payload) as response:
            for line in response.iter_lines():
                event = _sse_data(line)
                if event is None:
                    continue
                if event == "[DONE]":
                    break
                obj = self._parse(event)
                usage = obj.get("usage") or usage
                piece = _delta_content(obj)
                if not piece:
                    continue
                if first is None:
                    first = time.perf_counter()
                chunks += 1
                text += piece
                safe, stopped = scan_stops(text, sent, stops)
                if safe > sent:
                    yield text[sent:safe]
                    sent = safe
                if stopped:
                    break
        if not stopped:
            safe, _ = scan_stops(text, sent, stops, final=True)
            if safe > sent:
                yield text[sent:safe]
        end = time.perf_counter()
        ttft = (first or end) - started
        prompt_tokens = int(usage.get("prompt_tokens") or 0) or sum(  # estimated without usage
            self.count_tokens(m.get("content", "")) for m in messages
        )
        new_tokens = int(usage.get("completion_tokens") or chunks)
        details = usage.get("prompt_tokens_details") or {}
        decode_s = end - (first or end)
        yield GenerationStats(
            prompt_tokens=prompt_tokens,
            cached_prompt_tokens=int(details.get("cached_tokens") or 0),
            new_tokens=new_tokens,
            ttft_s=ttft,
            total_s=end - started,
            decode_tokens_per_s=(new_tokens - 1) / decode_s if new_tokens > 1 and decode_s else 0.0,
            prefill_tokens_per_s=prompt_tokens / ttft if prompt_tokens and ttft else 0.0,
        )

    def choice_logprobs(self, messages: list[Message], choices: list[str]) -> dict[str, float]:
        """First-token log-probs from the server's ``top_logprobs`` (one 1-token completion).

        A choice whose token is not among the top 20 gets the smallest returned log-prob, an
        upper bound on its true value.
        """
        if not choices or any(not c for c in choices):
            raise ValueError("choices must be non-empty strings")
        payload = {
            "model": self.model_name(),
            "messages": messages,
            "max_tokens": 1,
            "temperature": 0.0,
            "logprobs": True,
            "top_logprobs": 20,
            "stream": False,
        }
        response = self._post(payload)
        try:
            content = response.json()["choices"][0]["logprobs"]["content"]
            top = content[0]["top_logprobs"]
            pairs = [(str(t["token"]), float(t["logprob"])) for t in top]
        except (KeyError, IndexError, TypeError, ValueError) as exc:
            raise GenerationError(
                f"the server at generate.base_url={self.base} lacks logprobs support "
                "(no choices[0].logprobs.content[0].top_logprobs in its reply); "
                "use generate.backend=local for yes/no scoring and reranking"
            ) from exc
        if not pairs:
            raise GenerationError(f"the server at generate.base_url={self.base} sent no logprobs")
        return _match_choices(pairs, choices)

    def model_name(self) -> str:
        """generate.remote_model, or the first model the server lists."""
        if self._model:
            return self._model
        try:
            response = self._client.get(f"{self.base}/models")
        except self._httpx.HTTPError as exc:
            raise self._unreachable(exc) from exc
        self._check(response)
        try:
            self._model = str(response.json()["data"][0]["id"])
        except (KeyError, IndexError, TypeError, ValueError) as exc:
            raise GenerationError(
                f"generate.base_url={self.base} lists no models; set generate.remote_model"
            ) from exc
        return self._model

    # -- internals ------------------------------------------------------------------------------

    def _open_stream(self, payload: dict[str, Any]) -> Any:
        """An open streaming response; retries once without stream_options if it is refused."""
        from contextlib import contextmanager

        @contextmanager
        def opened() -> Iterator[Any]:
            body = dict(payload)
            if self._stream_options:
                body["stream_options"] = {"include_usage": True}
            url = f"{self.base}/chat/completions"
            try:
                with self._client.stream("POST", url, json=body) as response:
                    if response.status_code in (400, 422) and "stream_options" in body:
                        response.read()
                        self._stream_options = False
                        body.pop("stream_options")
                    else:
                        self._check(response)
                        yield response
                        return
                with self._client.stream("POST", url, json=body) as response:
                    self._check(response)
                    yield response
            except self._httpx.HTTPError as exc:
                raise self._unreachable(exc) from exc

        return opened()

    def _post(self, payload: dict[str, Any]) -> Any:
        try:
            response = self._client.post(f"{self.base}/chat/completions", json=payload)
        except self._httpx.HTTPError as exc:
            raise self._unreachable(exc) from exc
        self._check(response)
        return response

    def _check(self, response: Any) -> None:
        if response.status_code < 400:
            return
        body = response.read().decode("utf-8", "replace")[:300]
        hint = " (check generate.api_key)" if response.status_code in (401, 403) else ""
        raise GenerationError(
            f"generate.base_url={self.base} answered HTTP {response.status_code}{hint}: {body}"
        )

    def _unreachable(self, exc: Exception) -> GenerationError:
        kind = type(exc).__name__
        return GenerationError(f"cannot reach generate.base_url={self.base} ({kind}: {exc})")

    def _parse(self, event: str) -> dict[str, Any]:
        try:
            obj = json.loads(event)
        except ValueError as exc:
            raise GenerationError(
                f"generate.base_url={self.base} sent a malformed stream event: {event[:200]!r}"
            ) from exc
        if isinstance(obj, dict) and obj.get("error"):
            raise GenerationError(f"generate.base_url={self.base} reported: {obj['error']}")
        return obj if isinstance(obj, dict) else {}


def _sse_data(line: str) -> str | None:
    """The payload of an SSE ``data:`` line; None for comments, blank lines and other fields."""
    if not line.startswith("data:"):
        return None
    return line[5:].strip()


def _delta_content(obj: dict[str, Any]) -> str:
    choices = obj.get("choices") or []
    if not choices:
        return ""
    delta = choices[0].get("delta") or {}
    return delta.get("content") or ""


def _match_choices(pairs: list[tuple[str, float]], choices: list[str]) -> dict[str, float]:
    """Sum (in probability) the top tokens that spell each choice, ignoring case and spaces."""
    floor = min(lp for _, lp in pairs)
    out: dict[str, float] = {}
    for choice in choices:
        want = choice.strip().lower()
        exact = [lp for tok, lp in pairs if tok.strip().lower() == want]
        if not exact:  # a multi-token choice: its first token is a prefix of it
            exact = [
                lp for tok, lp in pairs if tok.strip() and want.startswith(tok.strip().lower())
            ]
        out[choice] = _logsumexp(exact) if exact else floor
    return out


def _logsumexp(values: list[float]) -> float:
    top = max(values)
    return top + math.log(sum(math.exp(v - top) for v in values))


__all__ = ["RemoteGenerator", "api_base"]

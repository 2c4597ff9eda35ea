"""Answers over HTTP with the real small generator: JSON, SSE, OpenAI clients, queueing."""

from __future__ import annotations

import threading
import time

import httpx
import pytest

pytestmark = [pytest.mark.integration, pytest.mark.slow, pytest.mark.timeout(900)]

GENERATOR = "qwen2.5-coder-0.5b"  # the fast preset's model, as /v1/models lists it


def _check_answer(answer: dict) -> None:
    assert not answer["abstained"], answer.get("abstain_reason")
    assert "7.1" in answer["answer"]
    assert answer["citations"], answer
    cited = {c["number"] for c in answer["citations"]}
    assert any(f"[{n}]" in answer["answer"] for n in cited)
    assert any("HARMONi-A" in c["passage"] for c in answer["citations"])
    assert answer["fingerprints"]["generator"].startswith(GENERATOR)


def test_ask_json(live, chat: httpx.Client) -> None:
    response = chat.post("/api/ask", json={"question": live.question, "k": 4})
    assert response.status_code == 200, response.text
    answer = response.json()
    _check_answer(answer)
    assert answer["evidence"] and answer["passages"]
    assert answer["timings"]["new_tokens"] <= 32
    # Loaded lazily by the first question, then reported by the health check.
    health = httpx.get(f"{live.url}/healthz").json()
    assert health["models"]["generator"] == GENERATOR
    # Each citation links to its quote where it stands; the signed link opens with no key
    # (a new tab sends none), and only for that span.
    link = answer["citations"][0]["view_url"]
    assert link.startswith("/api/documents/") and link.endswith("#quote") and "sig=" in link
    page = httpx.get(live.url + link.split("#")[0])
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    assert page.headers["content-security-policy"].startswith("default-src 'none'")
    assert "id='quote'" in page.text or "id=quote" in page.text
    tampered = link.split("#")[0].replace("start=", "start=1")
    assert httpx.get(live.url + tampered).status_code == 401


def test_ask_stream_sends_evidence_then_tokens_then_final(live, chat: httpx.Client, sse) -> None:
    events = []
    with chat.stream("POST", "/api/ask/stream", json={"question": live.question}) as response:
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("text/event-stream")
        for name, data in sse(response.iter_lines()):
            assert data["type"] == name  # data is StreamEvent.to_dict()
            events.append((name, data["data"], time.monotonic()))
    names = [e[0] for e in events]
    assert names[0] == "evidence" and names[-1] == "final"
    assert set(names[1:-1]) == {"token"}, names
    evidence = events[0][1]
    fields = {"text", "doc_id", "char_start", "char_end"}
    assert evidence and all(fields <= set(e) for e in evidence)
    final = events[-1][1]
    _check_answer(final)
    # The draft streamed as tokens is what the verifier checked.
    assert "".join(e[1] for e in events if e[0] == "token").strip() == final["raw_answer"]


def test_follow_up_is_rewritten_before_retrieval(live, chat: httpx.Client, sse) -> None:
    history = [
        {"role": "user", "content": live.question},
        {"role": "assistant", "content": "The median PFS was 7.1 months versus 4.8 months [1]."},
    ]
    body = {"question": "And what was its hazard ratio?", "history": history}
    events = []
    with chat.stream("POST", "/api/ask/stream", json=body) as response:
        assert response.status_code == 200
        events = list(sse(response.iter_lines()))
    names = [name for name, _ in events]
    final = events[-1][1]["data"]
    assert names[-1] == "final" and "error" not in names
    rewritten = final["standalone_question"]
    if rewritten is None:  # the model's rewrite was rejected: the question was searched as is
        assert names[0] == "evidence"
        return
    # A rewrite is announced first, keeps what was asked and names what "its" meant.
    assert names[:2] == ["status", "evidence"]
    assert events[0][1]["data"]["standalone_question"] == rewritten
    assert "hazard ratio" in rewritten.lower()
    assert "ivonescimab" in rewritten.lower() or "harmoni" in rewritten.lower()
    assert final["question"] == "And what was its hazard ratio?"


# -- OpenAI compatibility ---------------------------------------------------------------------


@pytest.fixture(scope="module")
def client(live):
    openai = pytest.importorskip("openai")
    return openai.OpenAI(base_url=f"{live.url}/v1", api_key=live.chat_key, max_retries=0)


def test_openai_models(client) -> None:
    ids = [m.id for m in client.models.list().data]
    assert ids == [GENERATOR, "onco-rag"]


def test_openai_chat_completion(live, client) -> None:
    completion = client.chat.completions.create(
        model="onco-rag",
        messages=[
            {"role": "system", "content": "ignored: the assistant has its own prompt"},
            {"role": "user", "content": live.question},
        ],
    )
    assert completion.id.startswith("chatcmpl-")
    assert completion.object == "chat.completion" and completion.model == "onco-rag"
    assert abs(completion.created - time.time()) < 600
    choice = completion.choices[0]
    assert choice.finish_reason == "stop" and choice.message.role == "assistant"
    assert "7.1" in choice.message.content
    usage = completion.usage
    assert usage.prompt_tokens > 0 and 0 < usage.completion_tokens <= 32
    assert usage.total_tokens == usage.prompt_tokens + usage.completion_tokens
    references = completion.model_extra["references"]
    fields = {"number", "title", "passage", "quotes"}
    assert references and all(fields <= set(r) for r in references)
    assert any(f"[{r['number']}]" in choice.message.content for r in references)
    assert completion.model_extra["abstained"] is False


def test_openai_streaming_ends_with_references(live, client) -> None:
    stream = client.chat.completions.create(
        model="onco-rag",
        messages=[{"role": "user", "content": live.question}],
        stream=True,
        stream_options={"include_usage": True},
    )
    chunks = list(stream)
    content = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert "7.1" in content
    assert chunks[0].choices[0].delta.role == "assistant"
    last = chunks[-1]  # the chunk just before data: [DONE]
    assert last.choices[0].finish_reason == "stop"
    references = last.model_extra["references"]
    assert references and any(f"[{r['number']}]" in content for r in references)
    assert last.usage is not None and last.usage.completion_tokens > 0
    assert all("references" not in (c.model_extra or {}) for c in chunks[:-1])
    assert len({c.id for c in chunks}) == 1


def test_raw_generator_passthrough(client) -> None:
    messages = [{"role": "user", "content": "Reply with the single word: hello"}]
    completion = client.chat.completions.create(model=GENERATOR, messages=messages, max_tokens=6)
    assert completion.model == GENERATOR
    assert completion.choices[0].message.content.strip()
    assert completion.choices[0].finish_reason in ("stop", "length")
    assert 0 < completion.usage.completion_tokens <= 6
    assert "references" not in (completion.model_extra or {})

    stream = client.chat.completions.create(
        model=GENERATOR,
        messages=messages,
        max_tokens=6,
        stream=True,
        stream_options={"include_usage": True},
    )
    chunks = list(stream)
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text.strip()
    assert chunks[-1].usage is not None and chunks[-1].usage.completion_tokens <= 6


def test_unknown_model_is_a_404(client) -> None:
    import openai

    with pytest.raises(openai.NotFoundError) as info:
        client.chat.completions.create(model="gpt-4o", messages=[{"role": "user", "content": "x"}])
    assert info.value.body["type"] == "ModelNotFound"
    assert "onco-rag" in info.value.body["message"]


def test_openai_client_with_a_wrong_key(live) -> None:
    import openai

    bad = openai.OpenAI(base_url=f"{live.url}/v1", api_key="nope", max_retries=0)
    with pytest.raises(openai.AuthenticationError):
        bad.models.list()


# -- concurrency --------------------------------------------------------------------------------


def test_busy_generations_queue_then_503_while_search_and_health_answer(
    live, chat: httpx.Client, anonymous: httpx.Client
) -> None:
    """One slot (server.max_concurrent_generations=1): a long generation holds it; another
    ask waits server.queue_timeout_s, then gets 503 + Retry-After; search and health do not
    wait at all; a client that leaves gives its slot back."""
    generating = threading.Event()
    leave = threading.Event()
    body = {
        "model": GENERATOR,
        "messages": [{"role": "user", "content": "Count from 1 to 300, one number per line."}],
        "max_tokens": 600,
        "stream": True,
    }

    def hold() -> None:
        with (
            live.client(live.chat_key) as client,
            client.stream("POST", "/v1/chat/completions", json=body) as response,
        ):
            for line in response.iter_lines():
                if '"content": "' in line and '"content": ""' not in line:
                    generating.set()
                if leave.is_set():
                    return  # closes the connection mid-generation

    holder = threading.Thread(target=hold, daemon=True)
    holder.start()
    try:
        assert generating.wait(300), "the long generation never started"

        started = time.monotonic()
        busy = chat.post("/api/ask", json={"question": live.question})
        waited = time.monotonic() - started
        assert busy.status_code == 503, busy.text
        assert busy.json()["error"]["type"] == "ServerBusyError"
        assert int(busy.headers["retry-after"]) >= 1
        assert 1.4 <= waited < 15  # queued for queue_timeout_s (1.5 s), not refused at once

        stream = chat.post("/api/ask/stream", json={"question": live.question})
        assert stream.status_code == 503 and "retry-after" in stream.headers

        started = time.monotonic()
        health = anonymous.get("/healthz")
        assert health.status_code == 200 and health.json()["generations_running"] == 1
        found = chat.get("/api/search", params={"q": "ivonescimab median PFS", "k": 3})
        assert found.status_code == 200 and found.json()["hits"]
        assert time.monotonic() - started < 10
    finally:
        leave.set()
        holder.join(60)

    deadline = time.monotonic() + 60
    while anonymous.get("/healthz").json()["generations_running"] and time.monotonic() < deadline:
        time.sleep(0.5)
    assert anonymous.get("/healthz").json()["generations_running"] == 0
    # The slot is usable again.
    again = chat.post(
        "/v1/chat/completions",
        json={"model": GENERATOR, "messages": [{"role": "user", "content": "Hi"}], "max_tokens": 2},
    )
    assert again.status_code == 200

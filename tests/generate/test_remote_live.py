"""RemoteGenerator against a real OpenAI-compatible server: this project's own `rag serve`.

The server's raw-generator model (``/v1/chat/completions`` with model = the local generator's
name) is a plain LLM endpoint, so one instance can be another's remote generator.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from rag.errors import GenerationError
from rag.generate import GenerationStats, generate_text, load_generator
from rag.settings import GenerateSettings

pytestmark = [pytest.mark.integration, pytest.mark.slow, pytest.mark.timeout(900)]

MODEL = "qwen2.5-coder-0.5b"
KEY = "remote-live-key-0b9d2f"
MESSAGES = [
    {"role": "system", "content": "You are a precise oncology assistant."},
    {
        "role": "user",
        "content": "Passage [1]: The median PFS was 7.1 months with ivonescimab. "
        "Question: what was the median PFS? Answer with the number.",
    },
]


@pytest.fixture(scope="module")
def server_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    from rag.api.launch import ServerProcess

    root = tmp_path_factory.mktemp("remote-live")
    with ServerProcess(
        root / "index", workdir=root, overrides=[f"server.api_key={KEY}"], extra_args=["--no-ui"]
    ) as server:
        yield server.url


def _remote(url: str, **kwargs: object) -> GenerateSettings:
    values = {"backend": "remote", "base_url": url, "api_key": KEY, "timeout_s": 600.0} | kwargs
    return GenerateSettings.model_validate(values)


def test_streams_a_real_answer(server_url: str) -> None:
    gen = load_generator(_remote(server_url, remote_model=MODEL))
    items = list(gen.stream(MESSAGES, max_new_tokens=16, temperature=0.0))
    pieces = [i for i in items if isinstance(i, str)]
    stats = items[-1]
    assert isinstance(stats, GenerationStats)
    assert sum(isinstance(i, GenerationStats) for i in items) == 1
    assert len(pieces) > 1, "the answer should arrive in several pieces"
    assert "7.1" in "".join(pieces)
    # Usage came from the server (stream_options.include_usage), not the local estimate.
    assert stats.prompt_tokens > 20 and 0 < stats.new_tokens <= 16
    assert stats.ttft_s > 0 and stats.total_s >= stats.ttft_s


def test_stop_strings_and_model_lookup(server_url: str) -> None:
    # No remote_model: the first id /v1/models lists is the raw generator, not onco-rag.
    gen = load_generator(_remote(server_url + "/v1/"))
    assert gen.model_name() == MODEL
    text, stats = generate_text(
        gen,
        [{"role": "user", "content": "Count from 1 to 10 separated by commas."}],
        max_new_tokens=40,
        stop=["5"],
    )
    assert "5" not in text and "4" in text
    assert stats.new_tokens <= 40


def test_choice_logprobs_works_or_says_the_server_lacks_them(server_url: str) -> None:
    gen = load_generator(_remote(server_url, remote_model=MODEL))
    messages = [
        {"role": "system", "content": "Answer with yes or no."},
        {"role": "user", "content": "Is 7.1 greater than 4.8?"},
    ]
    try:
        scores = gen.choice_logprobs(messages, ["yes", "no"])
    except GenerationError as exc:
        assert "lacks logprobs support" in str(exc) and "generate.backend=local" in str(exc)
    else:
        assert set(scores) == {"yes", "no"} and all(v <= 0 for v in scores.values())


def test_wrong_key_names_the_setting(server_url: str) -> None:
    gen = load_generator(_remote(server_url, remote_model=MODEL, api_key="wrong"))
    with pytest.raises(GenerationError, match=r"HTTP 401.*generate\.api_key"):
        list(gen.stream(MESSAGES, max_new_tokens=4))


def test_a_server_can_use_another_as_its_generator(server_url: str, tmp_path: Path) -> None:
    """A second assistant whose generator is the first server answers with citations."""
    from rag.assistant import Assistant
    from rag.settings import load_settings

    settings = load_settings(
        index_dir=tmp_path / "index",
        overrides=[
            "generate.backend=remote",
            f"generate.base_url={server_url}",
            f"generate.remote_model={MODEL}",
            f"generate.api_key={KEY}",
            "generate.max_new_tokens=32",
        ],
    )
    assistant = Assistant(settings)
    response = assistant.ask("What was the median PFS with ivonescimab in HARMONi-A?")
    assert response.fingerprints["generator"].startswith(f"remote:{MODEL}")
    assert not response.abstained, response.abstain_reason
    assert "7.1" in response.answer and response.citations

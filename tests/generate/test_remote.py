"""RemoteGenerator failure modes that need no server: they must name the setting to fix."""

from __future__ import annotations

import pytest

from rag.errors import GenerationError, ModelUnavailableError
from rag.generate import load_generator
from rag.generate.remote import RemoteGenerator, api_base
from rag.settings import GenerateSettings

REFUSED = "http://127.0.0.1:9"  # the discard port: nothing listens on loopback


def _remote(**kwargs: object) -> GenerateSettings:
    values = {"backend": "remote", "remote_model": "m", "timeout_s": 5.0} | kwargs
    return GenerateSettings.model_validate(values)


def test_empty_base_url_is_a_missing_model() -> None:
    with pytest.raises(ModelUnavailableError, match=r"generate\.base_url"):
        load_generator(_remote(base_url=""))


def test_connection_refused_names_base_url() -> None:
    gen = load_generator(_remote(base_url=REFUSED))
    assert isinstance(gen, RemoteGenerator)
    messages = [{"role": "user", "content": "hi"}]
    with pytest.raises(GenerationError, match=r"generate\.base_url=http://127\.0\.0\.1:9/v1"):
        list(gen.stream(messages, max_new_tokens=4))
    with pytest.raises(GenerationError, match=r"generate\.base_url"):
        gen.choice_logprobs(messages, ["yes", "no"])


def test_unset_remote_model_is_looked_up_and_failure_names_base_url() -> None:
    gen = load_generator(_remote(base_url=REFUSED + "/v1/", remote_model=""))
    with pytest.raises(GenerationError, match=r"generate\.base_url"):
        gen.model_name()


def test_base_url_with_or_without_v1() -> None:
    assert api_base("http://h:8000") == "http://h:8000/v1"
    assert api_base("http://h:8000/") == "http://h:8000/v1"
    assert api_base("http://h:8000/v1") == "http://h:8000/v1"
    assert api_base(" http://h:8000/v1/ ") == "http://h:8000/v1"


def test_fingerprint_depends_on_url_and_model() -> None:
    a = RemoteGenerator(_remote(base_url="http://h:1"))
    b = RemoteGenerator(_remote(base_url="http://h:1/v1"))
    c = RemoteGenerator(_remote(base_url="http://h:1", remote_model="other"))
    assert a.fingerprint == b.fingerprint != c.fingerprint


@pytest.mark.parametrize(
    ("text", "sent", "stops", "expected"),
    [
        ("hello world", 0, [], (11, False)),
        ("hello world", 0, ["wor"], (6, True)),
        ("hello wo", 0, ["wor"], (6, False)),  # "wo" may still become "wor": held back
        ("hello wo", 0, ["xyz"], (8, False)),
        ("answer.\n\nQuestion", 0, ["\n\nQ", "."], (6, True)),
        ("ab</s", 0, ["</stop>"], (2, False)),
    ],
)
def test_stop_strings_are_cut_and_partial_ones_held_back(
    text: str, sent: int, stops: list[str], expected: tuple[int, bool]
) -> None:
    from rag.generate import scan_stops

    assert scan_stops(text, sent, stops) == expected


def test_a_held_back_tail_is_released_at_the_end() -> None:
    from rag.generate import scan_stops

    assert scan_stops("hello wo", 6, ["wor"], final=True) == (8, False)

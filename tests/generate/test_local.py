"""The local generator on the real packaged 0.5B model, converted once into a temp cache."""

from __future__ import annotations

import json
import math
import threading
import time
from pathlib import Path

import pytest

from rag.errors import ModelUnavailableError
from rag.generate import GenerationStats, generate_text, load_generator
from rag.generate.decode_weights import DECODE_ROWS, add_decode_weights, q4k_tensors, unpack_q4k
from rag.generate.packaged import PACKAGED, STAMP, prepare_model
from rag.models import compute_dtype
from rag.settings import GenerateSettings

NAME = "qwen2.5-coder-0.5b"
DTYPE = compute_dtype("auto")
PFS = [
    {"role": "system", "content": "You are a precise oncology assistant."},
    {
        "role": "user",
        "content": "Passage [1]: The median PFS was 7.1 months with ivonescimab. "
        "Question: what was the median PFS? Answer with the number.",
    },
]
INSTRUCTIONS = (
    "You are an oncology literature assistant. Answer the question using only the numbered "
    "passages. Cite every claim with its passage number in square brackets, like [1]. If the "
    "passages do not contain the answer, say that the evidence is insufficient. Keep the answer "
    "to one or two sentences and do not speculate beyond the passages."
)
PASSAGES = (
    "[1] In HARMONi-2, ivonescimab improved median progression-free survival to 11.14 months "
    "versus 5.82 months with pembrolizumab in PD-L1-positive advanced NSCLC.\n"
    "[2] Grade 3 or higher treatment-related adverse events occurred in 29% of patients "
    "receiving ivonescimab and 16% receiving pembrolizumab."
)


def _ask(question: str) -> list[dict[str, str]]:
    return [
        {"role": "system", "content": INSTRUCTIONS},
        {"role": "user", "content": f"Passages:\n{PASSAGES}\n\nQuestion: {question}"},
    ]


def _yes_no(passage: str) -> list[dict[str, str]]:
    return [
        {"role": "system", "content": "Answer questions about the passage with yes or no."},
        {
            "role": "user",
            "content": f"Passage: {passage} Question: Did the trial meet its primary endpoint?",
        },
    ]


@pytest.fixture(scope="session")
def converted(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The real 0.5B GGUF assembled and converted into an empty cache (about a minute)."""
    cache = tmp_path_factory.mktemp("gen-cache")
    prepare_model(NAME, cache)
    return cache


@pytest.fixture(scope="session")
def gen(converted: Path):
    # The dtype a user gets on this CPU: bfloat16 with AMX/AVX512-BF16, float32 without.
    return load_generator(GenerateSettings(model=NAME, cache_dir=converted, dtype=DTYPE))


@pytest.mark.slow
def test_conversion_writes_safetensors_and_a_stamp_once(converted: Path) -> None:
    folder = PACKAGED[NAME].converted_dir(converted)
    weights = folder / "model.safetensors"
    assert weights.stat().st_size > 500_000_000
    assert (folder / "tokenizer.json").is_file()
    config = json.loads((folder / "config.json").read_text())
    assert "quantization_config" not in config
    assert config["dtype"] == "bfloat16"
    stamp = json.loads((folder / STAMP).read_text())
    assert stamp["source_sha256"] == PACKAGED[NAME].sha256
    assert stamp["transformers"]
    assert not list(folder.parent.glob(".convert-*"))  # the temp dir was renamed, not copied
    before = weights.stat().st_mtime_ns
    started = time.perf_counter()
    assert prepare_model(NAME, converted) == folder
    assert time.perf_counter() - started < 5  # a stamp check, not a second conversion
    assert weights.stat().st_mtime_ns == before


@pytest.mark.slow
def test_prepare_builds_the_files_a_start_keeps(converted: Path, capsys) -> None:
    from rag.generate.__main__ import main

    folder = PACKAGED[NAME].converted_dir(converted)
    for kept in folder.glob("decode-*.safetensors"):
        kept.unlink()
    assert main(["prepare", NAME, "--cache-dir", str(converted), "--convert-only"]) == 0
    assert not list(folder.glob("decode-*.safetensors"))
    assert main(["prepare", NAME, "--cache-dir", str(converted)]) == 0
    kept = sorted(p.name for p in folder.glob("decode-*.safetensors"))
    # The default dtype follows the CPU: bfloat16 keeps input-major prompt weights beside the
    # decode copies; float32 (no native bfloat16) prompts with the model's own weights.
    if compute_dtype("auto") == "bfloat16":
        expected = ["decode-gguf-prompt.safetensors", "decode-gguf.safetensors"]
    else:
        expected = ["decode-gguf-f32.safetensors"]
    assert kept == expected
    assert f"keeping {', '.join(expected)}" in capsys.readouterr().out


@pytest.mark.slow
def test_loads_from_the_converted_cache_quickly(gen) -> None:
    assert gen.model_dir == PACKAGED[NAME].converted_dir(gen.settings.cache_dir)
    assert gen.load_s < 60
    assert gen.fingerprint == PACKAGED[NAME].sha256[:16]
    assert gen.count_tokens("median progression-free survival") > 2


@pytest.mark.slow
def test_greedy_answer_reads_the_number_from_the_passage(gen) -> None:
    text, stats = generate_text(gen, PFS, max_new_tokens=16)
    assert "7.1" in text
    assert 1 <= stats.new_tokens <= 16


@pytest.mark.slow
def test_stream_yields_pieces_then_one_stats(gen) -> None:
    messages = _ask("What was the median PFS with ivonescimab?")
    items = list(gen.stream(messages, max_new_tokens=24))
    *pieces, stats = items
    assert len(pieces) >= 3 and all(isinstance(p, str) and p for p in pieces)
    assert isinstance(stats, GenerationStats)
    assert not any(isinstance(p, GenerationStats) for p in pieces)
    assert "".join(pieces).strip()
    assert stats.prompt_tokens == len(gen.encode_messages(messages))
    assert 1 <= stats.new_tokens <= 24
    assert 0 < stats.ttft_s <= stats.total_s
    assert stats.prefill_tokens_per_s > 0 and stats.decode_tokens_per_s > 0


@pytest.mark.slow
def test_max_new_tokens_and_stop_strings(gen) -> None:
    _, stats = generate_text(gen, PFS, max_new_tokens=2)
    assert stats.new_tokens <= 2
    text, _ = generate_text(gen, PFS, max_new_tokens=16, stop=["."])
    assert text == "7"  # "7.1" cut at the stop string, which is not emitted


@pytest.mark.slow
def test_prefix_cache_reuses_the_shared_prompt_and_keeps_greedy_output(gen) -> None:
    question = _ask("What fraction of ivonescimab patients had grade 3 or higher events?")
    other = _ask("What was the median PFS with pembrolizumab?")
    original = gen.settings
    try:
        gen.settings = original.model_copy(update={"prefix_cache": False})
        gen.clear_prefix_cache()
        plain, plain_stats = generate_text(gen, question, max_new_tokens=32)
        assert plain_stats.cached_prompt_tokens == 0
        gen.settings = original.model_copy(update={"prefix_cache": True})
        generate_text(gen, other, max_new_tokens=8)  # warms system prompt + passages
        cached, stats = generate_text(gen, question, max_new_tokens=32)
        # The system message (the fixed instructions) came from the cache...
        assert stats.cached_prompt_tokens == len(gen._render_ids(question[:1]))
        assert stats.cached_prompt_tokens < stats.prompt_tokens
        assert cached == plain  # ...and changed nothing: prefill splits there either way
        again, again_stats = generate_text(gen, question, max_new_tokens=32)
        assert again_stats.cached_prompt_tokens == again_stats.prompt_tokens  # exact repeat
        assert again == plain
    finally:
        gen.settings = original


@pytest.mark.slow
def test_choice_logprobs_prefers_the_supported_answer(gen) -> None:
    met = gen.choice_logprobs(
        _yes_no("The trial met its primary endpoint of overall survival."), ["yes", "no"]
    )
    missed = gen.choice_logprobs(
        _yes_no("The trial did not meet its primary endpoint; survival was not improved."),
        ["yes", "no"],
    )
    for scores in (met, missed):
        assert set(scores) == {"yes", "no"}
        assert all(v <= 0 for v in scores.values())
        assert math.log(sum(math.exp(v) for v in scores.values())) > math.log(0.5)
    assert met["yes"] > met["no"]
    assert missed["no"] > missed["yes"]


@pytest.mark.slow
def test_choice_logprobs_scores_choices_sharing_a_first_token(gen) -> None:
    messages = _yes_no("The trial met its primary endpoint of overall survival.")
    scores = gen.choice_logprobs(messages, ["yes", "yes, partially", "no"])
    assert set(scores) == {"yes", "yes, partially", "no"}
    assert scores["yes"] > scores["yes, partially"]
    assert scores["yes"] > scores["no"]


@pytest.mark.slow
def test_concurrent_callers_are_serialised(gen) -> None:
    results: list[str] = []

    def worker() -> None:
        results.append(generate_text(gen, PFS, max_new_tokens=8)[0])

    threads = [threading.Thread(target=worker) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=300)
    assert len(results) == 2 and all("7.1" in r for r in results)


@pytest.mark.slow
def test_int8_dynamic_quantization_still_answers(converted: Path) -> None:
    gen8 = load_generator(GenerateSettings(model=NAME, cache_dir=converted, dtype="int8"))
    text, _ = generate_text(gen8, PFS, max_new_tokens=16)
    assert "7.1" in text


def test_decode_copies_serve_single_rows_and_leave_prompts_in_bfloat16() -> None:
    import torch

    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Linear(64, 96), torch.nn.Linear(96, 32, bias=False))
    model = model.to(torch.bfloat16)
    reference = [torch.nn.Linear(64, 96), torch.nn.Linear(96, 32, bias=False)]
    for ref, layer in zip(reference, model, strict=True):
        ref.load_state_dict(layer.state_dict())
    reference_model = torch.nn.Sequential(*reference).to(torch.bfloat16)
    assert add_decode_weights(model) == {"int4": 0, "int8": 2}
    for layer, ref in zip(model, reference_model, strict=True):  # held input-major for prompts
        assert layer.weight.t().is_contiguous() and torch.equal(layer.weight, ref.weight)
    with torch.inference_mode():
        prompt = torch.randn(DECODE_ROWS + 1, 64, dtype=torch.bfloat16)
        assert torch.equal(model(prompt), reference_model(prompt))  # bfloat16 weights
        step = torch.randn(1, 1, 64, dtype=torch.bfloat16)
        got, want = model(step).float(), reference_model(step).float()
    assert got.shape == want.shape == (1, 1, 32)
    assert not torch.equal(got, want)  # the int8 copy answered
    assert (got - want).norm() / want.norm() < 0.03


def test_float32_layers_get_decode_copies_and_keep_their_weights() -> None:
    """On CPUs without native bfloat16 the model stays float32: prompts use its own weights
    and single rows go through the low-bit kernels in bfloat16, within int8 rounding."""
    import torch

    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Linear(64, 96), torch.nn.Linear(96, 64))
    before = [layer.weight.detach().clone() for layer in model]
    prompt = torch.randn(DECODE_ROWS + 1, 64)
    expected = model(prompt)
    counts = add_decode_weights(model, prompt_layout=False)
    assert counts == {"int4": 0, "int8": 2}
    for layer, weight in zip(model, before, strict=True):
        assert torch.equal(layer.weight, weight)  # quantizing must not scale the weight itself
    with torch.inference_mode():
        assert torch.equal(model(prompt), expected)
        step = torch.randn(1, 1, 64)
        got = model(step)
    assert got.dtype == torch.float32
    reference = torch.nn.functional.linear(
        torch.nn.functional.linear(step, before[0], model[0].bias), before[1], model[1].bias
    )
    assert torch.allclose(got, reference, rtol=0.05, atol=0.05)


def _tiny_bfloat16_model():
    import torch

    class WithHead(torch.nn.Sequential):
        def get_output_embeddings(self) -> torch.nn.Module:
            return self[1]

    torch.manual_seed(0)
    layers = WithHead(torch.nn.Linear(64, 96), torch.nn.Linear(96, 32, bias=False))
    return layers.to(torch.bfloat16)


def test_the_output_head_keeps_its_layout() -> None:
    """It only ever sees the last position, so a transposed copy would be memory for nothing."""
    model = _tiny_bfloat16_model()
    head = model[1].weight
    add_decode_weights(model)
    assert model[1].weight is head and model[1].weight.is_contiguous()
    assert model[0].weight.t().is_contiguous()


def test_decode_copies_are_kept_and_read_back(tmp_path: Path, monkeypatch, caplog) -> None:
    import torch

    import rag.generate.decode_weights as dw

    kept = tmp_path / "decode-int8.safetensors"
    first = _tiny_bfloat16_model()
    assert add_decode_weights(first, cache_file=kept) == {"int4": 0, "int8": 2}
    assert kept.is_file() and (tmp_path / "decode-int8-prompt.safetensors").is_file()
    built = kept.stat().st_mtime_ns

    def no_rebuild(weight):
        raise AssertionError("rebuilt although the copies were kept")

    with monkeypatch.context() as m:
        m.setattr(dw, "_int8_copy", no_rebuild)
        m.setattr(dw, "_input_major", no_rebuild)
        second = _tiny_bfloat16_model()
        assert add_decode_weights(second, cache_file=kept) == {"int4": 0, "int8": 2}
    assert kept.stat().st_mtime_ns == built  # read, not rewritten
    step = torch.randn(1, 1, 64, dtype=torch.bfloat16)
    with torch.inference_mode():
        assert torch.equal(first(step), second(step))
        assert torch.equal(first[0].qweight, second[0].qweight)
        prompt = torch.randn(DECODE_ROWS + 1, 64, dtype=torch.bfloat16)
        assert torch.equal(first(prompt), second(prompt))
    assert second[0].weight.t().is_contiguous()

    # Copies built under another torch (its int4 packing may differ) are rebuilt, not trusted.
    # Counted by the builds, not the file's mtime: a fast rebuild can land in the same clock tick.
    builds: list[int] = []
    real_int8_copy = dw._int8_copy

    def counted_int8_copy(weight):
        builds.append(1)
        return real_int8_copy(weight)

    monkeypatch.setattr(dw, "_int8_copy", counted_int8_copy)
    monkeypatch.setattr(torch, "__version__", "0.0.0-other")
    third = _tiny_bfloat16_model()
    assert add_decode_weights(third, cache_file=kept) == {"int4": 0, "int8": 2}
    assert len(builds) == 2
    # A torn file is reported and rebuilt.
    kept.write_bytes(kept.read_bytes()[:100])
    with caplog.at_level("WARNING"):
        add_decode_weights(_tiny_bfloat16_model(), cache_file=kept)
    assert "cannot read decode weights" in caplog.text
    caplog.clear()
    (tmp_path / "decode-int8-prompt.safetensors").unlink()  # half a cache is no cache
    with caplog.at_level("WARNING"):
        add_decode_weights(_tiny_bfloat16_model(), cache_file=kept)
    assert "cannot read decode weights" in caplog.text
    with torch.inference_mode():
        assert torch.equal(third(step), first(step))


@pytest.mark.slow
def test_q4k_blocks_unpack_to_what_gguf_dequantizes(converted: Path, tmp_path: Path) -> None:
    import numpy as np
    from gguf import GGMLQuantizationType
    from gguf.quants import dequantize

    gguf_path = PACKAGED[NAME].artifact.path(converted)
    index = tmp_path / "q4k.json"
    tensors = q4k_tensors(gguf_path, index)
    assert tensors and index.is_file()
    assert q4k_tensors(gguf_path, index) == tensors  # the kept table reads back the same
    name, t = sorted(tensors.items())[0]
    raw = t.blocks(gguf_path)
    q, scale, minimum = unpack_q4k(raw, t.rows, t.cols)
    assert q.min() >= 0 and q.max() <= 15
    ours = (q.reshape(t.rows, -1, 32) * scale[..., None] - minimum[..., None]).reshape(q.shape)
    theirs = dequantize(raw, GGMLQuantizationType.Q4_K).reshape(t.rows, t.cols)
    assert np.array_equal(ours, theirs), name


def _top_tokens(generator, messages: list[dict[str, str]], forced: list[int] | None, n: int):
    """The top token at each of ``n`` decode steps, feeding ``forced`` tokens if given."""
    import torch

    with generator._lock:
        cache, _, _, logits = generator._prefill(generator.encode_messages(messages))
        picks = [int(torch.argmax(logits))]
        for step in range(n - 1):
            fed = forced[step] if forced is not None else picks[-1]
            picks.append(int(torch.argmax(generator._forward([fed], cache))))
    return picks


@pytest.mark.slow
def test_compact_decode_weights_follow_the_plain_model(gen, converted: Path) -> None:
    # The 0.5B GGUF is mostly Q5_0/Q8_0: int8 copies, plus int4 for its few Q4_K layers.
    assert gen.decode_layers["int8"] > 0 and gen.decode_layers["int4"] > 0
    plain = load_generator(
        GenerateSettings(model=NAME, cache_dir=converted, dtype=DTYPE, decode_weights="bfloat16")
    )
    assert plain.decode_layers == {"int4": 0, "int8": 0}
    assert (
        generate_text(gen, PFS, max_new_tokens=16)[0]
        == (generate_text(plain, PFS, max_new_tokens=16)[0])
    )
    agree = total = 0
    for question in ("What was the median PFS with ivonescimab?", "How often were grade 3 events?"):
        messages = _ask(question)
        reference = _top_tokens(plain, messages, None, 40)
        compact = _top_tokens(gen, messages, reference, 40)  # teacher-forced on the reference
        agree += sum(a == b for a, b in zip(compact, reference, strict=True))
        total += len(reference)
    # A near-tie may flip a token; a wrong block layout would flip most of them.
    assert agree / total >= 0.95


def test_missing_model_names_the_setting(tmp_path: Path) -> None:
    with pytest.raises(ModelUnavailableError, match=r"generate\.model"):
        load_generator(GenerateSettings(model="no-such-model", cache_dir=tmp_path))
    with pytest.raises(ModelUnavailableError, match=r"generate\.model"):
        load_generator(GenerateSettings(model=str(tmp_path / "missing-dir"), cache_dir=tmp_path))

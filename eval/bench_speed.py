"""Answer speed on this CPU, end to end, with llama.cpp on the same GGUF as the peer.

llama-cpp-python is built from its sdist without AMX kernels (see pyproject's ``bench`` extra):
the native (-march=native) build segfaults here on any prompt of 7 tokens or more.

For each preset (fast = 0.5B, quality = 1.5B): evidence on screen, time to first token, total,
prefill and decode tokens/s, over seed questions through the real assistant (warm model, seed
index). The same prompts then run under llama-cpp-python (built from its sdist) on the same
GGUF file, and this CPU's measured bf16/fp32 matmul throughput gives the compute bound that
prefill is compared with. Everything in one run, so ratios are like for like.

    python -m rag.eval.bench_speed --out eval/results/speed.json [--questions 8] [--no-llama]
"""

from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path
from typing import Any

from rag.eval.bench_retrieval import identity_digest
from rag.eval.gold import load_gold
from rag.eval.metrics import percentiles

from rag.models import cache_root
from rag.paths import gold_dir


def matmul_bound(hidden: int, inter: int, tokens: int = 800, trials: int = 5) -> dict[str, float]:
    """GFLOP/s of one [tokens, hidden] x [hidden, inter] matmul, the shape prefill is made of.

    The best of ``trials`` timings: a bound is what the CPU can do, and a shared machine's
    background load only ever lowers a single timing (it varied 1.4-2.4 TFLOP/s run to run).
    """
    import torch

    out: dict[str, float] = {}
    for dtype in (torch.bfloat16, torch.float32):
        a = torch.randn(tokens, hidden, dtype=dtype)
        b = torch.randn(hidden, inter, dtype=dtype)
        for _ in range(3):
            a @ b
        reps = 10
        best = float("inf")
        for _ in range(trials):
            start = time.perf_counter()
            for _ in range(reps):
                a @ b
            best = min(best, (time.perf_counter() - start) / reps)
        out[str(dtype).removeprefix("torch.")] = 2 * tokens * hidden * inter / best / 1e9
    return out


def model_shape(model_dir: Path) -> tuple[int, int, int]:
    config = json.loads((model_dir / "config.json").read_text())
    hidden, inter, layers = (
        config["hidden_size"],
        config["intermediate_size"],
        config["num_hidden_layers"],
    )
    heads, kv = config["num_attention_heads"], config.get("num_key_value_heads", 1)
    head_dim = hidden // heads
    per_layer = hidden * hidden * 2 + hidden * head_dim * kv * 2 + 3 * hidden * inter
    return hidden, inter, per_layer * layers


def bench_preset(preset: str, questions: list[str]) -> dict[str, Any]:
    from rag.assistant import Assistant
    from rag.generate.packaged import prepare_model
    from rag.settings import load_settings

    settings = load_settings(preset=preset)
    # The seed index, cached per chunker/embedder identity (a stale one would be refused).
    default_index = cache_root() / "bench-seed-index" / identity_digest(settings)
    settings.index.dir = Path(os.environ.get("RAG_BENCH_INDEX", str(default_index)))
    assistant = Assistant(settings)
    assistant.ensure_index()
    t = time.perf_counter()
    generator = assistant.generator
    load_s = time.perf_counter() - t
    assistant.ask("What is ivonescimab?")  # warm-up: first-call kernel setup, prefix cache
    rows = []
    prompts: list[list[dict[str, str]]] = []
    for q in questions:
        response = assistant.ask(q)
        retrieval = assistant.retriever.run(q, k=settings.answer.max_passages)
        prompts.append(assistant.answerer.prompt(q, retrieval)[1])
        rows.append(response.timings | {"abstained": response.abstained})
    model_dir = prepare_model(settings.generate.model)
    hidden, inter, matmul_params = model_shape(model_dir)
    generated = [r for r in rows if "prompt_tokens" in r]
    return {
        "preset": preset,
        "model": generator.name,
        "dtype": settings.generate.dtype,
        "decode_weights": settings.generate.decode_weights,
        "decode_layers": getattr(generator, "decode_layers", {}),
        "load_s": load_s,
        "evidence_ms": percentiles([r["evidence_ms"] for r in rows]),
        "ttft_ms": percentiles([r["ttft_ms"] for r in generated]),
        "total_ms": percentiles([r["total_ms"] for r in rows]),
        "prompt_tokens": percentiles([r["prompt_tokens"] for r in generated]),
        "cached_prompt_tokens": percentiles([r["cached_prompt_tokens"] for r in generated]),
        "prefill_tokens_per_s": percentiles([r["prefill_tokens_per_s"] for r in generated]),
        "decode_tokens_per_s": percentiles([r["decode_tokens_per_s"] for r in generated]),
        "abstained": sum(r["abstained"] for r in rows),
        "hidden": hidden,
        "matmul_params": matmul_params,
        "bound_gflops": matmul_bound(hidden, inter),
        "prompts": prompts,
        "tokenizer_dir": str(model_dir),
        "max_new_tokens": settings.generate.max_new_tokens,
        "threads": settings.generate.threads or os.cpu_count(),
    }


def bench_llama(preset: str, result: dict[str, Any]) -> dict[str, Any]:
    """The same prompts (same chat template, same tokens) under llama.cpp on the same GGUF.

    llama.cpp runs in a child process: its OpenMP runtime and torch's crash when loaded into
    one process.
    """
    import subprocess
    import sys
    import tempfile

    from transformers import AutoTokenizer

    from rag.generate.packaged import resolve_model

    packaged = resolve_model("qwen2.5-coder-0.5b" if preset == "fast" else "qwen2.5-coder-1.5b")
    tokenizer = AutoTokenizer.from_pretrained(result["tokenizer_dir"])
    job = {
        "gguf": str(packaged.artifact.path()),  # type: ignore[union-attr]
        "prompts": [
            tokenizer.apply_chat_template(m, tokenize=False, add_generation_prompt=True)
            for m in result["prompts"]
        ],
        "max_new_tokens": result["max_new_tokens"],
        "threads": result["threads"],
    }
    with tempfile.NamedTemporaryFile("w", suffix=".json", delete=False) as handle:
        json.dump(job, handle)
    done = subprocess.run(
        [sys.executable, "-m", "rag.eval.bench_speed", "--llama-job", handle.name],
        capture_output=True,
        text=True,
        check=True,
    )
    os.unlink(handle.name)
    return json.loads(done.stdout.strip().splitlines()[-1])


def llama_job(path: Path) -> dict[str, Any]:
    from llama_cpp import Llama

    job = json.loads(path.read_text())
    llm = Llama(model_path=job["gguf"], n_ctx=4096, n_threads=job["threads"], verbose=False)
    rows = []
    # Warm up on a prompt that shares only the chat template with the measured ones, so no
    # measured prompt finds itself in llama.cpp's prefix cache.
    warm = job["prompts"][0][:200] + " warm-up"
    for prompt in [warm, *job["prompts"]]:
        n_prompt = len(llm.tokenize(prompt.encode(), special=True))
        start = time.perf_counter()
        first = None
        pieces = 0
        for _chunk in llm(prompt, max_tokens=job["max_new_tokens"], temperature=0.0, stream=True):
            if first is None:
                first = time.perf_counter()
            pieces += 1
        end = time.perf_counter()
        first = first or end
        rows.append(
            {
                "prompt_tokens": n_prompt,
                "ttft_s": first - start,
                "total_s": end - start,
                "new_tokens": pieces,
                "decode_tokens_per_s": (pieces - 1) / (end - first) if pieces > 1 else 0.0,
            }
        )
    rows = rows[1:]
    return {
        "gguf": Path(job["gguf"]).name,
        "ttft_ms": percentiles([r["ttft_s"] * 1000 for r in rows]),
        "prefill_tokens_per_s": percentiles([r["prompt_tokens"] / r["ttft_s"] for r in rows]),
        "decode_tokens_per_s": percentiles([r["decode_tokens_per_s"] for r in rows]),
        "total_ms": percentiles([r["total_s"] * 1000 for r in rows]),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--presets", nargs="+", default=["fast", "quality"])
    parser.add_argument("--questions", type=int, default=8)
    parser.add_argument("--no-llama", action="store_true")
    parser.add_argument("--out", type=Path)
    parser.add_argument("--llama-job", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.llama_job:
        print(json.dumps(llama_job(args.llama_job)))
        return 0
    gold = [
        i
        for i in load_gold(gold_dir() / "seed.jsonl")
        if i.answerable and "adversarial" not in i.tags
    ][: args.questions]
    questions = [i.question for i in gold]
    results: dict[str, Any] = {"questions": questions, "cpus": os.cpu_count(), "presets": {}}
    for preset in args.presets:
        r = bench_preset(preset, questions)
        prefill = r["prefill_tokens_per_s"]["p50"]
        achieved = 2 * r["matmul_params"] * prefill / 1e9
        r["prefill_gflops"] = achieved
        r["prefill_fraction_of_bf16_bound"] = achieved / r["bound_gflops"]["bfloat16"]
        if not args.no_llama:
            r["llama_cpp"] = bench_llama(preset, r)
            llama = r["llama_cpp"]
            r["ratio_vs_llama_cpp"] = {
                "ttft": llama["ttft_ms"]["p50"] / r["ttft_ms"]["p50"],
                "prefill": prefill / llama["prefill_tokens_per_s"]["p50"],
                "decode": r["decode_tokens_per_s"]["p50"] / llama["decode_tokens_per_s"]["p50"],
            }
        r.pop("prompts")
        results["presets"][preset] = r
        _print(r)
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(results, indent=2))
    return 0


def _print(r: dict[str, Any]) -> None:
    print(
        f"\n== preset {r['preset']}: {r['model']} ({r['dtype']}, {r['threads']} threads), "
        f"load {r['load_s']:.1f} s, decode weights {r.get('decode_weights')} "
        f"{r.get('decode_layers')}"
    )
    print(
        f"evidence on screen p50 {r['evidence_ms']['p50']:.0f} ms, "
        f"p95 {r['evidence_ms']['p95']:.0f} ms"
    )
    print(
        f"first token p50 {r['ttft_ms']['p50'] / 1000:.2f} s, p95 {r['ttft_ms']['p95'] / 1000:.2f}"
    )
    print(f"total p50 {r['total_ms']['p50'] / 1000:.2f} s, p95 {r['total_ms']['p95'] / 1000:.2f}")
    print(
        f"prompt tokens p50 {r['prompt_tokens']['p50']:.0f} "
        f"(cached {r['cached_prompt_tokens']['p50']:.0f}); prefill "
        f"{r['prefill_tokens_per_s']['p50']:.0f} tok/s = {r['prefill_gflops']:.0f} GFLOP/s = "
        f"{r['prefill_fraction_of_bf16_bound']:.0%} of the measured bf16 matmul bound "
        f"({r['bound_gflops']['bfloat16']:.0f} GFLOP/s); decode "
        f"{r['decode_tokens_per_s']['p50']:.1f} tok/s"
    )
    if "llama_cpp" in r:
        ll, ratio = r["llama_cpp"], r["ratio_vs_llama_cpp"]
        print(
            f"llama.cpp ({ll['gguf']}): first token p50 {ll['ttft_ms']['p50'] / 1000:.2f} s, "
            f"prefill {ll['prefill_tokens_per_s']['p50']:.0f} tok/s, decode "
            f"{ll['decode_tokens_per_s']['p50']:.1f} tok/s"
        )
        print(
            f"transformers / llama.cpp: prefill {ratio['prefill']:.2f}x, decode "
            f"{ratio['decode']:.2f}x, first-token speed {ratio['ttft']:.2f}x"
        )


if __name__ == "__main__":
    raise SystemExit(main())

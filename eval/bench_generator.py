"""Local generator latency: load, time to first token, prefill and decode speed, prefix cache.

For each packaged model x dtype: load from the converted cache, answer a ~600-token RAG prompt
built from the seed passages (cold prefix cache), then a second question with the same system
prompt but other passages (warm cache). Also measures this CPU's matmul throughput at the
models' shapes, and reports prefill FLOP/s as a fraction of it.

Usage: python -m rag.eval.bench_generator [--models ...] [--dtypes ...] [--new-tokens 64]
Writes eval/results/generator_latency.json. Timings are wall-clock on a shared machine: other
processes running at the same time slow them down (the load average is recorded).
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import platform
import time
from pathlib import Path
from typing import Any

from rag.generate import GenerationStats
from rag.paths import seeds_dir
from rag.settings import GenerateSettings

RESULTS = Path("eval/results/generator_latency.json")
PROMPT_TOKENS = 600

SYSTEM = (
    "You are an oncology literature assistant for clinicians and researchers. Answer the "
    "question using only the numbered passages provided by the user. Cite every factual claim "
    "with the number of the passage that supports it, in square brackets, for example [2]. If "
    "the passages do not contain the answer, reply that the retrieved evidence is insufficient "
    "and say what is missing. Report numbers exactly as written in the passages, including "
    "units, confidence intervals and p-values. Do not give treatment recommendations for an "
    "individual patient, do not speculate beyond the passages, and keep the answer under five "
    "sentences."
)
QUESTIONS = (
    "Summarise the strategies discussed for overcoming resistance to immunotherapy in NSCLC, "
    "with the evidence for each.",
    "What were the main efficacy and safety results reported, and in which patients?",
)


def paragraphs() -> list[str]:
    out: list[str] = []
    for path in sorted(seeds_dir().glob("*.txt")):
        out += [p.strip() for p in path.read_text(encoding="utf-8").split("\n\n") if p.strip()]
    return out


def build_messages(gen: Any, paras: list[str], question: str) -> list[dict[str, str]]:
    """System prompt + numbered passages + question, about PROMPT_TOKENS tokens in all."""
    chosen: list[str] = []
    for para in paras:
        user = _user([*chosen, para], question)
        if gen.count_tokens(SYSTEM) + gen.count_tokens(user) > PROMPT_TOKENS - 20:
            break
        chosen.append(para)
    return [
        {"role": "system", "content": SYSTEM},
        {"role": "user", "content": _user(chosen, question)},
    ]


def _user(passages: list[str], question: str) -> str:
    numbered = "\n\n".join(f"[{i}] {p}" for i, p in enumerate(passages, 1))
    return f"Passages:\n{numbered}\n\nQuestion: {question}"


def run_once(gen: Any, messages: list[dict[str, str]], new_tokens: int) -> GenerationStats:
    stats = None
    for item in gen.stream(messages, max_new_tokens=new_tokens):
        if isinstance(item, GenerationStats):
            stats = item
    assert stats is not None
    return stats


def matmul_gflops(hidden: int, threads: int, tokens: int = PROMPT_TOKENS) -> dict[str, float]:
    """Best-of-5 torch.matmul throughput for [tokens, hidden] x [hidden, 4*hidden]."""
    import torch

    torch.set_num_threads(threads)
    out: dict[str, float] = {}
    for name, dtype in (("bfloat16", torch.bfloat16), ("float32", torch.float32)):
        a = torch.randn(tokens, hidden, dtype=dtype)
        b = torch.randn(hidden, 4 * hidden, dtype=dtype)
        flops = 2.0 * tokens * hidden * 4 * hidden
        torch.matmul(a, b)  # oneDNN primitive creation, first-touch
        best = float("inf")
        for _ in range(5):
            started = time.perf_counter()
            torch.matmul(a, b)
            best = min(best, time.perf_counter() - started)
        out[name] = flops / best / 1e9
    return out


def matmul_params(config: Any) -> int:
    """Weights multiplied per prompt token: attention + MLP projections of every layer.

    Embedding lookups cost no FLOPs and the LM head runs only for the last prompt position.
    """
    h = config.hidden_size
    heads = config.num_attention_heads
    kv = config.num_key_value_heads * (getattr(config, "head_dim", None) or h // heads)
    per_layer = 2 * h * h + 2 * h * kv + 3 * h * config.intermediate_size
    return config.num_hidden_layers * per_layer


def measure(model: str, dtype: str, new_tokens: int, threads: int | None) -> dict[str, Any]:
    from rag.generate.local import LocalGenerator

    gen = LocalGenerator(GenerateSettings(model=model, dtype=dtype, threads=threads))
    row: dict[str, Any] = {"model": model, "dtype": dtype, "load_s": gen.load_s}
    paras = paragraphs()
    half = len(paras) // 2
    first = build_messages(gen, paras, QUESTIONS[0])
    second = build_messages(gen, paras[half:] + paras[:half], QUESTIONS[1])
    run_once(gen, [{"role": "user", "content": "Say OK."}], 2)  # one-time kernel setup
    gen.clear_prefix_cache()
    cold = run_once(gen, first, new_tokens)
    warm = run_once(gen, second, new_tokens)
    flops_per_token = 2 * matmul_params(gen.config)
    row.update(
        prompt_tokens=cold.prompt_tokens,
        new_tokens=cold.new_tokens,
        ttft_s=cold.ttft_s,
        prefill_tok_s=cold.prefill_tokens_per_s,
        decode_tok_s=cold.decode_tokens_per_s,
        total_s=cold.total_s,
        warm_prompt_tokens=warm.prompt_tokens,
        warm_cached_tokens=warm.cached_prompt_tokens,
        warm_ttft_s=warm.ttft_s,
        warm_prefill_tok_s=warm.prefill_tokens_per_s,
        warm_decode_tok_s=warm.decode_tokens_per_s,
        prefill_gflops=flops_per_token * cold.prefill_tokens_per_s / 1e9,
        hidden=gen.config.hidden_size,
        matmul_params=matmul_params(gen.config),
    )
    del gen
    gc.collect()
    return row


HEADER = (
    f"{'model':<20}{'dtype':<10}{'load s':>8}{'TTFT s':>8}{'prefill t/s':>12}"
    f"{'decode t/s':>11}{'cached TTFT s':>14}{'cached tok':>11}{'% bound':>9}"
)


def format_row(r: dict[str, Any]) -> str:
    return (
        f"{r['model']:<20}{r['dtype']:<10}{r['load_s']:>8.1f}{r['ttft_s']:>8.2f}"
        f"{r['prefill_tok_s']:>12.0f}{r['decode_tok_s']:>11.1f}{r['warm_ttft_s']:>14.2f}"
        f"{r['warm_cached_tokens']:>11d}{r['pct_of_bound']:>8.0f}%"
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", nargs="+", default=["qwen2.5-coder-0.5b", "qwen2.5-coder-1.5b"])
    parser.add_argument("--dtypes", nargs="+", default=["bfloat16", "float32", "int8"])
    parser.add_argument("--new-tokens", type=int, default=64)
    parser.add_argument("--threads", type=int, default=None, help="default: all cores")
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args(argv)

    import torch
    import transformers

    threads = args.threads or os.cpu_count() or 1
    started = time.perf_counter()
    load_before = os.getloadavg()
    bounds: dict[int, dict[str, float]] = {}
    rows: list[dict[str, Any]] = []
    record: dict[str, Any] = {
        "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "machine": {
            "cpu_count": os.cpu_count(),
            "threads": threads,
            "processor": platform.processor() or platform.machine(),
            "omp_wait_policy": os.environ.get("OMP_WAIT_POLICY", ""),
            "load_average_before": load_before,
        },
        "versions": {"torch": torch.__version__, "transformers": transformers.__version__},
        "prompt_tokens_target": PROMPT_TOKENS,
        "new_tokens": args.new_tokens,
        "matmul_gflops": {},
        "rows": rows,
        "notes": (
            "Wall-clock timings on a shared 2-core machine; concurrent jobs slow them down "
            "(see load averages). prefill_gflops = 2 x matmul_params x prefill tokens/s "
            "(attention scores and the LM head excluded). int8 rows are compared with the "
            "float32 matmul bound."
        ),
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    print(HEADER, flush=True)
    print("-" * len(HEADER), flush=True)
    for model in args.models:
        for dtype in args.dtypes:
            row = measure(model, dtype, args.new_tokens, args.threads)
            if row["hidden"] not in bounds:
                bounds[row["hidden"]] = matmul_gflops(row["hidden"], threads)
            bound = bounds[row["hidden"]]
            # int8 has no float bound of its own; compare it with the float32 one.
            ref = bound["bfloat16"] if dtype == "bfloat16" else bound["float32"]
            row["matmul_bound_gflops"] = ref
            row["pct_of_bound"] = 100.0 * row["prefill_gflops"] / ref
            row["load_average"] = os.getloadavg()
            rows.append(row)
            print(format_row(row), flush=True)
            # Written after every row: a long run that is cut short keeps what it measured.
            record["matmul_gflops"] = {str(k): v for k, v in bounds.items()}
            record["machine"]["load_average_after"] = os.getloadavg()
            record["seconds"] = round(time.perf_counter() - started, 1)
            args.out.write_text(json.dumps(record, indent=2) + "\n", encoding="utf-8")
    print()
    for hidden, b in sorted(bounds.items()):
        print(
            f"matmul [{PROMPT_TOKENS},{hidden}]x[{hidden},{4 * hidden}]: "
            f"bf16 {b['bfloat16']:.0f} GFLOP/s, fp32 {b['float32']:.0f} GFLOP/s"
        )
    after = os.getloadavg()
    print(f"load average before/after: {load_before[0]:.1f}/{after[0]:.1f} on {threads} threads")
    print(f"wrote {args.out} in {time.perf_counter() - started:.0f} s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

"""Load benchmark: 32 concurrent clients against a real `rag serve` on loopback.

Three phases against one server (preset fast = the 0.5B generator, short answers):

1. ``idle``: a few clients search while nothing generates: the search latency baseline;
2. ``generation``: the same search clients while one long generation runs (a raw
   /v1/chat/completions call with a large ``max_tokens``): does search stay responsive?
3. ``mixed``: N clients (default 32) for a bounded time with a mix of /api/search (most),
   /healthz, uploads of small text files (each followed by the delete of that document),
   /api/ask and /api/ask/stream (few: one generation slot on a 2-core CPU).

Anything other than a 2xx, or a clean 429/503 carrying Retry-After, counts as an error, as does
a transport failure or an SSE stream that ends without its ``final`` event. Server RSS is
sampled every second (psutil on the server pid); it is flat when the mean of the last quarter
of the mixed phase is within 10% of the second quarter's (the first quarter is warm-up).

    python -m rag.eval.bench_load --duration 90 --clients 32 --out eval/results/load.json
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx
from rag.eval.load_stats import RssSampler, Stats, rss_flatness, table

API_KEY = "load-bench-key-5e6f7a8b"
SEARCHES = [
    "ivonescimab progression-free survival HARMONi-A",
    "median PFS placebo chemotherapy",
    "hazard ratio progression-free survival",
    "bispecific antibody PD-1 VEGF",
    "immunotherapy resistance non-small cell lung cancer",
    "radiotherapy immune response abscopal",
    "EGFR mutant NSCLC after TKI",
    "overall survival primary endpoint",
    "chemo-radio-immunotherapy strategies",
    "tumour microenvironment T cells",
    "adverse events grade 3",
    "OSE2101 vaccine phase 3",
]
QUESTIONS = [
    "What was the median progression-free survival with ivonescimab plus chemotherapy in "
    "HARMONi-A?",
    "What hazard ratio for progression-free survival was reported in HARMONi-A?",
    "What is the ClinicalTrials.gov identifier of the HARMONi-A study?",
    "What kind of antibody is ivonescimab?",
]
KINDS = ("search", "healthz", "upload", "delete", "ask", "ask_stream")


def _clean_busy(response: httpx.Response) -> bool:
    return response.status_code in (429, 503) and "retry-after" in response.headers


def _retry_after(response: httpx.Response) -> float:
    try:
        return min(float(response.headers.get("retry-after", "1")), 10.0)
    except ValueError:
        return 1.0


# -- requests -----------------------------------------------------------------------------------


async def do_search(client: httpx.AsyncClient, rng: random.Random, stats: Stats) -> None:
    started = time.perf_counter()
    try:
        r = await client.get("/api/search", params={"q": rng.choice(SEARCHES), "k": 5})
    except httpx.HTTPError as exc:
        stats.record("search", "error", 0, f"{type(exc).__name__}: {exc}")
        return
    _classify(stats, "search", r, time.perf_counter() - started, lambda b: "hits" in b)


async def do_health(client: httpx.AsyncClient, stats: Stats) -> None:
    started = time.perf_counter()
    try:
        r = await client.get("/healthz")
    except httpx.HTTPError as exc:
        stats.record("healthz", "error", 0, f"{type(exc).__name__}: {exc}")
        return
    _classify(stats, "healthz", r, time.perf_counter() - started, lambda b: b["status"] == "ok")


async def do_upload(
    client: httpx.AsyncClient, rng: random.Random, stats: Stats, serial: list[int]
) -> float:
    serial[0] += 1
    tag = f"{serial[0]}-{rng.randrange(10**9)}"
    text = (
        f"# Load note {tag}\n\nIn the fictional LOAD-{tag} study, drug L{tag} reached a "
        f"response rate of {rng.randint(10, 60)}% in {rng.randint(20, 400)} patients.\n"
    ).encode()
    started = time.perf_counter()
    try:
        r = await client.post(
            "/api/documents", files={"files": (f"load-{tag}.md", text, "text/markdown")}
        )
    except httpx.HTTPError as exc:
        stats.record("upload", "error", 0, f"{type(exc).__name__}: {exc}")
        return 0.0
    ok = _classify(
        stats,
        "upload",
        r,
        time.perf_counter() - started,
        lambda b: b["results"][0]["status"] == "added",
    )
    if not ok:
        return _retry_after(r) if _clean_busy(r) else 0.0
    doc_id = r.json()["results"][0]["doc_id"]
    started = time.perf_counter()
    try:
        d = await client.delete(f"/api/documents/{doc_id}")
    except httpx.HTTPError as exc:
        stats.record("delete", "error", 0, f"{type(exc).__name__}: {exc}")
        return 0.0
    _classify(stats, "delete", d, time.perf_counter() - started, lambda b: b["status"] == "removed")
    return 0.0


async def do_ask(client: httpx.AsyncClient, rng: random.Random, stats: Stats) -> float:
    started = time.perf_counter()
    try:
        r = await client.post("/api/ask", json={"question": rng.choice(QUESTIONS)})
    except httpx.HTTPError as exc:
        stats.record("ask", "error", 0, f"{type(exc).__name__}: {exc}")
        return 0.0
    _classify(stats, "ask", r, time.perf_counter() - started, lambda b: "answer" in b)
    return _retry_after(r) if _clean_busy(r) else 0.0


async def do_stream(client: httpx.AsyncClient, rng: random.Random, stats: Stats) -> float:
    started = time.perf_counter()
    try:
        async with client.stream(
            "POST", "/api/ask/stream", json={"question": rng.choice(QUESTIONS)}
        ) as r:
            if r.status_code != 200:
                await r.aread()
                _classify(stats, "ask_stream", r, time.perf_counter() - started, lambda b: False)
                return _retry_after(r) if _clean_busy(r) else 0.0
            events: list[str] = []
            async for line in r.aiter_lines():
                if line.startswith("event:"):
                    events.append(line[6:].strip())
    except httpx.HTTPError as exc:
        stats.record("ask_stream", "error", 0, f"{type(exc).__name__}: {exc}")
        return 0.0
    seconds = time.perf_counter() - started
    if "final" in events and "error" not in events:
        stats.record("ask_stream", "ok", seconds)
    else:
        stats.record("ask_stream", "error", seconds, f"stream events {events[-3:]}")
    return 0.0


def _classify(stats: Stats, kind: str, r: httpx.Response, seconds: float, valid: Any) -> bool:
    if 200 <= r.status_code < 300:
        try:
            good = bool(valid(r.json()))
        except (ValueError, KeyError, IndexError, TypeError):
            good = False
        stats.record(kind, "ok" if good else "error", seconds, f"bad body: {r.text[:200]}")
        return good
    if _clean_busy(r):
        stats.record(kind, "busy", seconds)
        return False
    stats.record(kind, "error", seconds, f"HTTP {r.status_code}: {r.text[:200]}")
    return False


# -- phases ---------------------------------------------------------------------------------------


async def search_clients(url: str, n: int, seconds: float, seed: int) -> Stats:
    stats = Stats()
    deadline = time.monotonic() + seconds
    async with _client(url, n) as client:

        async def one(i: int) -> None:
            rng = random.Random(seed * 1000 + i)
            while time.monotonic() < deadline:
                await do_search(client, rng, stats)

        await asyncio.gather(*(one(i) for i in range(n)))
    return stats


async def search_during_generation(
    url: str, n: int, max_tokens: int, seed: int
) -> tuple[Stats, dict[str, Any]]:
    """Search clients for as long as one long raw generation runs."""
    stats = Stats()
    info: dict[str, Any] = {}
    done = asyncio.Event()
    async with _client(url, n + 1) as client:
        model = (await client.get("/v1/models")).json()["data"][0]["id"]

        async def generate() -> None:
            started = time.perf_counter()
            r = await client.post(
                "/v1/chat/completions",
                json={
                    "model": model,
                    "messages": [
                        {"role": "user", "content": "Write a long, detailed review of the "
                         "history of cancer immunotherapy, one paragraph per decade."}
                    ],
                    "max_tokens": max_tokens,
                },
            )  # fmt: skip
            info["status"] = r.status_code
            info["seconds"] = round(time.perf_counter() - started, 2)
            if r.status_code == 200:
                info["completion_tokens"] = r.json()["usage"]["completion_tokens"]
            done.set()

        async def one(i: int) -> None:
            rng = random.Random(seed * 7919 + i)
            await asyncio.sleep(1.0)  # let the generation start (prefill) first
            while not done.is_set():
                await do_search(client, rng, stats)

        await asyncio.gather(generate(), *(one(i) for i in range(n)))
    return stats, info


async def mixed_clients(
    url: str, n: int, seconds: float, seed: int, mix: dict[str, float]
) -> tuple[Stats, float, float]:
    stats = Stats()
    serial = [0]
    kinds = list(mix)
    weights = [mix[k] for k in kinds]
    started = time.monotonic()
    deadline = started + seconds
    async with _client(url, n) as client:

        async def one(i: int) -> None:
            rng = random.Random(seed * 104729 + i)
            while time.monotonic() < deadline:
                kind = rng.choices(kinds, weights)[0]
                pause = 0.0
                if kind == "search":
                    await do_search(client, rng, stats)
                elif kind == "healthz":
                    await do_health(client, stats)
                elif kind == "upload":
                    pause = await do_upload(client, rng, stats, serial)
                elif kind == "ask":
                    pause = await do_ask(client, rng, stats)
                else:
                    pause = await do_stream(client, rng, stats)
                if pause:  # a well-behaved client honours Retry-After
                    await asyncio.sleep(min(pause, max(0.0, deadline - time.monotonic())))

        await asyncio.gather(*(one(i) for i in range(n)))
    return stats, started, time.monotonic()


def _client(url: str, n: int) -> httpx.AsyncClient:
    return httpx.AsyncClient(
        base_url=url,
        headers={"Authorization": f"Bearer {API_KEY}"},
        timeout=httpx.Timeout(600.0, connect=30.0),
        limits=httpx.Limits(max_connections=n + 4, max_keepalive_connections=n + 4),
    )


# -- driver -----------------------------------------------------------------------------------


DEFAULT_MIX = {"search": 0.80, "healthz": 0.08, "upload": 0.06, "ask": 0.03, "ask_stream": 0.03}


def run_benchmark(
    *,
    duration_s: float = 90.0,
    clients: int = 32,
    idle_s: float = 15.0,
    search_clients_n: int = 8,
    max_new_tokens: int = 48,
    long_tokens: int = 160,
    queue_timeout_s: float = 5.0,
    workdir: Path | None = None,
    seed: int = 0,
    mix: dict[str, float] | None = None,
) -> dict[str, Any]:
    """Start a server, run the three phases, stop it; returns the figures."""
    from rag.api.launch import ServerProcess

    own = workdir is None
    tmp = tempfile.TemporaryDirectory(prefix="rag-load-") if own else None
    root = Path(tmp.name) if tmp else Path(workdir)  # type: ignore[arg-type]
    server = ServerProcess(
        root / "index",
        workdir=root,
        preset="fast",
        overrides=[
            f"generate.max_new_tokens={max_new_tokens}",
            f"server.api_key={API_KEY}",
            "server.max_concurrent_generations=1",
            f"server.queue_timeout_s={queue_timeout_s}",
        ],
        extra_args=["--no-ui", "--preload"],
        start_timeout_s=900,
    )
    t0 = time.monotonic()
    server.start()
    startup_s = time.monotonic() - t0
    assert server._proc is not None
    sampler = RssSampler(server._proc.pid).start()
    try:
        idle = asyncio.run(search_clients(server.url, search_clients_n, idle_s, seed))
        during, gen_info = asyncio.run(
            search_during_generation(server.url, search_clients_n, long_tokens, seed)
        )
        mixed, m_start, m_end = asyncio.run(
            mixed_clients(server.url, clients, duration_s, seed, mix or DEFAULT_MIX)
        )
        health = httpx.get(f"{server.url}/healthz", timeout=30).json()
    finally:
        sampler.stop()
        log = server.log_tail(400)
        server.stop()
        if tmp is not None:
            tmp.cleanup()
    idle_search = idle.summary().get("search", {})
    during_search = during.summary().get("search", {})
    mixed_summary = mixed.summary()
    errors = sum(v["errors"] for v in mixed_summary.values())
    errors += idle_search.get("errors", 0) + during_search.get("errors", 0)
    rss = rss_flatness(sampler.window(m_start, m_end))
    rss["series_mb"] = [round(mb, 1) for _, mb in sampler.samples]
    return {
        "settings": {
            "clients": clients,
            "duration_s": duration_s,
            "mix": mix or DEFAULT_MIX,
            "preset": "fast",
            "generate.max_new_tokens": max_new_tokens,
            "long_generation_max_tokens": long_tokens,
            "server.max_concurrent_generations": 1,
            "server.queue_timeout_s": queue_timeout_s,
            "search_clients_idle_and_during_generation": search_clients_n,
            "seed": seed,
        },
        "startup_s": round(startup_s, 1),
        "mixed": mixed_summary,
        "errors": errors,
        "error_samples": (idle.errors + during.errors + mixed.errors)[:20],
        "search_idle": idle_search,
        "search_during_generation": during_search,
        "long_generation": gen_info,
        "rss": rss,
        "documents_after": health.get("documents"),
        "server_log_tracebacks": log.count("Traceback (most recent call last)"),
    }


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--duration", type=float, default=90.0, help="mixed phase, seconds")
    parser.add_argument("--clients", type=int, default=32)
    parser.add_argument("--idle", type=float, default=15.0, help="idle search phase, seconds")
    parser.add_argument("--max-new-tokens", type=int, default=48)
    parser.add_argument("--long-tokens", type=int, default=160)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args(argv)
    result = run_benchmark(
        duration_s=args.duration,
        clients=args.clients,
        idle_s=args.idle,
        max_new_tokens=args.max_new_tokens,
        long_tokens=args.long_tokens,
        seed=args.seed,
    )
    print(table(result))
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        try:
            current = json.loads(args.out.read_text())
        except (OSError, ValueError):
            current = {}
        current["benchmark"] = result | {
            "command": "python -m rag.eval.bench_load "
            f"--duration {args.duration:g} --clients {args.clients}",
            "time": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        }
        args.out.write_text(json.dumps(current, indent=2) + "\n")


if __name__ == "__main__":
    main()

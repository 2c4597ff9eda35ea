"""Dense retrieval benchmark at corpus scale: FAISS exact vs HNSW / IVF vs Milvus-lite.

Synthetic vectors shaped like sentence embeddings rather than uniform noise: a Gaussian
mixture of a few hundred topics of Zipf-like sizes, a shared mean direction (sentence
encoders are anisotropic) and a decaying noise spectrum (low intrinsic dimension), all
L2-normalised. The defaults were fitted to all-MiniLM-L6-v2 embeddings of 3,000 SciFact
abstracts (random-pair cosine 0.144, mean-vector norm 0.378, 161 principal directions for 90%
of the variance; synthetic at the same size: 0.143, 0.382, 162). Queries are held-out points of
the same mixture, perturbed. Ground truth is
FAISS exact top-10. Every engine runs in its own subprocess so its peak RSS is its own, and
is driven through this project's stores (FaissStore, MilvusStore) as the assistant uses them:
one query at a time, k=10.

    python -m rag.eval.bench_vectors --n 1000000 --dim 384 --queries 1000 \
        --out eval/results/vectors_1m.json
    python -m rag.eval.bench_vectors --n 20000          # quick run
"""

from __future__ import annotations

import argparse
import gc
import json
import math
import os
import platform
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

ENGINES = ["faiss-flat", "faiss-hnsw", "faiss-ivf", "milvus-flat", "milvus-ivf", "milvus-hnsw"]
K = 10


# -- data ---------------------------------------------------------------------------------------


def synthesize(
    n: int,
    n_queries: int,
    dim: int,
    clusters: int,
    seed: int,
    *,
    noise: float = 1.3,
    anisotropy: float = 0.65,
    decay: float = 0.6,
    query_jitter: float = 0.4,
) -> tuple[np.ndarray, np.ndarray, dict[str, float]]:
    """Base vectors and perturbed held-out queries from one embedding-like mixture."""
    rng = np.random.default_rng(seed)
    basis, _ = np.linalg.qr(rng.standard_normal((dim, dim)))
    spectrum = (np.arange(1, dim + 1, dtype=np.float64) ** -decay).astype(np.float32)
    mix = (basis * spectrum).T.astype(np.float32)  # noise = z @ mix: decaying variance
    mean_dir = rng.standard_normal(dim).astype(np.float32)
    mean_dir /= np.linalg.norm(mean_dir)
    centres = rng.standard_normal((clusters, dim)).astype(np.float32)
    centres /= np.linalg.norm(centres, axis=1, keepdims=True)
    weights = rng.dirichlet(np.full(clusters, 0.7))
    spread = rng.uniform(0.6, 1.4, clusters).astype(np.float32)  # some topics are tighter

    noise_norm = float(np.sqrt((spectrum**2).sum()))  # expected norm of z @ mix

    def draw(m: int) -> np.ndarray:
        out = np.empty((m, dim), np.float32)
        for start in range(0, m, 50_000):
            size = min(50_000, m - start)
            topic = rng.choice(clusters, size=size, p=weights)
            z = rng.standard_normal((size, dim), dtype=np.float32) @ mix
            z *= (noise * spread[topic] / noise_norm)[:, None]
            block = anisotropy * mean_dir + centres[topic] + z
            block /= np.linalg.norm(block, axis=1, keepdims=True)
            out[start : start + size] = block
        return out

    base = draw(n)
    held_out = draw(n_queries)
    jitter = rng.standard_normal(held_out.shape, dtype=np.float32) * (query_jitter / math.sqrt(dim))
    queries = held_out + jitter
    queries /= np.linalg.norm(queries, axis=1, keepdims=True)
    a, b = rng.integers(0, n, 2000), rng.integers(0, n, 2000)
    stats = {"random_pair_cosine_mean": float(np.mean(np.sum(base[a] * base[b], axis=1)))}
    return base, queries.astype(np.float32), stats


def exact_topk(base: np.ndarray, queries: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    import faiss

    index = faiss.IndexFlatIP(base.shape[1])
    index.add(base)
    scores, ids = index.search(queries, k)
    return scores, ids


# -- measurement helpers ------------------------------------------------------------------------


def _rss_mb() -> float:
    with open("/proc/self/statm") as handle:
        return int(handle.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


def _peak_mb() -> float:
    """This image's high-water RSS (VmHWM; ru_maxrss would carry the parent's over exec)."""
    with open("/proc/self/status") as handle:
        for line in handle:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _dir_mb(path: Path) -> float:
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file()) / 2**20


def _measure(store: Any, queries: np.ndarray, gt: np.ndarray, budget_s: float) -> dict[str, Any]:
    """Single-query latency and recall@10; stops early past ``budget_s`` (min 50 queries)."""
    store.search(queries[:1], K)  # warm-up: lazy loads, caches
    times: list[float] = []
    hits = 0
    started = time.perf_counter()
    for i, q in enumerate(queries):
        t = time.perf_counter()
        _, found = store.search(q[None, :], K)
        times.append((time.perf_counter() - t) * 1000)
        hits += len(set(found[0].tolist()) & set(gt[i].tolist()))
        if time.perf_counter() - started > budget_s and i + 1 >= 50:
            break
    arr = np.asarray(times)
    return {
        "queries": len(times),
        "p50_ms": float(np.percentile(arr, 50)),
        "p95_ms": float(np.percentile(arr, 95)),
        "mean_ms": float(arr.mean()),
        "recall@10": hits / (K * len(times)),
    }


# -- one engine per process ---------------------------------------------------------------------


def _wait_for_lite_indexing(store: Any) -> None:
    """milvus-lite seals segments, compacts and builds their indexes on a background thread
    (its describe_index always says Finished), so drain that thread before timing queries."""
    from milvus_lite.server_manager import server_manager_instance

    _server, db, _port = server_manager_instance._servers[store._lite_path]
    collection = db.get_collection(store.collection)
    for _ in range(3):  # a compaction can schedule further work
        collection._wait_for_bg()


def run_engine(engine: str, work: Path, args: argparse.Namespace) -> dict[str, Any]:
    import faiss

    from rag.settings import IndexSettings
    from rag.store.faiss_store import FaissStore

    family, kind = engine.split("-")
    if family == "milvus":
        from rag.store.milvus_store import MilvusStore, milvus_index
    faiss.omp_set_num_threads(args.threads)
    base_rss = _rss_mb()  # after the engine's imports: only data and index count below
    gt = np.load(work / "gt.npy")
    queries = np.load(work / "queries.npy")
    vectors = np.load(work / "base.npy")
    n, dim = vectors.shape
    ids = np.arange(n, dtype=np.int64)
    data_rss = _rss_mb()
    nlist = args.nlist or int(4 * math.sqrt(n))
    settings = IndexSettings(
        hnsw_m=args.hnsw_m,
        hnsw_ef_construction=args.hnsw_ef_construction,
        ivf_nlist=nlist,
        ivf_nprobe=8,
    )
    result: dict[str, Any] = {
        "engine": engine,
        "n": n,
        "dim": dim,
        "build_threads": args.threads,
        "query_threads": args.query_threads,
    }
    disk_mb = None
    t0 = time.perf_counter()
    if family == "faiss":
        store: Any = FaissStore(dim, kind, settings)  # type: ignore[arg-type]
        store.add(ids, vectors)
        build_s = time.perf_counter() - t0
        if kind == "ivf":
            result["index_params"] = {"nlist": int(store._index.nlist)}
        elif kind == "hnsw":
            result["index_params"] = {"M": args.hnsw_m, "efConstruction": args.hnsw_ef_construction}
    else:
        index_type, params = milvus_index(kind, settings)
        if kind == "ivf":
            params = {"nlist": args.milvus_nlist}  # per segment (<= 100k rows in milvus-lite)
        db = work / f"{engine}.db"
        shutil.rmtree(db, ignore_errors=True)
        store = MilvusStore(dim, str(db), "bench", index_type=index_type, index_params=params)
        store.add(ids, vectors)
        insert_s = time.perf_counter() - t0
        store.save()  # flush: seal the last rows into a segment
        _wait_for_lite_indexing(store)
        build_s = time.perf_counter() - t0
        result.update(insert_s=insert_s, index_params=params)
        disk_mb = _dir_mb(db)
    result["build_s"] = build_s
    result["rss_after_build_mb"] = _rss_mb()
    peak_build = _peak_mb()
    del vectors
    gc.collect()
    result.update(
        rss_base_mb=base_rss,
        data_copy_mb=data_rss - base_rss,
        index_rss_mb=_rss_mb() - base_rss,  # what the store keeps once the input is freed
        peak_rss_mb=peak_build,
        disk_mb=disk_mb,
    )
    faiss.omp_set_num_threads(args.query_threads)
    runs = []
    if kind == "hnsw":
        sweep = [("ef_search", ef) for ef in (64, 128, 256)]
    elif kind == "ivf":
        sweep = [("nprobe", p) for p in (8, 32, 64)]
    else:
        sweep = [(None, None)]
    for name, value in sweep:
        if family == "faiss" and name == "ef_search":
            store.settings.hnsw_ef_search = value
        elif family == "faiss" and name == "nprobe":
            store.settings.ivf_nprobe = value
            store._index.nprobe = value
        elif name == "ef_search":
            store.ef_search = value
        elif name == "nprobe":
            store.nprobe = value
        m = _measure(store, queries, gt, args.budget_s)
        runs.append({"param": {name: value} if name else {}, **m})
        print(f"  {engine} {name or ''}={value or ''}: {m}", file=sys.stderr, flush=True)
    result["runs"] = runs
    result["peak_rss_mb"] = max(peak_build, _peak_mb())
    if family == "milvus":
        store.close()
    return result


# -- driver -------------------------------------------------------------------------------------


def _versions() -> dict[str, str]:
    from importlib.metadata import PackageNotFoundError, version

    out = {"python": platform.python_version()}
    for pkg in ("faiss-cpu", "numpy", "pymilvus", "milvus-lite"):
        try:
            out[pkg] = version(pkg)
        except PackageNotFoundError:
            out[pkg] = "not installed"
    return out


def print_table(report: dict[str, Any]) -> None:
    head = (
        f"{'engine':<12} {'param':<14} {'build s':>8} {'index MB':>9} {'peak MB':>8} "
        f"{'p50 ms':>8} {'p95 ms':>8} {'recall@10':>9} {'queries':>7}"
    )
    print(head)
    print("-" * len(head))
    for r in report["engines"]:
        if "error" in r:
            print(f"{r['engine']:<12} ERROR {r['error'][:80]}")
            continue
        for run in r["runs"]:
            param = ",".join(f"{k}={v}" for k, v in run["param"].items()) or "-"
            print(
                f"{r['engine']:<12} {param:<14} {r['build_s']:>8.1f} {r['index_rss_mb']:>9.0f} "
                f"{r['peak_rss_mb']:>8.0f} {run['p50_ms']:>8.2f} {run['p95_ms']:>8.2f} "
                f"{run['recall@10']:>9.3f} {run['queries']:>7}"
            )


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=20_000)
    parser.add_argument("--dim", type=int, default=384)
    parser.add_argument("--queries", type=int, default=1000)
    parser.add_argument("--clusters", type=int, default=300)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--engines", default=",".join(ENGINES))
    parser.add_argument("--threads", type=int, default=os.cpu_count() or 1, help="for builds")
    parser.add_argument(
        "--query-threads",
        type=int,
        default=1,
        help="FAISS threads while querying (one query at a time; more only adds OpenMP noise)",
    )
    parser.add_argument("--hnsw-m", type=int, default=32)
    parser.add_argument("--hnsw-ef-construction", type=int, default=200)
    parser.add_argument("--nlist", type=int, default=0, help="FAISS IVF lists; 0 = 4*sqrt(n)")
    parser.add_argument("--milvus-nlist", type=int, default=1024, help="per milvus segment")
    parser.add_argument("--budget-s", type=float, default=120.0, help="query time per setting")
    parser.add_argument("--out", type=Path, default=None)
    parser.add_argument("--workdir", type=Path, default=None)
    parser.add_argument("--phase", default=None, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)

    if args.phase:  # child process: one engine
        result = run_engine(args.phase, args.workdir, args)
        (args.workdir / f"{args.phase}.json").write_text(json.dumps(result))
        return

    work = args.workdir or Path(tempfile.mkdtemp(prefix="bench-vectors-"))
    work.mkdir(parents=True, exist_ok=True)
    key = {k: getattr(args, k) for k in ("n", "dim", "queries", "clusters", "seed")}
    data_meta = work / "data.json"
    if data_meta.exists() and json.loads(data_meta.read_text()).get("key") == key:
        stats = json.loads(data_meta.read_text())["stats"]  # same data as a previous run
    else:
        t = time.perf_counter()
        base, queries, stats = synthesize(args.n, args.queries, args.dim, args.clusters, args.seed)
        gen_s = time.perf_counter() - t
        t = time.perf_counter()
        gt_scores, gt = exact_topk(base, queries, K)
        stats |= {
            "query_top1_cosine_mean": float(gt_scores[:, 0].mean()),
            "query_top10_cosine_mean": float(gt_scores[:, -1].mean()),
            "generate_s": gen_s,
            "ground_truth_s": time.perf_counter() - t,
        }
        np.save(work / "base.npy", base)
        np.save(work / "queries.npy", queries)
        np.save(work / "gt.npy", gt)
        data_meta.write_text(json.dumps({"key": key, "stats": stats}))
        del base
        gc.collect()
    print(f"data: {stats}", file=sys.stderr, flush=True)

    engines = [e.strip() for e in args.engines.split(",") if e.strip()]
    kept: list[dict[str, Any]] = []
    if args.out and args.out.exists():  # a later run of some engines updates an earlier report
        old = json.loads(args.out.read_text())
        if old.get("data_key") == key:
            kept = [e for e in old.get("engines", []) if e.get("engine") not in engines]
    report: dict[str, Any] = {
        "data_key": key,
        "n": args.n,
        "dim": args.dim,
        "queries": args.queries,
        "k": K,
        "clusters": args.clusters,
        "data": stats,
        "versions": _versions(),
        "cpu_count": os.cpu_count(),
        "load_average_at_start": list(os.getloadavg()),
        "settings": {
            "hnsw_m": args.hnsw_m,
            "hnsw_ef_construction": args.hnsw_ef_construction,
            "faiss_nlist": args.nlist or int(4 * math.sqrt(args.n)),
            "milvus_nlist_per_segment": args.milvus_nlist,
            "budget_s_per_setting": args.budget_s,
            "threads": args.threads,
            "query_threads": args.query_threads,
        },
        "engines": kept,
    }
    for engine in engines:
        print(f"== {engine}", file=sys.stderr, flush=True)
        cmd = [sys.executable, "-m", "rag.eval.bench_vectors", *(argv or sys.argv[1:])]
        cmd += ["--phase", engine, "--workdir", str(work)]
        t = time.perf_counter()
        proc = subprocess.run(cmd, text=True, stdout=subprocess.PIPE)
        out = work / f"{engine}.json"
        if proc.returncode == 0 and out.exists():
            report["engines"].append(json.loads(out.read_text()))
        else:
            report["engines"].append({"engine": engine, "error": f"exit {proc.returncode}"})
        report["engines"][-1]["wall_s"] = time.perf_counter() - t
        if args.out:  # keep partial results of a long run
            args.out.parent.mkdir(parents=True, exist_ok=True)
            args.out.write_text(json.dumps(report, indent=2))
    report["load_average_at_end"] = list(os.getloadavg())
    print_table(report)
    if args.out:
        args.out.write_text(json.dumps(report, indent=2))
    if not args.workdir:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()

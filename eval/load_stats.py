"""What the load benchmark counts and how it reports: per-kind latencies and outcomes,
the server's RSS over time, and the printed table (``rag.eval.bench_load`` drives the load)."""

from __future__ import annotations

import threading
import time
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any


@dataclass
class Stats:
    """Latencies and outcomes per request type (and per phase)."""

    latencies: dict[str, list[float]] = field(default_factory=lambda: defaultdict(list))
    counts: dict[str, dict[str, int]] = field(
        default_factory=lambda: defaultdict(lambda: defaultdict(int))
    )
    errors: list[str] = field(default_factory=list)

    def record(self, kind: str, outcome: str, seconds: float, detail: str = "") -> None:
        self.counts[kind][outcome] += 1
        if outcome == "ok":
            self.latencies[kind].append(seconds)
        elif outcome == "error" and len(self.errors) < 50:
            self.errors.append(f"{kind}: {detail}"[:300])

    def summary(self) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for kind in sorted(set(self.counts) | set(self.latencies)):
            lat = sorted(self.latencies.get(kind, []))
            counts = dict(self.counts.get(kind, {}))
            out[kind] = {
                "requests": sum(counts.values()),
                "ok": counts.get("ok", 0),
                "busy": counts.get("busy", 0),
                "errors": counts.get("error", 0),
                "p50_ms": _pct(lat, 50),
                "p95_ms": _pct(lat, 95),
                "max_ms": round(lat[-1] * 1000, 1) if lat else None,
            }
        return out


def _pct(sorted_values: list[float], q: float) -> float | None:
    if not sorted_values:
        return None
    index = min(len(sorted_values) - 1, max(0, round(q / 100 * len(sorted_values) + 0.5) - 1))
    return round(sorted_values[index] * 1000, 1)


class RssSampler:
    """Resident memory of the server process every ``every_s`` seconds, on its own thread."""

    def __init__(self, pid: int, every_s: float = 1.0) -> None:
        self.pid = pid
        self.every_s = every_s
        self.samples: list[tuple[float, float]] = []  # (monotonic time, MB)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True, name="rss-sampler")

    def _rss_mb(self) -> float:
        try:
            import psutil

            return psutil.Process(self.pid).memory_info().rss / 2**20
        except ImportError:
            for line in Path(f"/proc/{self.pid}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) / 1024
            raise

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                self.samples.append((time.monotonic(), self._rss_mb()))
            except Exception:
                return  # the server is gone
            self._stop.wait(self.every_s)

    def start(self) -> RssSampler:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=5)

    def window(self, start: float, end: float) -> list[float]:
        return [mb for t, mb in self.samples if start <= t <= end]


def rss_flatness(values: list[float]) -> dict[str, Any]:
    """Second-quarter vs last-quarter mean of a phase (the first quarter is warm-up)."""
    if len(values) < 8:
        return {"samples": len(values), "flat": None}
    n = len(values)
    q2 = values[n // 4 : n // 2]
    q4 = values[(3 * n) // 4 :]
    m2, m4 = sum(q2) / len(q2), sum(q4) / len(q4)
    change = (m4 - m2) / m2
    return {
        "samples": n,
        "min_mb": round(min(values), 1),
        "max_mb": round(max(values), 1),
        "q2_mean_mb": round(m2, 1),
        "q4_mean_mb": round(m4, 1),
        "change": round(change, 4),
        "flat": abs(change) <= 0.10,
    }


def table(result: dict[str, Any]) -> str:
    lines = [
        f"{'type':<12}{'requests':>9}{'ok':>7}{'busy':>7}{'errors':>7}{'p50 ms':>10}{'p95 ms':>10}",
    ]
    for kind, row in result["mixed"].items():
        lines.append(
            f"{kind:<12}{row['requests']:>9}{row['ok']:>7}{row['busy']:>7}{row['errors']:>7}"
            f"{_fmt(row['p50_ms']):>10}{_fmt(row['p95_ms']):>10}"
        )
    idle, during = result["search_idle"], result["search_during_generation"]
    gen = result["long_generation"]
    rss = result["rss"]
    lines += [
        "",
        f"search p50/p95 idle: {_fmt(idle.get('p50_ms'))}/{_fmt(idle.get('p95_ms'))} ms "
        f"({idle.get('requests', 0)} requests); during a {gen.get('seconds', '?')} s generation "
        f"of {gen.get('completion_tokens', '?')} tokens: {_fmt(during.get('p50_ms'))}/"
        f"{_fmt(during.get('p95_ms'))} ms ({during.get('requests', 0)} requests)",
        f"server RSS (mixed phase): {rss.get('min_mb')}-{rss.get('max_mb')} MB, 2nd quarter "
        f"{rss.get('q2_mean_mb')} MB -> last quarter {rss.get('q4_mean_mb')} MB "
        f"({_pct_change(rss.get('change'))}, flat: {rss.get('flat')})",
        f"errors: {result['errors']}",
    ]
    return "\n".join(lines)


def _fmt(value: float | None) -> str:
    return "-" if value is None else f"{value:.0f}"


def _pct_change(change: float | None) -> str:
    return "-" if change is None else f"{change:+.1%}"

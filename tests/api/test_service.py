"""Server-side helpers that need no server: file names, generation slots, the thread pump."""

from __future__ import annotations

import asyncio
import threading
import time

import pytest

from rag.server import GenerationLimiter, Pump, ServerBusyError, safe_filename


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("report.pdf", "report.pdf"),
        ("../../etc/passwd.md", "passwd.md"),
        ("..\\..\\Windows\\win.ini.txt", "win.ini.txt"),
        ("/abs/path/Paper.PDF", "Paper.pdf"),
        ("a\x00b\x1fc\u202e.md", "abc.md"),
        ("..", "upload"),
        ("....md", "upload.md"),
        ("README", "README"),
        ("report.tar.gz", "report.tar.gz"),
        ("name.", "name"),
        (".hidden.md", "hidden.md"),
        ("", "upload"),
        ("spaces and ünïcode (v2).html", "spaces and ünïcode _v2.html"),
        ("x" * 500 + ".nxml", "x" * 115 + ".nxml"),
    ],
)
def test_safe_filename(raw: str, expected: str) -> None:
    name = safe_filename(raw)
    assert name == expected
    assert "/" not in name and "\\" not in name and not name.startswith(".")


def test_limiter_times_out_with_retry_after() -> None:
    limiter = GenerationLimiter(1, 0.2)
    limiter.acquire()
    started = time.monotonic()
    with pytest.raises(ServerBusyError) as info:
        limiter.acquire()
    assert 0.15 < time.monotonic() - started < 2
    assert info.value.http_status == 503 and info.value.retry_after >= 1
    with pytest.raises(ServerBusyError):
        asyncio.run(limiter.acquire_async())
    limiter.release()
    asyncio.run(limiter.acquire_async())  # free again
    assert limiter.active == 1


def test_limiter_hands_a_released_slot_to_a_waiter() -> None:
    limiter = GenerationLimiter(1, 5)
    limiter.acquire()
    threading.Timer(0.2, limiter.release).start()
    limiter.acquire()
    assert limiter.active == 1


def test_pump_runs_the_iterator_on_one_thread_and_closes_it_there() -> None:
    seen: list[str] = []
    released = threading.Event()

    def items():
        try:
            for i in range(1000):
                seen.append(threading.current_thread().name)
                yield i
                time.sleep(0.001)
        finally:
            seen.append("closed on " + threading.current_thread().name)

    pump = Pump(items, released.set)
    for item in pump:
        if item == 3:
            break  # the consumer leaves early: the worker must stop and clean up
    assert released.wait(5)
    assert len(set(seen[:-1])) == 1 and seen[-1] == "closed on " + seen[0]
    assert seen[0] != threading.current_thread().name


def test_pump_reraises_errors_in_the_consumer() -> None:
    def broken():
        yield 1
        raise ValueError("boom")

    with pytest.raises(ValueError, match="boom"):
        list(Pump(broken))

    async def consume() -> list[int]:
        return [x async for x in Pump(broken, loop=asyncio.get_running_loop()).aiter()]

    with pytest.raises(ValueError, match="boom"):
        asyncio.run(consume())

"""Run `rag serve` as a child process and wait until it answers.

For tests, benchmarks and scripts that need a real server on loopback: the child binds port 0
itself and prints its URLs, so there is no race for a "free" port, and its output goes to a log
file (a full pipe would stall it).
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time
from collections.abc import Iterable
from pathlib import Path
from types import TracebackType

_HEALTH_LINE = re.compile(r"^health\s+(http://\S+)/healthz", re.MULTILINE)


class ServerProcess:
    """``with ServerProcess(index_dir, overrides=[...]) as server: httpx.get(server.url)``."""

    def __init__(
        self,
        index_dir: Path | str,
        *,
        preset: str | None = "fast",
        overrides: Iterable[str] = (),
        extra_args: Iterable[str] = (),
        workdir: Path | str | None = None,
        env: dict[str, str] | None = None,
        start_timeout_s: float = 300.0,
    ) -> None:
        self.index_dir = Path(index_dir)
        self.workdir = Path(workdir or self.index_dir.parent)
        self.log_path = self.workdir / "server.log"
        self.start_timeout_s = start_timeout_s
        args = [sys.executable, "-m", "rag.cli", "serve", "--host", "127.0.0.1", "--port", "0"]
        args += ["--index", str(self.index_dir)]
        if preset:
            args += ["--preset", preset]
        for item in overrides:
            args += ["--set", item]
        self.args = [*args, *extra_args]
        self.env = {
            **os.environ,
            "HF_HUB_OFFLINE": "1",
            "TOKENIZERS_PARALLELISM": "false",
            "GRADIO_ANALYTICS_ENABLED": "False",
            "PYTHONUNBUFFERED": "1",
            **(env or {}),
        }
        self.url = ""
        self._proc: subprocess.Popen[bytes] | None = None

    def start(self) -> str:
        import httpx

        self.workdir.mkdir(parents=True, exist_ok=True)
        log = self.log_path.open("wb")
        # The working directory keeps a stray rag.toml of the caller out of the child's settings.
        self._proc = subprocess.Popen(
            self.args, cwd=self.workdir, env=self.env, stdout=log, stderr=subprocess.STDOUT
        )
        log.close()
        deadline = time.monotonic() + self.start_timeout_s
        while time.monotonic() < deadline:
            if self._proc.poll() is not None:
                raise RuntimeError(
                    f"rag serve exited ({self._proc.returncode}):\n{self.log_tail()}"
                )
            if not self.url:
                found = _HEALTH_LINE.search(self.log_path.read_text("utf-8", "replace"))
                self.url = found.group(1) if found else ""
            if self.url:
                try:
                    if httpx.get(f"{self.url}/healthz", timeout=5).status_code == 200:
                        return self.url
                except httpx.HTTPError:
                    pass
            time.sleep(0.5)
        self.stop()
        raise TimeoutError(
            f"rag serve did not answer in {self.start_timeout_s:.0f} s:\n{self.log_tail()}"
        )

    def stop(self) -> None:
        proc, self._proc = self._proc, None
        if proc is None or proc.poll() is not None:
            return
        proc.terminate()
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=10)

    def log_tail(self, lines: int = 60) -> str:
        try:
            return "\n".join(self.log_path.read_text("utf-8", "replace").splitlines()[-lines:])
        except OSError:
            return "(no log)"

    def __enter__(self) -> ServerProcess:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()


__all__ = ["ServerProcess"]

"""Parse untrusted files in a separate process that can be killed.

PDF and XML parsers can be driven into near-infinite loops or memory blow-ups by hostile files
(PDF bombs, billion laughs). The worker runs under an address-space cap and each file gets a
wall-clock limit; on timeout or crash the worker is replaced and only that file fails. A scan
read by OCR reports each page as it goes (``("page", done, total)``): the parent passes it on
to whoever set ``rag.ingest.ocr.page_progress``, and the limit then applies to each page, so
a long scan is not cut off while it is still making progress.
"""

from __future__ import annotations

import contextlib
import multiprocessing as mp
import resource
import signal
from multiprocessing.connection import Connection
from typing import Any

from rag import errors as _errors
from rag.errors import CorruptFileError, IngestError, LoaderTimeoutError
from rag.ingest.ocr import page_progress
from rag.types import DocMeta, LoadedDocument

# Error classes by name, so the sandboxed parser can send them across the process boundary.
errors_by_name: dict[str, type[IngestError]] = {
    name: cls
    for name, cls in vars(_errors).items()
    if isinstance(cls, type) and issubclass(cls, IngestError)
}

STARTUP_S = 120.0  # a fresh worker's imports (pdfplumber, lxml, trafilatura) on a busy machine


def _worker(conn: Connection, max_memory_mb: int) -> None:  # pragma: no cover - child process
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    limit = max_memory_mb * 1024 * 1024
    with contextlib.suppress(ValueError, OSError):
        resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
    from rag.ingest.registry import _loader, run_loader

    while True:
        try:
            request = conn.recv()
        except EOFError:
            return
        if request is None:
            return
        fmt, data, meta = request
        # Import the parser first, then say so: the time limit is for parsing this file, not
        # for the imports a fresh worker pays once (seconds on a busy machine).
        with contextlib.suppress(Exception):
            _loader(fmt)
        conn.send(("started",))
        token = page_progress.set(lambda done, total: conn.send(("page", done, total)))
        try:
            loaded = run_loader(fmt, data, DocMeta.from_dict(meta))
            conn.send(("ok", loaded))
        except IngestError as exc:
            conn.send(("error", type(exc).__name__, str(exc)))
        except MemoryError:
            conn.send(("error", "CorruptFileError", "parser exceeded its memory limit"))
        except RecursionError:
            conn.send(("error", "CorruptFileError", "structure nested too deeply to parse"))
        except Exception as exc:
            detail = " ".join(str(exc).split())[:200]  # reasons are one line
            message = f"parser failed: {type(exc).__name__}: {detail}"
            conn.send(("error", "CorruptFileError", message))
        finally:
            page_progress.reset(token)


class LoaderProcess:
    """One long-lived parser process; replaced whenever a file kills or stalls it."""

    def __init__(self, timeout_s: float, max_memory_mb: int) -> None:
        self.timeout_s = timeout_s
        self.max_memory_mb = max_memory_mb
        self._ctx = mp.get_context("spawn")
        self._proc: Any = None
        self._conn: Connection | None = None

    def _start(self) -> None:
        parent, child = self._ctx.Pipe()
        self._proc = self._ctx.Process(
            target=_worker, args=(child, self.max_memory_mb), daemon=True, name="rag-loader"
        )
        self._proc.start()
        child.close()
        self._conn = parent

    def _kill(self) -> None:
        if self._proc is not None:
            self._proc.kill()
            self._proc.join(timeout=5)
        if self._conn is not None:
            self._conn.close()
        self._proc = None
        self._conn = None

    def load(self, fmt: str, data: bytes, meta: DocMeta) -> LoadedDocument:
        if self._proc is None or not self._proc.is_alive():
            self._start()
        assert self._conn is not None
        try:
            self._conn.send((fmt, data, meta.to_dict()))
            # A fresh worker imports the parser before it starts: that wait is not parsing.
            if not self._conn.poll(max(STARTUP_S, self.timeout_s)):
                self._kill()
                raise LoaderTimeoutError(f"the parser process did not start in {STARTUP_S:.0f} s")
            reply = self._conn.recv()
            on_page = page_progress.get()
            while reply[0] in ("started", "page"):
                if reply[0] == "page" and on_page is not None:
                    on_page(reply[1], reply[2])
                if not self._conn.poll(self.timeout_s):
                    self._kill()
                    what = "an OCR page" if reply[0] == "page" else "parsing"
                    raise LoaderTimeoutError(
                        f"{what} took longer than {self.timeout_s:g} s (ingest.timeout_s)"
                    )
                reply = self._conn.recv()
        except (EOFError, BrokenPipeError, ConnectionResetError, OSError) as exc:
            self._kill()
            raise CorruptFileError("the parser crashed on this file") from exc
        if reply[0] == "ok":
            return reply[1]
        _, name, message = reply
        raise errors_by_name.get(name, CorruptFileError)(message)

    def close(self) -> None:
        if self._conn is not None and self._proc is not None and self._proc.is_alive():
            try:
                self._conn.send(None)
                self._proc.join(timeout=2)
            except (BrokenPipeError, OSError):
                pass
        self._kill()

    def __enter__(self) -> LoaderProcess:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

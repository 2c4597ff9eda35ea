"""The server layer: what the HTTP API and the Gradio UI share around one Assistant.

The generation limiter, the upload folder, the feedback log and the thread that runs a
generation belong to the server, not to the library: both web shells use this one object so a
chat in the UI and a request to /api/ask count against the same generation slots.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import logging
import os
import queue
import re
import threading
import time
import unicodedata
import urllib.parse
import uuid
from collections.abc import AsyncIterator, Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from rag.errors import RagError
from rag.models import sha256_file
from rag.schemas import StreamEvent
from rag.settings import Settings
from rag.types import Filters

log = logging.getLogger(__name__)

MAX_NAME_CHARS = 120


class ServerBusyError(RagError):
    """Every generation slot stayed taken for server.queue_timeout_s."""

    http_status = 503

    def __init__(self, message: str, retry_after: int) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class GenerationLimiter:
    """At most ``limit`` generations at once; callers wait a bounded time for a slot.

    A counter under a condition rather than a semaphore: the async side polls without holding
    a thread, and a cancelled waiter never owns a slot it cannot give back.
    """

    def __init__(self, limit: int, timeout_s: float) -> None:
        self.limit = limit
        self.timeout_s = timeout_s
        self.active = 0
        self._cond = threading.Condition()

    def _busy(self) -> ServerBusyError:
        retry = max(1, round(self.timeout_s) or 1)
        return ServerBusyError(
            f"all {self.limit} generation slot(s) are busy (waited {self.timeout_s:g} s, "
            "server.queue_timeout_s); retry shortly or raise server.max_concurrent_generations",
            retry,
        )

    def try_acquire(self) -> bool:
        with self._cond:
            if self.active < self.limit:
                self.active += 1
                return True
            return False

    def acquire(self) -> None:
        """Blocking wait (worker threads, the Gradio UI); ServerBusyError after the timeout."""
        with self._cond:
            if not self._cond.wait_for(lambda: self.active < self.limit, self.timeout_s):
                raise self._busy()
            self.active += 1

    async def acquire_async(self) -> None:
        """Waits on the event loop without blocking it or holding a worker thread."""
        deadline = time.monotonic() + self.timeout_s
        while not self.try_acquire():
            if time.monotonic() >= deadline:
                raise self._busy()
            await asyncio.sleep(0.05)

    def release(self) -> None:
        with self._cond:
            self.active -= 1
            self._cond.notify()

    @contextmanager
    def slot(self) -> Iterator[None]:
        self.acquire()
        try:
            yield
        finally:
            self.release()


class Pump:
    """Runs a blocking iterator on a thread of its own and hands its items over.

    The iterator is created, advanced and closed on that one thread (a generator holds the
    model's lock while it is consumed), so the event loop never blocks on a token and a
    departed client only sets a flag the thread checks between items.
    """

    KEEPALIVE = object()  # yielded by ``aiter`` after a quiet spell

    def __init__(
        self,
        make: Callable[[], Iterable[Any]],
        on_exit: Callable[[], None] | None = None,
        loop: asyncio.AbstractEventLoop | None = None,
    ) -> None:
        self._make = make
        self._on_exit = on_exit
        self._loop = loop
        self._async_q: asyncio.Queue[tuple[str, Any]] | None = asyncio.Queue() if loop else None
        self._sync_q: queue.Queue[tuple[str, Any]] = queue.Queue()
        self._cancel = threading.Event()
        self._thread = threading.Thread(target=self._run, name="rag-generation", daemon=True)
        self._thread.start()

    def _put(self, kind: str, value: Any) -> None:
        if self._loop is None:
            self._sync_q.put((kind, value))
            return
        try:
            self._loop.call_soon_threadsafe(self._async_q.put_nowait, (kind, value))  # type: ignore[union-attr]
        except RuntimeError:  # the loop closed: nobody is listening any more
            self._cancel.set()

    def _run(self) -> None:
        iterator: Any = None
        try:
            iterator = iter(self._make())
            for item in iterator:
                if self._cancel.is_set():
                    break
                self._put("item", item)
            self._put("end", None)
        except BaseException as exc:
            self._put("error", exc)
        finally:
            try:
                close = getattr(iterator, "close", None)
                if close is not None:
                    close()
            finally:
                if self._on_exit is not None:
                    self._on_exit()

    def cancel(self) -> None:
        self._cancel.set()

    def join(self, timeout: float | None = None) -> None:
        self._thread.join(timeout)

    def __iter__(self) -> Iterator[Any]:
        try:
            while True:
                kind, value = self._sync_q.get()
                if kind == "end":
                    return
                if kind == "error":
                    raise value
                yield value
        finally:
            self.cancel()

    async def aiter(self, keepalive_s: float | None = None) -> AsyncIterator[Any]:
        """Items as they come; ``Pump.KEEPALIVE`` after ``keepalive_s`` of silence."""
        assert self._async_q is not None, "Pump was created without an event loop"
        try:
            while True:
                try:
                    kind, value = await asyncio.wait_for(self._async_q.get(), keepalive_s)
                except TimeoutError:
                    yield self.KEEPALIVE
                    continue
                if kind == "end":
                    return
                if kind == "error":
                    raise value
                yield value
        finally:
            self.cancel()


# -- uploads --------------------------------------------------------------------------------


_UNSAFE = re.compile(r"[^\w. -]+")  # \w: letters and digits of any script


def safe_filename(name: str, default: str = "upload") -> str:
    """A plain file name from whatever a client sent: no folders, no control characters,
    no leading dots, at most MAX_NAME_CHARS, the extension kept (lower-cased)."""
    name = unicodedata.normalize("NFKC", name or "")
    name = re.split(r"[\\/]", name)[-1]  # drops ../, C:\..., absolute paths
    name = "".join(ch for ch in name if unicodedata.category(ch)[0] != "C")
    name = _UNSAFE.sub("_", name)
    stem, dot, ext = name.rpartition(".")
    ext = re.sub(r"[\W_]", "", ext).lower()[:16]
    if not dot or not ext:
        stem, ext = name, ""
    stem = re.sub(r"_+", "_", stem).strip(" ._-") or default
    stem = stem[: MAX_NAME_CHARS - len(ext) - 1]
    return f"{stem}.{ext}" if ext else stem


class ServerState:
    """One Assistant plus what the web shells add around it."""

    def __init__(self, assistant: Any, settings: Settings | None = None) -> None:
        self.assistant = assistant
        self.settings = settings or assistant.settings
        server = self.settings.server
        self.limiter = GenerationLimiter(server.max_concurrent_generations, server.queue_timeout_s)
        self.data_dir = Path(server.data_dir or Path(self.settings.index.dir) / "data").resolve()
        self._feedback_lock = threading.Lock()
        self._upload_lock = threading.Lock()

    # -- folders ------------------------------------------------------------------------------

    @property
    def uploads_dir(self) -> Path:
        path = self.data_dir / "uploads"
        path.mkdir(parents=True, exist_ok=True)
        return path

    @property
    def feedback_path(self) -> Path:
        return self.data_dir / "feedback.jsonl"

    def partial_path(self) -> Path:
        """Where an upload is written while it arrives (inside the data dir, hidden)."""
        return self.uploads_dir / f".partial-{uuid.uuid4().hex}"

    def keep_upload(self, partial: Path, name: str) -> Path:
        """Move a received file to its sanitised name; same bytes under that name are reused,
        other bytes get a numbered name instead of overwriting."""
        base = safe_filename(name)
        stem, dot, ext = base.rpartition(".")
        if not dot:
            stem, ext = base, ""
        with self._upload_lock:
            digest = sha256_file(partial)
            for n in range(10_000):
                candidate = self.uploads_dir / (
                    base if n == 0 else f"{stem}-{n}{'.' + ext if ext else ''}"
                )
                if candidate.exists():
                    if candidate.is_file() and sha256_file(candidate) == digest:
                        partial.unlink(missing_ok=True)
                        return candidate
                    continue
                os.replace(partial, candidate)
                return candidate
        raise RagError(f"too many uploads named {base!r}")

    def is_upload(self, path: str | Path) -> bool:
        try:
            return Path(path).resolve().is_relative_to(self.data_dir / "uploads")
        except (OSError, ValueError):
            return False

    def remove_document(self, doc_id: str) -> Any:
        """Remove from the index, and delete the file too when it was uploaded here."""
        result = self.assistant.remove(doc_id)
        if result.path and self.is_upload(result.path):
            Path(result.path).unlink(missing_ok=True)
        return result

    def shown_path(self, path: str) -> str:
        """Report upload paths relative to the data dir (no server layout in responses)."""
        try:
            return str(Path(path).resolve().relative_to(self.data_dir))
        except ValueError:
            return path

    # -- feedback -------------------------------------------------------------------------------

    def record_feedback(
        self,
        *,
        question: str,
        answer: str,
        rating: str,
        comment: str | None = None,
        answer_fingerprints: dict[str, str] | None = None,
        source: str = "api",
    ) -> float:
        now = time.time()
        record = {
            "timestamp": now,
            "time": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(now)),
            "source": source,
            "question": question,
            "answer": answer,
            "rating": rating,
            "comment": comment,
            "answer_fingerprints": answer_fingerprints or {},
            "fingerprints": self.assistant.fingerprints(),
        }
        line = json.dumps(record, ensure_ascii=False) + "\n"
        with self._feedback_lock:
            self.data_dir.mkdir(parents=True, exist_ok=True)
            with self.feedback_path.open("a", encoding="utf-8") as handle:
                handle.write(line)
        return now

    # -- models ---------------------------------------------------------------------------------

    def generator_id(self) -> str:
        """The raw generator's model id, without loading it when it is not loaded yet."""
        if "generator" in self.assistant.__dict__:
            return str(self.assistant.generator.name)
        g = self.settings.generate
        if g.backend == "remote":
            return f"remote:{g.remote_model or g.base_url}"
        return g.model

    def loaded_models(self) -> dict[str, str | None]:
        loaded = self.assistant.__dict__
        embedder = loaded.get("embedder")
        generator = loaded.get("generator")
        reranker = loaded.get("reranker")
        return {
            "embedder": getattr(embedder, "name", None),
            "generator": getattr(generator, "name", None),
            "reranker": getattr(reranker, "name", None),
        }

    def standalone(self, history: Sequence[dict[str, str]], question: str) -> str | None:
        """The rewritten question for a follow-up, or None when it already stands alone."""
        if not history:
            return None
        rewritten = self.assistant.standalone_question(history, question)
        return rewritten if rewritten != question else None

    def answer_stream(
        self,
        question: str,
        history: Sequence[dict[str, str]] = (),
        *,
        k: int | None = None,
        doc_ids: Sequence[str] | None = None,
        rerank: bool | None = None,
    ) -> Iterator[Any]:
        """The ask stream both web shells run: the follow-up rewrite first (a ``status``
        event), then the Assistant's events, the final answer's citations linked to their
        place in the document."""
        standalone = self.standalone(history, question)
        if standalone:
            yield StreamEvent("status", {"standalone_question": standalone})
        for event in self.assistant.ask_stream(
            question,
            k=k,
            filters=Filters(doc_ids=tuple(doc_ids)) if doc_ids else None,
            rerank=rerank,
            standalone=standalone,
        ):
            if event.type == "final":
                self.link_citations(event.data)
            yield event

    # -- quotes where they stand --------------------------------------------------------------

    def view_signature(self, doc_id: str, start: int, end: int) -> str:
        """What lets a plain link (a new tab sends no Bearer key) open one span of one document
        when keys are set: an HMAC of the span under the API key."""
        key = self.settings.server.api_key
        if not key:
            return ""
        message = f"{doc_id}\x00{start}\x00{end}".encode()
        return hmac.new(key.encode(), message, hashlib.sha256).hexdigest()[:32]

    def view_link(self, doc_id: str, start: int, end: int) -> str:
        query = {"start": start, "end": end}
        signature = self.view_signature(doc_id, start, end)
        if signature:
            query["sig"] = signature  # type: ignore[assignment]
        path = f"/api/documents/{urllib.parse.quote(doc_id, safe='')}/view"
        return f"{path}?{urllib.parse.urlencode(query)}#quote"

    def trial_rows(self, doc_ids: Sequence[str] | None = None) -> list[dict[str, Any]]:
        """The trials table as JSON rows, each cell with the link to where it stands."""
        return [
            row.to_dict(lambda c: self.view_link(c.doc_id, c.start, c.end))
            for row in self.assistant.trials(doc_ids)
        ]

    def link_citations(self, response: Any) -> Any:
        """Each citation's ``view_url``: its first quote (else its passage) where it stands."""
        for citation in getattr(response, "citations", None) or []:
            span = citation.quotes[0] if citation.quotes else citation
            citation.view_url = self.view_link(citation.doc_id, span.char_start, span.char_end)
        return response


__all__ = [
    "GenerationLimiter",
    "Pump",
    "ServerBusyError",
    "ServerState",
    "safe_filename",
]

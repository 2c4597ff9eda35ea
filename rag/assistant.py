"""The one library object every shell (CLI, HTTP API, Gradio UI, eval harness) talks to."""

from __future__ import annotations

import hashlib
import json
import logging
import threading
from collections.abc import Iterable, Iterator, Sequence
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Any

from rag.chunk import Chunker
from rag.embed import Embedder, load_embedder
from rag.errors import DocumentNotFoundError
from rag.generate import Generator
from rag.indexer import Indexer, Progress
from rag.paths import seeds_dir
from rag.references import check_format, export
from rag.rerank import Reranker
from rag.retrieve import Retrieval, Retriever
from rag.schemas import (
    AnswerResponse,
    ClassifyResponse,
    DocumentInfo,
    IngestReport,
    IngestResult,
    SearchHit,
    SearchResponse,
    StreamEvent,
)
from rag.settings import Settings
from rag.store.index import CorpusIndex, IndexSpec, IndexStats
from rag.trials import TrialRow, trials_in
from rag.types import DocMeta, Document, Filters
from rag.verify.judge import EffectClassifier, Judge, VerdictClassifier
from rag.view import document_view

if TYPE_CHECKING:
    from rag.answer import Answerer
    from rag.verify import SupportChecker

log = logging.getLogger(__name__)
_CONFIGURED: Any = object()  # "the judge the settings name", as a default argument


class Assistant:
    """Facade over ingest, index, retrieval and answering; components load on first use."""

    def __init__(
        self,
        settings: Settings | None = None,
        *,
        embedder: Embedder | None = None,
        generator: Generator | None = None,
        reranker: Reranker | None = None,
        judge: Judge | None = None,
    ) -> None:
        """Parts given here are used instead of the ones the settings would load."""
        self.settings = settings or Settings()
        self._init_lock = threading.RLock()
        parts = {"embedder": embedder, "generator": generator, "reranker": reranker, "judge": judge}
        for name, part in parts.items():
            if part is not None:
                self.__dict__[name] = part  # what the cached property would have built

    # -- components ---------------------------------------------------------------------------

    @cached_property
    def embedder(self) -> Embedder:
        return load_embedder(self.settings.embed)

    @cached_property
    def chunker(self) -> Chunker:
        return Chunker(self.settings.chunk, self.embedder.count_tokens)

    @cached_property
    def spec(self) -> IndexSpec:
        return IndexSpec(
            embedder=self.embedder.name,
            embedder_fingerprint=self.embedder.fingerprint,
            dim=self.embedder.dim,
            chunker=self.chunker.describe(),
        )

    @cached_property
    def index(self) -> CorpusIndex:
        with self._init_lock:
            return CorpusIndex(self.settings.index.dir, self.spec, self.settings.index)

    @cached_property
    def indexer(self) -> Indexer:
        return Indexer(self.index, self.embedder, self.chunker, self.settings.ingest)

    @cached_property
    def retriever(self) -> Retriever:
        return Retriever(
            self.index,
            self.embedder,
            self.settings.retrieve,
            reranker=self.reranker,
            rerank_depth=self.settings.rerank.depth,
        )

    @cached_property
    def generator(self) -> Generator:
        from rag.generate import load_generator

        with self._init_lock:
            return load_generator(self.settings.generate)

    @cached_property
    def judge(self) -> Judge | None:
        """The trained answer judge (``rag/verify/artifacts/``), unless ``verify.judge=none``."""
        if self.settings.verify.judge == "none":
            return None
        from rag.verify.judge import shared_judge

        return shared_judge(self.settings.verify.judge_dir)

    @cached_property
    def verdicts(self) -> VerdictClassifier | None:
        """The yes/no/maybe classifier shipped beside the judge, unless answer.verdict=none."""
        if self.settings.answer.verdict != "trained":
            return None
        from rag.verify.judge import VerdictClassifier

        return VerdictClassifier(self.settings.verify.judge_dir)

    @cached_property
    def effects(self) -> EffectClassifier:
        """The effect-direction head shipped beside the judge (trial results' direction)."""
        return EffectClassifier(self.settings.verify.judge_dir)

    def trials(self, doc_ids: Sequence[str] | None = None) -> list[TrialRow]:
        """The trials the indexed documents report, every cell an exact cited span."""
        wanted = list(doc_ids) if doc_ids else [d.doc_id for d in self.index.documents()]
        rows: list[TrialRow] = []
        for doc_id in wanted:
            rows += trials_in(self._document(doc_id), self.effects)
        return rows

    def _document(self, doc_id: str) -> Document:
        doc = self.index.load_document(doc_id)
        if doc is None:
            raise DocumentNotFoundError(f"no indexed document with id {doc_id!r}")
        return doc

    def support_checker(
        self, judge: Judge | None = _CONFIGURED, *, corpus_aliases: bool = True
    ) -> SupportChecker:
        """The sentence-support checker answers are verified with.

        ``judge``: default the configured one, None for the rules alone. ``corpus_aliases``:
        abbreviations learned from the index (False checks pairs without touching an index).
        """
        from rag.retrieve.expand import QueryExpander
        from rag.verify import SupportChecker

        expander = self.retriever.expander() if corpus_aliases else QueryExpander()
        return SupportChecker(
            self.embedder.embed,
            aliases=expander.related,
            threshold=self.settings.verify.support_threshold,
            judge=self.judge if judge is _CONFIGURED else judge,
        )

    @cached_property
    def answerer(self) -> Answerer:
        from rag.answer import Answerer

        return Answerer(
            retriever=self.retriever,
            embedder=self.embedder,
            generator=lambda: self.generator,
            checker=self.support_checker,
            judge=lambda: self.judge,
            verdicts=lambda: self.verdicts,
            ground=self.settings.verify.grounding,
            answer=self.settings.answer,
            generate=self.settings.generate,
            fingerprints=self.fingerprints,
        )

    def standalone_question(self, history: Sequence[dict[str, str]], question: str) -> str:
        """A follow-up rewritten to stand alone from the chat ``history`` (or unchanged); the
        generator loads only when a rewrite is needed."""
        from rag.conversation import standalone_question

        return standalone_question(lambda: self.generator, list(history), question)

    @staticmethod
    def supported_suffixes() -> list[str]:
        """File name endings ``add`` reads (PDF, HTML, Markdown, text, JATS/PubMed XML...)."""
        from rag.ingest import SUFFIXES

        return sorted(SUFFIXES)

    def fingerprints(self) -> dict[str, str]:
        """What a run depends on, for reproducible evaluation records."""
        out = {
            "embedder": f"{self.embedder.name}@{self.embedder.fingerprint}",
            "index": self.index_fingerprint(),
            "settings": hashlib.sha256(
                json.dumps(self.settings.fingerprint(), sort_keys=True).encode()
            ).hexdigest()[:16],
        }
        if "generator" in self.__dict__:
            out["generator"] = f"{self.generator.name}@{self.generator.fingerprint}"
        reranker = self.__dict__.get("reranker")
        if reranker is not None:
            out["reranker"] = f"{reranker.name}@{getattr(reranker, 'fingerprint', '')}"
        return out

    @cached_property
    def reranker(self) -> Reranker | None:
        """The configured reranker; the generator reranker judges with this Assistant's model."""
        from rag.rerank.factory import load_reranker

        if self.settings.rerank.method == "generator":
            return load_reranker(self.settings.rerank, generator=self.generator)
        return load_reranker(self.settings.rerank)

    # -- index management ---------------------------------------------------------------------

    def ensure_index(self, progress: Progress | None = None) -> IngestReport | None:
        """Build the seed-corpus index when the index directory holds no index yet."""
        with self._init_lock:
            if CorpusIndex.exists(self.settings.index.dir) or not self.settings.index.auto_seed:
                return None
            log.info("no index in %s yet: indexing the seed corpus", self.settings.index.dir)
            return self.add([seeds_dir()], progress)

    def add(self, paths: Iterable[Path | str], progress: Progress | None = None) -> IngestReport:
        return self.indexer.add_paths([Path(p) for p in paths], progress)

    def add_documents(
        self, docs: Iterable[Document], progress: Progress | None = None, total: int | None = None
    ) -> IngestReport:
        return self.indexer.add_documents(docs, progress, total)

    def remove(self, ref: str) -> IngestResult:
        return self.indexer.remove(ref)

    def documents(self) -> list[DocumentInfo]:
        return [
            DocumentInfo(
                doc_id=d.doc_id,
                title=d.title,
                source=d.source,
                format=d.format,
                kind=d.kind,
                year=d.year,
                chunks=d.n_chunks,
                added_at=d.added_at,
                authors=d.meta.get("authors", []),
                date=d.meta.get("date", ""),
                doi=d.meta.get("doi", ""),
                pmid=d.meta.get("pmid", ""),
                url=d.meta.get("url", ""),
            )
            for d in self.index.documents()
        ]

    def references(self, doc_ids: Sequence[str] | None = None, fmt: str = "bibtex") -> str:
        """Indexed documents (all, or ``doc_ids`` in that order) as BibTeX, RIS or CSL-JSON."""
        form = check_format(fmt)
        records = {d.doc_id: d for d in self.index.documents()}
        wanted = list(dict.fromkeys(doc_ids)) if doc_ids is not None else list(records)
        missing = [d for d in wanted if d not in records]
        if missing:
            raise DocumentNotFoundError(f"no indexed document with id {missing[0]!r}")
        picked = [
            (d, DocMeta.from_dict({"title": records[d].title, **records[d].meta})) for d in wanted
        ]
        return export(picked, form)

    def view(self, doc_id: str, start: int, end: int) -> str:
        """An HTML page showing ``start:end`` of a document where it stands: a PDF's page
        rendered with the quote boxed, else the indexed text with the span marked."""
        return document_view(self._document(doc_id), start, end)

    def stats(self) -> IndexStats:
        return self.index.stats()

    def index_fingerprint(self) -> str:
        """Changes whenever the indexed content or the way it was embedded changes."""
        manifest = self.index.manifest()
        payload = json.dumps(
            {
                "manifest": {k: manifest.get(k) for k in ("embedder", "chunker", "schema_version")},
                "generation": self.index.generation(),
                "dir": str(self.settings.index.dir.resolve()),
            },
            sort_keys=True,
        )
        return hashlib.sha256(payload.encode()).hexdigest()[:16]

    # -- retrieval ----------------------------------------------------------------------------

    def retrieve(
        self,
        query: str,
        *,
        k: int | None = None,
        filters: Filters | None = None,
        mode: str | None = None,
        rerank: bool | None = None,
    ) -> Retrieval:
        self.ensure_index()
        return self.retriever.run(query, k=k, filters=filters, mode=mode, rerank=rerank)

    def ask(
        self,
        question: str,
        *,
        k: int | None = None,
        filters: Filters | None = None,
        rerank: bool | None = None,
        standalone: str | None = None,
    ) -> AnswerResponse:
        """A verified, cited answer (or an abstention). ``k``: passages the answer may use
        (default ``answer.max_passages``); ``standalone``: the rewritten follow-up."""
        self.ensure_index()
        return self.answerer.ask(
            question, k=k, filters=filters, rerank=rerank, standalone=standalone
        )

    def classify(
        self,
        question: str,
        choices: tuple[str, ...] = ("yes", "no", "maybe"),
        *,
        k: int | None = None,
        filters: Filters | None = None,
        rerank: bool | None = None,
    ) -> ClassifyResponse:
        """One of ``choices`` from the passages (yes/no/maybe by default)."""
        self.ensure_index()
        return self.answerer.classify(question, choices, k=k, filters=filters, rerank=rerank)

    def ask_stream(
        self,
        question: str,
        *,
        k: int | None = None,
        filters: Filters | None = None,
        rerank: bool | None = None,
        standalone: str | None = None,
    ) -> Iterator[StreamEvent]:
        """Events: status, evidence, token..., final (see ``rag.answer``)."""
        self.ensure_index()
        return self.answerer.stream(
            question, k=k, filters=filters, rerank=rerank, standalone=standalone
        )

    def search(
        self,
        query: str,
        *,
        k: int | None = None,
        filters: Filters | None = None,
        mode: str | None = None,
        rerank: bool | None = None,
    ) -> SearchResponse:
        result = self.retrieve(query, k=k, filters=filters, mode=mode, rerank=rerank)
        return SearchResponse(
            query=query,
            expanded_query=result.expanded,
            hits=[SearchHit.from_hit(i, h) for i, h in enumerate(result.hits, start=1)],
            timings_ms=result.timings_ms,
            index_fingerprint=self.index_fingerprint(),
        )

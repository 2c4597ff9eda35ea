"""What the UI's buttons do: ask (streamed through the server's generation slots), feedback,
add and remove documents, export references. Each handler talks to the Assistant through the
shared server state."""

from __future__ import annotations

import os
import shutil
import tempfile
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")  # read when gradio is imported

import gradio as gr
from rag.ui.render import (
    answer_html,
    draft_html,
    escape,
    evidence_panel,
    report_rows,
    sources_html,
)

from rag.errors import RagError
from rag.references import SUFFIXES, check_format
from rag.schemas import AnswerResponse, Evidence, StreamEvent
from rag.server import Pump, ServerState

PROGRESS = gr.Progress()  # Gradio injects the live tracker where this is the default


class UiHandlers:
    """The Blocks app's callbacks, bound to one server state."""

    def __init__(self, state: ServerState) -> None:
        self.state = state
        self.assistant = state.assistant
        # Reference files for download: the system temp dir is one Gradio may serve from.
        self._exports = tempfile.TemporaryDirectory(prefix="onco-rag-references-")

    def doc_choices(self) -> list[tuple[str, str]]:
        return [(f"{d.title[:70]} ({d.doc_id})", d.doc_id) for d in self.assistant.documents()]

    def doc_rows(self) -> list[list[Any]]:
        return [
            [d.doc_id, d.title, d.format, d.year or "", d.chunks]
            for d in self.assistant.documents()
        ]

    def respond(
        self,
        question: str,
        chat: list[dict[str, Any]],
        conv: dict[str, Any],
        k: float,
        rerank: bool,
        doc_ids: list[str] | None,
    ) -> Iterator[tuple[Any, ...]]:
        question = (question or "").strip()
        chat = list(chat or [])
        conv = {"history": list(conv.get("history", [])), "answers": dict(conv.get("answers", {}))}
        if not question:
            yield gr.update(), chat, gr.update(), gr.update(), conv
            return
        turn = len(conv["history"]) // 2 + 1
        chat += [
            {"role": "user", "content": escape(question)},
            {"role": "assistant", "content": draft_html([], "")},
        ]
        yield "", chat, gr.update(), "", conv
        history = list(conv["history"])
        try:
            self.state.limiter.acquire()
        except RagError as exc:
            chat[-1]["content"] = f"<div class='rag-error'>{escape(exc)}</div>"
            yield "", chat, gr.update(), "", conv
            return

        def events() -> Iterator[StreamEvent]:
            yield from self.state.answer_stream(
                question, history, k=int(k), doc_ids=doc_ids, rerank=rerank
            )

        evidence: list[Evidence] = []
        draft, rewrite = "", ""
        try:
            for event in Pump(events, self.state.limiter.release):
                if event.type == "status":
                    rewrite = (
                        "<div class='rag-rewrite'>Searched as: <em>"
                        f"{escape(event.data['standalone_question'])}</em></div>"
                    )
                    yield "", chat, gr.update(), rewrite, conv
                elif event.type == "evidence":
                    evidence = list(event.data)
                    chat[-1]["content"] = draft_html(evidence, draft)
                    yield "", chat, evidence_panel(evidence), rewrite, conv
                elif event.type == "retry":
                    draft = ""  # the draft repeated the prompt's example; a second one follows
                    chat[-1]["content"] = draft_html(evidence, draft)
                    yield "", chat, gr.update(), rewrite, conv
                elif event.type == "token":
                    draft += event.data
                    chat[-1]["content"] = draft_html(evidence, draft)
                    yield "", chat, gr.update(), rewrite, conv
                elif event.type == "final":
                    response: AnswerResponse = event.data
                    chat[-1]["content"] = answer_html(response, turn)
                    conv["history"] += [
                        {"role": "user", "content": question},
                        {"role": "assistant", "content": response.answer},
                    ]
                    conv["answers"][str(len(chat) - 1)] = {
                        "question": question,
                        "answer": response.answer,
                        "fingerprints": response.fingerprints,
                    }
                    conv["cited"] = list(dict.fromkeys(c.doc_id for c in response.citations))
                    yield "", chat, sources_html(response, turn), rewrite, conv
        except RagError as exc:
            kind = escape(type(exc).__name__)
            chat[-1]["content"] = f"<div class='rag-error'>{kind}: {escape(exc)}</div>"
            yield "", chat, gr.update(), rewrite, conv

    def on_feedback(self, conv: dict[str, Any], data: gr.LikeData) -> str:
        index = data.index[0] if isinstance(data.index, (list, tuple)) else data.index
        answer = conv.get("answers", {}).get(str(index))
        if answer is None:
            return "Feedback is recorded for answers only."
        rating = "up" if data.liked is True or data.liked == "Like" else "down"
        self.state.record_feedback(
            question=answer["question"],
            answer=answer["answer"],
            rating=rating,
            answer_fingerprints=answer["fingerprints"],
            source="ui",
        )
        return f"Thanks — feedback (thumbs {rating}) recorded."

    def add_files(self, files: list[Any] | None, progress: gr.Progress = PROGRESS) -> tuple:
        if not files:
            return [], "Choose one or more files first.", gr.update(), gr.update(), gr.update()
        stored = []
        for f in files:
            src = Path(f if isinstance(f, str) else getattr(f, "name", f))
            partial = self.state.partial_path()
            shutil.copyfile(src, partial)
            stored.append(self.state.keep_upload(partial, src.name))
        progress((0, len(stored)), desc="indexing")

        def report_progress(done: int, total: int, item: str) -> None:
            progress((done, max(total, 1)), desc=Path(item).name if item else "committing")

        try:
            report = self.assistant.add(stored, report_progress)
        except RagError as exc:
            return [], f"**Failed:** {escape(exc)}", gr.update(), gr.update(), gr.update()
        counts = ", ".join(f"{v} {k}" for k, v in report.summary().items()) or "nothing to do"
        choices = self.doc_choices()
        return (
            report_rows(report),
            f"{counts} in {report.seconds:.1f} s",
            self.doc_rows(),
            gr.update(choices=choices, value=None),
            gr.update(choices=choices),
        )

    def remove_doc(self, doc_id: str | None) -> tuple:
        if not doc_id:
            return "Choose a document to remove.", gr.update(), gr.update(), gr.update()
        try:
            result = self.state.remove_document(doc_id)
            message = f"Removed **{escape(result.title or doc_id)}** ({result.chunks} chunks)."
        except RagError as exc:
            message = f"**Failed:** {escape(exc)}"
        choices = self.doc_choices()
        return (
            message,
            self.doc_rows(),
            gr.update(choices=choices, value=None),
            gr.update(choices=choices),
        )

    def references_file(self, doc_ids: list[str] | None, fmt: str) -> tuple[Any, str]:
        """A downloadable reference file of ``doc_ids`` (all documents when empty)."""
        try:
            form = check_format(fmt)
            text = self.assistant.references(doc_ids or None, form)
        except RagError as exc:
            return gr.update(value=None, visible=False), f"**Failed:** {escape(exc)}"
        path = self._export_file(f"references{SUFFIXES[form]}", text)
        count = len(doc_ids) if doc_ids else len(self.assistant.documents())
        return gr.update(value=str(path), visible=True), f"{count} reference(s) as {form}."

    def _export_file(self, name: str, text: str) -> Path:
        """``text`` as a file for download, in a folder of its own (names repeat)."""
        path = Path(self._exports.name) / uuid.uuid4().hex[:8] / name
        path.parent.mkdir()
        path.write_text(text, encoding="utf-8")
        return path

    def library_references(self, fmt: str) -> tuple[Any, str]:
        return self.references_file(None, fmt)

    def cited_references(self, conv: dict[str, Any], fmt: str) -> tuple[Any, str]:
        """The last answer's cited documents as a reference file."""
        cited = list((conv or {}).get("cited") or [])
        if not cited:
            return gr.update(value=None, visible=False), "The last answer cites no document."
        return self.references_file(cited, fmt)

    def trials(self) -> tuple[str, Any]:
        """The trials table (every cell linked to where it stands) and its CSV file."""
        from rag.trials import COLUMNS, to_csv

        try:
            rows = self.state.trial_rows()
        except RagError as exc:
            return f"<div class='rag-error'>{escape(exc)}</div>", gr.update(visible=False)
        head = "".join(f"<th>{escape(c.replace('_', ' '))}</th>" for c in COLUMNS)
        body = []
        for row in rows:
            cells = []
            for c in COLUMNS:
                value = row[c]
                if value is None:
                    cells.append("<td class='rag-empty'>—</td>")
                elif c == "direction":
                    cells.append(f"<td>{escape(value['label'])}</td>")
                else:
                    cells.append(
                        f"<td><a href='{escape(value['view_url'])}' target='_blank' "
                        f"rel='noopener'>{escape(value['text'])}</a></td>"
                    )
            body.append(f"<tr>{''.join(cells)}</tr>")
        path = self._export_file("trials.csv", to_csv(rows))
        table = (
            f"<p>{len(rows)} trial(s); every cell opens the sentence it was read from.</p>"
            f"<table class='rag-trials'><tr>{head}</tr>{''.join(body)}</table>"
        )
        return table, gr.update(value=str(path), visible=True)

    def refresh(self) -> tuple:
        choices = self.doc_choices()
        return self.doc_rows(), gr.update(choices=choices), gr.update(choices=choices)

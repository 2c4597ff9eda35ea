"""Gradio front end: chat with streamed, cited answers; documents; settings; feedback.

A thin shell over the Assistant (through the server's shared state, so UI chats and API calls
share the generation slots). It works offline: system fonts only, analytics off, every asset
served by this process.
"""

from __future__ import annotations

import html
import os
import re
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")  # read when gradio is imported

import gradio as gr

from rag.errors import RagError
from rag.schemas import AnswerResponse, Citation, Evidence, IngestReport, SearchHit, StreamEvent
from rag.server import Pump, ServerState
from rag.settings import Settings
from rag.types import Filters

PROGRESS = gr.Progress()  # Gradio injects the live tracker where this is the default
TITLE = "Oncology literature assistant"
ABSTAIN_BOX = "The indexed documents do not answer this question"
_MARKER = re.compile(r"\[(\d+)\]")

THEME_FONTS = {
    "font": ["system-ui", "-apple-system", "Segoe UI", "Roboto", "sans-serif"],
    "font_mono": ["ui-monospace", "SFMono-Regular", "Menlo", "monospace"],
}

CSS = """
.rag-answer { line-height: 1.55; }
a.rag-cite { text-decoration: none; font-weight: 600; padding: 0 1px; border-radius: 3px;
  color: var(--color-accent, #2563eb); cursor: pointer; }
a.rag-cite:hover { background: rgba(37, 99, 235, .12); }
.rag-draft { color: var(--body-text-color-subdued, #6b7280); font-style: italic; }
.rag-status { color: var(--body-text-color-subdued, #6b7280); }
.rag-evidence { border-left: 3px solid #93c5fd; padding: 2px 8px; margin: 4px 0;
  font-size: .92em; color: var(--body-text-color-subdued, #4b5563); }
.rag-abstain { background: #fffbeb; border: 1px solid #f59e0b; color: #78350f;
  border-radius: 8px; padding: 10px 12px; }
.rag-abstain .rag-reason { font-size: .85em; margin-top: 4px; opacity: .85; }
.rag-error { background: #fef2f2; border: 1px solid #ef4444; color: #7f1d1d;
  border-radius: 8px; padding: 10px 12px; }
.rag-rewrite { font-size: .9em; color: var(--body-text-color-subdued, #6b7280); }
.rag-sources h3 { margin: 4px 0 8px; font-size: 1em; }
.rag-card { border: 1px solid var(--border-color-primary, #e5e7eb); border-radius: 8px;
  padding: 8px 10px; margin: 0 0 10px; background: var(--background-fill-secondary, #fafafa);
  transition: box-shadow .3s; }
.rag-card.rag-closest { border-color: #f59e0b; background: #fffbeb; }
.rag-card summary { cursor: pointer; font-weight: 600; }
.rag-card.rag-flash { box-shadow: 0 0 0 3px #60a5fa; }
.rag-where { font-size: .82em; color: var(--body-text-color-subdued, #6b7280); margin: 4px 0; }
.rag-passage { font-size: .9em; white-space: pre-wrap; line-height: 1.45; }
.rag-passage mark { background: #fde68a; color: inherit; padding: 0 1px; }
.rag-badge { display: inline-block; font-size: .72em; font-weight: 600; border-radius: 999px;
  padding: 1px 8px; margin-left: 6px; vertical-align: middle; }
.rag-badge-supported { background: #dcfce7; color: #166534; }
.rag-badge-partial { background: #fef3c7; color: #92400e; }
.rag-badge-unsupported { background: #fee2e2; color: #991b1b; }
.rag-badge-closest { background: #fef3c7; color: #92400e; }
.rag-empty { color: var(--body-text-color-subdued, #6b7280); font-size: .9em; }
"""

# Citation markers live inside the chatbot's rendered Markdown; one delegated listener opens
# and scrolls to the matching source card, whatever the chatbot does with plain links.
HEAD = """
<script>
document.addEventListener("click", function (event) {
  var link = event.target && event.target.closest && event.target.closest("a.rag-cite");
  if (!link) { return; }
  event.preventDefault();
  event.stopPropagation();
  var id = (link.getAttribute("href") || "").replace(/^#/, "");
  var card = document.getElementById(id);
  if (!card) { return; }
  if (card.tagName === "DETAILS") { card.open = true; }
  card.scrollIntoView({behavior: "smooth", block: "center"});
  card.classList.add("rag-flash");
  setTimeout(function () { card.classList.remove("rag-flash"); }, 1600);
}, true);
</script>
"""


# -- rendering ----------------------------------------------------------------------------------


def _e(text: Any) -> str:
    return html.escape(str(text), quote=True)


def _where(section: list[str], page: int | None, doc_id: str) -> str:
    parts = [" › ".join(section)] if section else []
    if page:
        parts.append(f"p. {page}")
    parts.append(doc_id)
    return " · ".join(_e(p) for p in parts)


def highlight(passage: str, spans: list[tuple[int, int]]) -> str:
    """The passage escaped, with each (start, end) span wrapped in <mark>."""
    out, pos = [], 0
    for start, end in sorted(spans):
        start = max(start, pos)
        if end <= start:
            continue
        out.append(_e(passage[pos:start]))
        out.append(f"<mark>{_e(passage[start:end])}</mark>")
        pos = end
    out.append(_e(passage[pos:]))
    return "".join(out)


def quote_spans(citation: Citation) -> list[tuple[int, int]]:
    """Quote positions inside the cited passage (document offsets, checked against the text)."""
    spans = []
    for q in citation.quotes:
        start, end = q.char_start - citation.char_start, q.char_end - citation.char_start
        if not (0 <= start < end <= len(citation.passage)) or (
            citation.passage[start:end] != q.text
        ):
            start = citation.passage.find(q.text)
            end = start + len(q.text)
        if start >= 0 and q.text:
            spans.append((start, end))
    return spans


def answer_html(response: AnswerResponse, turn: int) -> str:
    if response.abstained:
        reason = (
            f"<div class='rag-reason'>{_e(response.abstain_reason)}</div>"
            if response.abstain_reason
            else ""
        )
        # "The indexed documents do not mention KEYNOTE-189." says more than the generic box.
        said = response.answer.rstrip(".") or ABSTAIN_BOX
        return (
            f"<div class='rag-abstain'><strong>{_e(said)}.</strong>{reason}"
            "<div class='rag-reason'>The closest passages are shown under Sources.</div></div>"
        )
    text = _e(response.answer)
    linked = _MARKER.sub(
        lambda m: f"<a class='rag-cite' href='#rag-src-{turn}-{m.group(1)}'>[{m.group(1)}]</a>",
        text,
    )
    notes = []
    if response.quoted:
        notes.append("Quoted from the passage: the drafted answer did not hold up.")
    if response.verdict is not None and not response.verdict.shown:
        notes.append("No yes/no verdict: the evidence does not decide it clearly.")
    note = "".join(f"<div class='rag-reason'>{_e(n)}</div>" for n in notes)
    return f"<div class='rag-answer'>{linked}</div>{note}"


def draft_html(evidence: list[Evidence], draft: str) -> str:
    parts = []
    if evidence:
        parts.append("<div class='rag-status'>Evidence found; writing the answer…</div>")
        parts.extend(
            f"<div class='rag-evidence'>“{_e(ev.text)}” — <em>{_e(ev.title)}</em></div>"
            for ev in evidence
        )
    else:
        parts.append("<div class='rag-status'>Searching the documents…</div>")
    if draft:
        parts.append(f"<div class='rag-draft'>{_e(draft)}</div>")
    return "".join(parts)


def evidence_panel(evidence: list[Evidence]) -> str:
    if not evidence:
        return "<div class='rag-sources'><div class='rag-empty'>No evidence yet.</div></div>"
    cards = "".join(
        f"<div class='rag-card'><div class='rag-where'>{_e(ev.title)}</div>"
        f"<div class='rag-passage'><mark>{_e(ev.text)}</mark></div></div>"
        for ev in evidence
    )
    return f"<div class='rag-sources'><h3>Evidence (answer on its way)</h3>{cards}</div>"


def evidence_spans(citation: Citation, evidence: list[Evidence]) -> list[tuple[int, int]]:
    """Evidence sentences inside the cited passage: the fallback highlight when the verifier
    recorded no quote for a citation."""
    spans = []
    for ev in evidence:
        start, end = ev.char_start - citation.char_start, ev.char_end - citation.char_start
        inside = ev.chunk_id == citation.chunk_id and 0 <= start < end <= len(citation.passage)
        if inside and citation.passage[start:end] == ev.text:
            spans.append((start, end))
    return spans


def _citation_card(c: Citation, turn: int, evidence: list[Evidence]) -> str:
    verdict = _e(c.verdict)
    spans = quote_spans(c) or evidence_spans(c, evidence)
    return (
        f"<details class='rag-card rag-verdict-{verdict}' id='rag-src-{turn}-{c.number}' open>"
        f"<summary>[{c.number}] {_e(c.title)}"
        f"<span class='rag-badge rag-badge-{verdict}'>{verdict}</span></summary>"
        f"<div class='rag-where'>{_where(c.section, c.page, c.doc_id)}</div>"
        f"<div class='rag-passage'>{highlight(c.passage, spans)}</div></details>"
    )


def _closest_card(hit: SearchHit, evidence: list[Evidence]) -> str:
    p = hit.provenance
    spans = []
    for ev in evidence:
        if ev.chunk_id == p.chunk_id:
            start = ev.char_start - p.char_start
            if start >= 0 and hit.text[start : ev.char_end - p.char_start] == ev.text:
                spans.append((start, ev.char_end - p.char_start))
    return (
        f"<details class='rag-card rag-closest' open><summary>{_e(p.title)}"
        "<span class='rag-badge rag-badge-closest'>closest passage</span></summary>"
        f"<div class='rag-where'>{_where(p.section, p.page, p.doc_id)}</div>"
        f"<div class='rag-passage'>{highlight(hit.text, spans)}</div></details>"
    )


def sources_html(response: AnswerResponse, turn: int) -> str:
    if response.abstained:
        cards = "".join(_closest_card(h, response.evidence) for h in response.passages[:3])
        body = cards or "<div class='rag-empty'>No passage matched.</div>"
        return f"<div class='rag-sources'><h3>Closest passages</h3>{body}</div>"
    cards = "".join(_citation_card(c, turn, response.evidence) for c in response.citations)
    return f"<div class='rag-sources'><h3>Sources</h3>{cards}</div>"


def report_rows(report: IngestReport) -> list[list[Any]]:
    return [
        [r.status, Path(r.path).name, r.doc_id or "", r.chunks or "", r.reason or ""]
        for r in report.results
    ]


# -- the app ------------------------------------------------------------------------------------


def build_ui(assistant: Any, settings: Settings | None = None, state: ServerState | None = None):
    """The Blocks app; ``state`` shares generation slots and folders with the HTTP API."""
    state = state or ServerState(assistant, settings)
    settings = state.settings

    def doc_choices() -> list[tuple[str, str]]:
        return [(f"{d.title[:70]} ({d.doc_id})", d.doc_id) for d in assistant.documents()]

    def doc_rows() -> list[list[Any]]:
        return [
            [d.doc_id, d.title, d.format, d.year or "", d.chunks] for d in assistant.documents()
        ]

    def respond(
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
            {"role": "user", "content": _e(question)},
            {"role": "assistant", "content": draft_html([], "")},
        ]
        yield "", chat, gr.update(), "", conv
        history = list(conv["history"])
        try:
            state.limiter.acquire()
        except RagError as exc:
            chat[-1]["content"] = f"<div class='rag-error'>{_e(exc)}</div>"
            yield "", chat, gr.update(), "", conv
            return

        def events() -> Iterator[StreamEvent]:
            standalone = state.standalone(history, question)
            if standalone:
                yield StreamEvent("status", {"standalone_question": standalone})
            yield from assistant.ask_stream(
                question,
                k=int(k),
                filters=Filters(doc_ids=tuple(doc_ids)) if doc_ids else None,
                rerank=rerank,
                standalone=standalone,
            )

        evidence: list[Evidence] = []
        draft, rewrite = "", ""
        try:
            for event in Pump(events, state.limiter.release):
                if event.type == "status":
                    rewrite = (
                        "<div class='rag-rewrite'>Searched as: <em>"
                        f"{_e(event.data['standalone_question'])}</em></div>"
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
                    yield "", chat, sources_html(response, turn), rewrite, conv
        except RagError as exc:
            kind = _e(type(exc).__name__)
            chat[-1]["content"] = f"<div class='rag-error'>{kind}: {_e(exc)}</div>"
            yield "", chat, gr.update(), rewrite, conv

    def on_feedback(conv: dict[str, Any], data: gr.LikeData) -> str:
        index = data.index[0] if isinstance(data.index, (list, tuple)) else data.index
        answer = conv.get("answers", {}).get(str(index))
        if answer is None:
            return "Feedback is recorded for answers only."
        rating = "up" if data.liked is True or data.liked == "Like" else "down"
        state.record_feedback(
            question=answer["question"],
            answer=answer["answer"],
            rating=rating,
            answer_fingerprints=answer["fingerprints"],
            source="ui",
        )
        return f"Thanks — feedback (thumbs {rating}) recorded."

    def add_files(files: list[Any] | None, progress: gr.Progress = PROGRESS) -> tuple:
        if not files:
            return [], "Choose one or more files first.", gr.update(), gr.update(), gr.update()
        stored = []
        for f in files:
            src = Path(f if isinstance(f, str) else getattr(f, "name", f))
            partial = state.partial_path()
            shutil.copyfile(src, partial)
            stored.append(state.keep_upload(partial, src.name))
        progress((0, len(stored)), desc="indexing")

        def report_progress(done: int, total: int, item: str) -> None:
            progress((done, max(total, 1)), desc=Path(item).name if item else "committing")

        try:
            report = assistant.add(stored, report_progress)
        except RagError as exc:
            return [], f"**Failed:** {_e(exc)}", gr.update(), gr.update(), gr.update()
        counts = ", ".join(f"{v} {k}" for k, v in report.summary().items()) or "nothing to do"
        choices = doc_choices()
        return (
            report_rows(report),
            f"{counts} in {report.seconds:.1f} s",
            doc_rows(),
            gr.update(choices=choices, value=None),
            gr.update(choices=choices),
        )

    def remove_doc(doc_id: str | None) -> tuple:
        if not doc_id:
            return "Choose a document to remove.", gr.update(), gr.update(), gr.update()
        try:
            result = state.remove_document(doc_id)
            message = f"Removed **{_e(result.title or doc_id)}** ({result.chunks} chunks)."
        except RagError as exc:
            message = f"**Failed:** {_e(exc)}"
        choices = doc_choices()
        return (
            message,
            doc_rows(),
            gr.update(choices=choices, value=None),
            gr.update(choices=choices),
        )

    def refresh() -> tuple:
        choices = doc_choices()
        return doc_rows(), gr.update(choices=choices), gr.update(choices=choices)

    rerank_method = settings.rerank.method
    with gr.Blocks(title=TITLE, analytics_enabled=False, delete_cache=(3600, 7200)) as demo:
        gr.Markdown(
            f"## {TITLE}\nAnswers cite the exact passages they rest on; every sentence is "
            "checked against them. When the documents do not answer, it says so."
        )
        conv = gr.State({"history": [], "answers": {}})
        with gr.Tabs():
            with gr.Tab("Chat", id="chat"), gr.Row():
                with gr.Column(scale=3):
                    chatbot = gr.Chatbot(
                        elem_id="rag-chat",
                        height=520,
                        label="Conversation",
                        feedback_options=("Like", "Dislike"),
                        group_consecutive_messages=False,
                        placeholder="Ask about the indexed papers.",
                    )
                    rewrite = gr.HTML(elem_id="rag-rewrite")
                    with gr.Row():
                        question = gr.Textbox(
                            placeholder="e.g. What was the median PFS with ivonescimab?",
                            show_label=False,
                            elem_id="rag-question",
                            scale=5,
                            max_length=2000,
                        )
                        ask = gr.Button("Ask", variant="primary", elem_id="rag-ask", scale=1)
                    with gr.Row():
                        new_chat = gr.Button("New conversation", size="sm")
                        feedback_note = gr.Markdown(elem_id="rag-feedback")
                    with gr.Accordion("Settings", open=False, elem_id="rag-settings"):
                        top_k = gr.Slider(
                            1,
                            20,
                            value=settings.answer.max_passages,
                            step=1,
                            label="Passages given to the model (top-k)",
                        )
                        rerank = gr.Checkbox(
                            value=rerank_method != "none",
                            label="Rerank passages",
                            info=f"rerank.method = {rerank_method}",
                            interactive=rerank_method != "none",
                        )
                        doc_filter = gr.Dropdown(
                            choices=doc_choices(),
                            multiselect=True,
                            label="Only these documents (empty = all)",
                        )
                with gr.Column(scale=2):
                    sources = gr.HTML(
                        "<div class='rag-sources'><div class='rag-empty'>Sources of the "
                        "answer appear here.</div></div>",
                        elem_id="rag-sources",
                    )
            with gr.Tab("Documents", id="documents"):
                files = gr.File(
                    file_count="multiple",
                    file_types=assistant.supported_suffixes(),
                    label="PDF, HTML, Markdown, text or PubMed/PMC XML",
                    elem_id="rag-files",
                )
                add = gr.Button("Add to index", variant="primary", elem_id="rag-add")
                summary_line = gr.Markdown(elem_id="rag-add-summary")
                summary = gr.Dataframe(
                    headers=["status", "file", "doc id", "chunks", "reason"],
                    label="Ingest summary",
                    interactive=False,
                    wrap=True,
                )
                docs = gr.Dataframe(
                    value=doc_rows,
                    headers=["doc id", "title", "format", "year", "chunks"],
                    label="Indexed documents",
                    elem_id="rag-docs",
                    interactive=False,
                    wrap=True,
                )
                with gr.Row():
                    remove_pick = gr.Dropdown(
                        choices=doc_choices(), label="Document to remove", elem_id="rag-remove-pick"
                    )
                    remove = gr.Button("Remove from index", variant="stop", elem_id="rag-remove")
                remove_note = gr.Markdown(elem_id="rag-remove-note")

        chat_inputs = [question, chatbot, conv, top_k, rerank, doc_filter]
        chat_outputs = [question, chatbot, sources, rewrite, conv]
        ask.click(respond, chat_inputs, chat_outputs, concurrency_limit=None)
        question.submit(respond, chat_inputs, chat_outputs, concurrency_limit=None)
        new_chat.click(
            lambda: ([], {"history": [], "answers": {}}, "", ""),
            None,
            [chatbot, conv, rewrite, feedback_note],
        )
        chatbot.like(on_feedback, [conv], [feedback_note])
        add.click(add_files, [files], [summary, summary_line, docs, remove_pick, doc_filter])
        remove.click(remove_doc, [remove_pick], [remove_note, docs, remove_pick, doc_filter])
        demo.load(refresh, None, [docs, remove_pick, doc_filter])
    return demo


def theme() -> Any:
    """Default look with system fonts: the stock theme would fetch fonts from Google."""
    return gr.themes.Default(**THEME_FONTS)


def mount_ui(app: Any, state: ServerState) -> Any:
    """Mount the Blocks app at / of the API app (which keeps /api, /v1 and /static)."""
    server = state.settings.server
    demo = build_ui(state.assistant, state.settings, state)
    auth = None
    if server.api_key:
        import hmac

        key = server.api_key.encode()

        def auth(username: str, password: str) -> bool:
            """UI login: any user name, the API key as password."""
            return hmac.compare_digest(password.encode(), key)

    return gr.mount_gradio_app(
        app,
        demo,
        path="/",
        auth=auth,
        auth_message="Log in with any user name and the server's API key as password.",
        ssr_mode=False,
        max_file_size=int(server.max_upload_mb * 1024 * 1024),
        theme=theme(),
        css=CSS,
        head=HEAD,
        footer_links=["api", "settings"],
        mcp_server=False,
    )


__all__ = ["build_ui", "mount_ui", "theme"]

"""Gradio front end: chat with streamed, cited answers; documents; settings; feedback.

A thin shell over the Assistant (through the server's shared state, so UI chats and API calls
share the generation slots). It works offline: system fonts only, analytics off, every asset
served by this process.
"""

from __future__ import annotations

import os
from typing import Any

os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")  # read when gradio is imported

import gradio as gr
from rag.ui.handlers import UiHandlers

from rag.references import FORMATS as REFERENCE_FORMATS
from rag.server import ServerState
from rag.settings import Settings

TITLE = "Oncology literature assistant"

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
.rag-trials { border-collapse: collapse; font-size: 14px; }
.rag-trials th, .rag-trials td { border: 1px solid #e5e7eb; padding: 4px 8px; vertical-align: top; }
.rag-trials td a { color: inherit; text-decoration: underline dotted; }
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


# -- the app ------------------------------------------------------------------------------------


def build_ui(assistant: Any, settings: Settings | None = None, state: ServerState | None = None):
    """The Blocks app; ``state`` shares generation slots and folders with the HTTP API."""
    state = state or ServerState(assistant, settings)
    settings = state.settings
    ui = UiHandlers(state)

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
                            choices=ui.doc_choices(),
                            multiselect=True,
                            label="Only these documents (empty = all)",
                        )
                with gr.Column(scale=2):
                    sources = gr.HTML(
                        "<div class='rag-sources'><div class='rag-empty'>Sources of the "
                        "answer appear here.</div></div>",
                        elem_id="rag-sources",
                    )
                    with gr.Row():
                        cited_format = gr.Dropdown(
                            REFERENCE_FORMATS, value="bibtex", show_label=False, scale=1
                        )
                        cited_export = gr.Button(
                            "Cited references", size="sm", elem_id="rag-cited-export", scale=1
                        )
                    cited_note = gr.Markdown(elem_id="rag-cited-note")
                    cited_file = gr.File(
                        label="References", visible=False, elem_id="rag-cited-file"
                    )
            with gr.Tab("Trials", id="trials"):
                show_trials = gr.Button(
                    "Show the trials the documents report", elem_id="rag-trials-show"
                )
                trials_table = gr.HTML(elem_id="rag-trials")
                trials_file = gr.File(label="CSV", visible=False, elem_id="rag-trials-file")
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
                    value=ui.doc_rows,
                    headers=["doc id", "title", "format", "year", "chunks"],
                    label="Indexed documents",
                    elem_id="rag-docs",
                    interactive=False,
                    wrap=True,
                )
                with gr.Row():
                    remove_pick = gr.Dropdown(
                        choices=ui.doc_choices(),
                        label="Document to remove",
                        elem_id="rag-remove-pick",
                    )
                    remove = gr.Button("Remove from index", variant="stop", elem_id="rag-remove")
                remove_note = gr.Markdown(elem_id="rag-remove-note")
                with gr.Row():
                    library_format = gr.Dropdown(
                        REFERENCE_FORMATS, value="bibtex", label="Reference format", scale=1
                    )
                    library_export = gr.Button(
                        "Export the library as references", elem_id="rag-library-export", scale=2
                    )
                library_note = gr.Markdown(elem_id="rag-library-note")
                library_file = gr.File(
                    label="References", visible=False, elem_id="rag-library-file"
                )

        chat_inputs = [question, chatbot, conv, top_k, rerank, doc_filter]
        chat_outputs = [question, chatbot, sources, rewrite, conv]
        ask.click(ui.respond, chat_inputs, chat_outputs, concurrency_limit=None)
        question.submit(ui.respond, chat_inputs, chat_outputs, concurrency_limit=None)
        new_chat.click(
            lambda: ([], {"history": [], "answers": {}}, "", ""),
            None,
            [chatbot, conv, rewrite, feedback_note],
        )
        chatbot.like(ui.on_feedback, [conv], [feedback_note])
        add.click(ui.add_files, [files], [summary, summary_line, docs, remove_pick, doc_filter])
        remove.click(ui.remove_doc, [remove_pick], [remove_note, docs, remove_pick, doc_filter])
        cited_export.click(ui.cited_references, [conv, cited_format], [cited_file, cited_note])
        library_export.click(
            lambda fmt: ui.references_file(None, fmt),
            [library_format],
            [library_file, library_note],
        )
        show_trials.click(ui.trials, None, [trials_table, trials_file])
        demo.load(ui.refresh, None, [docs, remove_pick, doc_filter])
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

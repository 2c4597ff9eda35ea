"""`rag` command line: a thin shell that maps flags to Settings and calls the Assistant."""

from __future__ import annotations

import json
import logging
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from rag.errors import RagError
from rag.schemas import IngestReport
from rag.settings import Settings, load_settings
from rag.types import Filters

app = typer.Typer(
    help="Oncology literature assistant: index papers, search them, ask cited questions.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)
index_app = typer.Typer(help="Build and inspect the document index.", no_args_is_help=True)
app.add_typer(index_app, name="index")
eval_app = typer.Typer(help="Benchmarks and gold-set evaluation.", no_args_is_help=True)
app.add_typer(eval_app, name="eval")

console = Console(stderr=True)
out = Console(highlight=False, soft_wrap=True)

IndexOpt = Annotated[
    Path | None,
    typer.Option(
        "--index",
        envvar="RAG_INDEX_DIR",
        help="Index directory (default: index/).",
        show_default=False,
    ),
]
PresetOpt = Annotated[
    str | None, typer.Option("--preset", help="Named preset: default, fast, quality, remote.")
]
SetOpt = Annotated[
    list[str] | None,
    typer.Option("--set", help="Override any setting: --set retrieve.k=8 (repeatable)."),
]
JsonOpt = Annotated[bool, typer.Option("--json", help="Print machine-readable JSON.")]


def _settings(index: Path | None, preset: str | None, overrides: list[str] | None) -> Settings:
    return load_settings(preset=preset, index_dir=index, overrides=overrides)


def _assistant(settings: Settings) -> Any:
    from rag.assistant import Assistant

    return Assistant(settings)


@contextmanager
def _errors() -> Iterator[None]:
    """Turn library errors into one red line and the error's exit code."""
    try:
        yield
    except RagError as exc:
        console.print(f"[red]error:[/red] {exc}")
        raise typer.Exit(exc.exit_code) from None


@contextmanager
def _progress(label: str, enabled: bool = True) -> Iterator[Callable[[int, int, str], None]]:
    if not enabled or not console.is_terminal:
        yield lambda done, total, item: None
        return
    with Progress(
        TextColumn(f"[bold]{label}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        TextColumn("{task.description}", style="dim"),
        console=console,
        transient=True,
    ) as bar:
        task = bar.add_task("", total=None)

        def update(done: int, total: int, item: str) -> None:
            bar.update(task, completed=done, total=total or None, description=Path(item).name[:50])

        yield update


def _print_report(report: IngestReport, as_json: bool) -> None:
    if as_json:
        out.print_json(report.model_dump_json())
        return
    table = Table(title="Ingest summary", show_lines=False)
    for col in ("status", "file", "doc id", "chunks", "reason"):
        table.add_column(col)
    colours = {
        "failed": "red",
        "skipped": "yellow",
        "duplicate": "yellow",
        "added": "green",
        "replaced": "cyan",
        "unchanged": "dim",
        "removed": "magenta",
    }
    for r in report.results:
        colour = colours.get(r.status, "")
        table.add_row(
            f"[{colour}]{r.status}[/{colour}]",
            r.path,
            r.doc_id or "",
            str(r.chunks or ""),
            r.reason or "",
        )
    out.print(table)
    counts = ", ".join(f"{v} {k}" for k, v in report.summary().items()) or "nothing to do"
    out.print(f"{counts} in {report.seconds:.1f} s")


def _ensure(assistant: Any, as_json: bool) -> None:
    with _progress("indexing seed corpus", not as_json) as progress:
        report = assistant.ensure_index(progress)
    if report is not None and not as_json:
        console.print(
            f"[dim]built the seed index in {assistant.settings.index.dir}: "
            f"{report.count('added')} documents[/dim]"
        )


# -- rag index ... ------------------------------------------------------------------------------


@index_app.command("add")
def index_add(
    paths: Annotated[list[Path], typer.Argument(help="Files or folders to index.")],
    index: IndexOpt = None,
    preset: PresetOpt = None,
    set_: SetOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Add or update documents (PDF, HTML, Markdown, text, PubMed/PMC XML)."""
    with _errors():
        assistant = _assistant(_settings(index, preset, set_))
        with _progress("indexing", not as_json) as progress:
            report = assistant.add(paths, progress)
    _print_report(report, as_json)
    if report.failed:
        raise typer.Exit(1)


@index_app.command("remove")
def index_remove(
    docs: Annotated[
        list[str], typer.Argument(help="Document ids (see `rag index list`) or paths.")
    ],
    index: IndexOpt = None,
    preset: PresetOpt = None,
    set_: SetOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Remove documents and all their chunks and vectors."""
    with _errors():
        assistant = _assistant(_settings(index, preset, set_))
        report = IngestReport(results=[assistant.remove(ref) for ref in docs])
    _print_report(report, as_json)


@index_app.command("list")
def index_list(
    index: IndexOpt = None, preset: PresetOpt = None, set_: SetOpt = None, as_json: JsonOpt = False
) -> None:
    """List indexed documents."""
    with _errors():
        assistant = _assistant(_settings(index, preset, set_))
        docs = assistant.documents()
    if as_json:
        out.print_json(json.dumps([d.model_dump() for d in docs]))
        return
    table = Table(title=f"{len(docs)} documents")
    for col in ("doc id", "title", "format", "year", "chunks"):
        table.add_column(col)
    for d in docs:
        table.add_row(d.doc_id, d.title[:70], d.format, str(d.year or ""), str(d.chunks))
    out.print(table)


@index_app.command("stats")
def index_stats(
    index: IndexOpt = None, preset: PresetOpt = None, set_: SetOpt = None, as_json: JsonOpt = False
) -> None:
    """Show index size, models and settings it was built with."""
    with _errors():
        assistant = _assistant(_settings(index, preset, set_))
        stats = assistant.stats()
    data = stats.__dict__ | {"dir": str(assistant.settings.index.dir)}
    if as_json:
        out.print_json(json.dumps(data, default=str))
        return
    table = Table(show_header=False, title="Index")
    for key, value in data.items():
        if key == "disk_bytes":
            value = f"{value / 1e6:.2f} MB"
        table.add_row(key, json.dumps(value) if isinstance(value, dict) else str(value))
    out.print(table)


@index_app.command("rebuild")
def index_rebuild(
    index: IndexOpt = None, preset: PresetOpt = None, set_: SetOpt = None, as_json: JsonOpt = False
) -> None:
    """Re-chunk and re-embed every stored document with the current settings."""
    from rag.rebuild import rebuild_index

    with _errors():
        settings = _settings(index, preset, set_)
        with _progress("rebuilding", not as_json) as progress:
            report = rebuild_index(settings, progress)
    _print_report(report, as_json)


@index_app.command("check")
def index_check(index: IndexOpt = None, preset: PresetOpt = None, set_: SetOpt = None) -> None:
    """Verify that chunk store, FAISS and BM25 agree and every chunk is an exact span."""
    with _errors():
        assistant = _assistant(_settings(index, preset, set_))
        problems = assistant.index.check()
    if problems:
        for p in problems:
            out.print(f"[red]inconsistent:[/red] {p}")
        raise typer.Exit(3)
    out.print("index is consistent")


# -- rag search -------------------------------------------------------------------------------


@app.command("search")
def search(
    query: Annotated[str, typer.Argument(help="Question or keywords.")],
    k: Annotated[int | None, typer.Option("-k", "--k", help="Number of passages.")] = None,
    doc: Annotated[list[str] | None, typer.Option("--doc", help="Only these document ids.")] = None,
    fmt: Annotated[
        list[str] | None, typer.Option("--format", help="Only these formats (pdf, jats, ...).")
    ] = None,
    kind: Annotated[
        list[str] | None, typer.Option("--kind", help="Only these document kinds.")
    ] = None,
    year_min: Annotated[int | None, typer.Option("--year-min")] = None,
    year_max: Annotated[int | None, typer.Option("--year-max")] = None,
    mode: Annotated[str | None, typer.Option("--mode", help="hybrid, dense or lexical.")] = None,
    rerank: Annotated[bool | None, typer.Option("--rerank/--no-rerank")] = None,
    index: IndexOpt = None,
    preset: PresetOpt = None,
    set_: SetOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Find the passages that best match a question."""
    filters = Filters(
        doc_ids=tuple(doc) if doc else None,
        formats=tuple(fmt) if fmt else None,
        kinds=tuple(kind) if kind else None,
        year_min=year_min,
        year_max=year_max,
    )
    with _errors():
        assistant = _assistant(_settings(index, preset, set_))
        _ensure(assistant, as_json)
        response = assistant.search(query, k=k, filters=filters, mode=mode, rerank=rerank)
    if as_json:
        out.print(response.model_dump_json(indent=2))
        return
    if response.expanded_query:
        out.print(f"[dim]expanded: {response.expanded_query}[/dim]")
    if not response.hits:
        out.print("no matching passages")
    for hit in response.hits:
        p = hit.provenance
        where = " > ".join(p.section) or "—"
        page = f", p. {p.page}" if p.page else ""
        why = hit.why
        reasons = []
        if why.lexical_rank:
            reasons.append(f"bm25 #{why.lexical_rank}")
        if why.dense_rank:
            reasons.append(f"dense #{why.dense_rank} ({why.dense_score:.2f})")
        if why.rerank_score is not None:
            reasons.append(f"rerank {why.rerank_score:.2f}")
        out.print(
            f"[bold][{hit.rank}] {p.title}[/bold] [dim]({p.doc_id}; {where}{page}; "
            f"chars {p.char_start}-{p.char_end}; {', '.join(reasons)})[/dim]"
        )
        out.print(hit.text.strip())
        out.print()
    console.print(f"[dim]{response.timings_ms.get('total', 0):.0f} ms[/dim]")


# -- rag ask ------------------------------------------------------------------------------------


def _read_questions(path: Path) -> list[dict[str, Any]]:
    """JSONL with a "question" field, or plain text with one question per line."""
    items: list[dict[str, Any]] = []
    for line_no, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        line = line.strip()
        if not line:
            continue
        if line.startswith("{"):
            try:
                record = json.loads(line)
            except json.JSONDecodeError as exc:
                raise typer.BadParameter(f"{path}:{line_no}: invalid JSON ({exc.msg})") from exc
            if "question" not in record:
                raise typer.BadParameter(f'{path}:{line_no}: no "question" field')
            items.append(record)
        else:
            items.append({"question": line})
    return items


def _print_removed(sentences: list[Any]) -> None:
    """What verification withheld and why, so a reader can see what the model tried to say."""
    flagged = [s for s in sentences if s.dropped]
    if flagged:
        out.print(f"[dim]{len(flagged)} sentence(s) of the draft removed:[/dim]")
        for s in flagged:
            # The last reason is the decisive one (a non-answer check runs after support).
            reason = s.reasons[-1] if s.reasons else "unsupported"
            out.print(f"[dim]  - “{escape(s.text)}” — {escape(reason)}[/dim]")


def _print_answer(response: Any, debug: bool) -> None:
    for clause in response.ignored_instructions:
        out.print(
            f"[dim]Ignored in the question (an instruction to the model): “{escape(clause)}”[/dim]"
        )
    if response.abstained:
        out.print(f"[yellow]{response.answer}[/yellow]")
        if response.abstain_reason:
            out.print(f"[dim]({response.abstain_reason})[/dim]")
        _print_removed(response.sentences)
        if response.passages:
            out.print("\n[bold]Closest passages[/bold]")
            for hit in response.passages[:3]:
                p = hit.provenance
                out.print(f"- {p.title} [dim]({p.doc_id})[/dim]: {hit.text[:240].strip()}...")
    else:
        out.print(response.answer)
        if response.quoted:
            out.print("[dim](quoted from the passage: the drafted answer did not hold up)[/dim]")
        verdict = response.verdict
        if verdict is not None and not verdict.shown:
            out.print(
                "[dim](no yes/no verdict: the evidence does not decide it clearly; "
                f"{verdict.label} {verdict.probabilities[verdict.label]:.2f})[/dim]"
            )
        out.print()
        for c in response.citations:
            where = " > ".join(c.section)
            page = f", p. {c.page}" if c.page else ""
            out.print(
                f"[bold][{c.number}] {c.title}[/bold] [dim]({c.doc_id}"
                f"{'; ' + where if where else ''}{page}; {c.verdict})[/dim]"
            )
            for q in c.quotes or []:
                out.print(f"    “{q.text}” [dim](chars {q.char_start}-{q.char_end})[/dim]")
        _print_removed(response.sentences)
    if debug:
        t = response.timings
        console.print(
            f"[dim]evidence {t.get('evidence_ms', 0):.0f} ms · first token "
            f"{t.get('ttft_ms', 0) / 1000:.1f} s · total {t.get('total_ms', 0) / 1000:.1f} s · "
            f"{t.get('prompt_tokens', 0):.0f} prompt tokens ({t.get('cached_prompt_tokens', 0):.0f}"
            f" cached) · {t.get('new_tokens', 0):.0f} new · "
            f"{t.get('decode_tokens_per_s', 0):.1f} tok/s[/dim]"
        )


@app.command("ask")
def ask(
    question: Annotated[str | None, typer.Argument(help="The question.")] = None,
    questions: Annotated[
        Path | None,
        typer.Option("--questions", help="Batch: JSONL with a question field, or one per line."),
    ] = None,
    output: Annotated[Path | None, typer.Option("--out", help="Batch output JSONL file.")] = None,
    k: Annotated[int | None, typer.Option("-k", "--k", help="Passages given to the model.")] = None,
    doc: Annotated[list[str] | None, typer.Option("--doc", help="Only these document ids.")] = None,
    rerank: Annotated[bool | None, typer.Option("--rerank/--no-rerank")] = None,
    debug: Annotated[bool, typer.Option("--debug", help="Print timings and token rates.")] = False,
    index: IndexOpt = None,
    preset: PresetOpt = None,
    set_: SetOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Answer a question with citations to the exact passages (or say it cannot)."""
    if (question is None) == (questions is None):
        console.print("[red]error:[/red] give a question or --questions FILE")
        raise typer.Exit(2)
    filters = Filters(doc_ids=tuple(doc) if doc else None)
    with _errors():
        assistant = _assistant(_settings(index, preset, set_))
        _ensure(assistant, as_json or questions is not None)
        if questions is not None:
            items = _read_questions(questions)
            sink = output.open("w", encoding="utf-8") if output else None
            try:
                for item in items:
                    response = assistant.ask(item["question"], k=k, filters=filters, rerank=rerank)
                    record = (
                        response.model_dump(mode="json") | {"id": item.get("id")}
                        if item.get("id") is not None
                        else response.model_dump(mode="json")
                    )
                    line = json.dumps(record, ensure_ascii=False)
                    if sink:
                        sink.write(line + "\n")
                        sink.flush()
                    else:
                        print(line, flush=True)
            finally:
                if sink:
                    sink.close()
            return
        assert question is not None
        if as_json:
            response = assistant.ask(question, k=k, filters=filters, rerank=rerank)
            print(response.model_dump_json(indent=2))
            return
        live = console.is_terminal
        response = None
        for event in assistant.ask_stream(question, k=k, filters=filters, rerank=rerank):
            if event.type == "evidence" and live and event.data:
                console.print("[dim]evidence while the answer is written:[/dim]")
                for ev in event.data:
                    console.print(f"[dim]  “{ev.text}” — {ev.title}[/dim]")
            elif event.type == "token" and live:
                console.print(event.data, end="", style="dim", highlight=False)
            elif event.type == "retry" and live:
                console.print(f"\n[dim]({event.data['reason']})[/dim]")
            elif event.type == "final":
                response = event.data
        if live:
            console.print()
        _print_answer(response, debug)


# -- rag serve ----------------------------------------------------------------------------------


@app.command("serve")
def serve(
    host: Annotated[
        str | None, typer.Option("--host", help="Bind address (default: server.host).")
    ] = None,
    port: Annotated[
        int | None, typer.Option("--port", help="Port (default: server.port; 0 = any free).")
    ] = None,
    preload: Annotated[
        bool, typer.Option("--preload", help="Load the generator now, not at the first question.")
    ] = False,
    no_ui: Annotated[bool, typer.Option("--no-ui", help="API only, no Gradio UI.")] = False,
    index: IndexOpt = None,
    preset: PresetOpt = None,
    set_: SetOpt = None,
) -> None:
    """Serve the web UI (/), the HTTP API (/api, /v1, /docs) and the chat widget (/static)."""
    import socket

    import uvicorn

    from rag.api import create_app

    with _errors():
        settings = _settings(index, preset, set_)
        server = settings.server
        bind_host = host or server.host
        bind_port = server.port if port is None else port
        assistant = _assistant(settings)
        _ensure(assistant, False)
        if preload:
            console.print(f"[dim]loading generator {settings.generate.model}...[/dim]")
            _ = assistant.generator
        application = create_app(assistant, settings, ui=not no_ui)
    # Bind first so port 0 resolves to a real port before the URLs are printed.
    sock = socket.socket(socket.AF_INET6 if ":" in bind_host else socket.AF_INET)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((bind_host, bind_port))
    except OSError as exc:
        console.print(f"[red]error:[/red] cannot listen on {bind_host}:{bind_port}: {exc}")
        raise typer.Exit(2) from None
    bound = sock.getsockname()[1]
    shown = "127.0.0.1" if bind_host in ("0.0.0.0", "::") else bind_host
    base = f"http://{'[' + shown + ']' if ':' in shown else shown}:{bound}"
    lines = [f"API       {base}/api   (OpenAPI docs: {base}/docs)", f"OpenAI    {base}/v1"]
    if not no_ui:
        lines.insert(0, f"UI        {base}/")
    lines.append(f"widget    {base}/static/widget.js   (demo: {base}/static/example.html)")
    lines.append(f"health    {base}/healthz")
    for line in lines:
        out.print(line)
    sys.stdout.flush()
    config = uvicorn.Config(
        application,
        log_level="warning",
        timeout_graceful_shutdown=5,
        access_log=False,
        # uvicorn closes idle keep-alive connections after 5 s; a client that reuses one at that
        # moment gets "server disconnected" (seen once in 765 searches of the 32-client test).
        # Browsers and httpx pools keep connections longer, so the server waits longer too.
        timeout_keep_alive=75,
    )
    uvicorn.Server(config).run(sockets=[sock])


# -- rag eval ... -------------------------------------------------------------------------------


@eval_app.command("retrieval")
def eval_retrieval(
    dataset: Annotated[
        Path | None, typer.Option("--dataset", help="Shared-schema dataset folder.")
    ] = None,
    beir: Annotated[
        Path | None, typer.Option("--beir", help="BEIR folder (corpus/queries/qrels).")
    ] = None,
    split: Annotated[str, typer.Option("--split")] = "dev",
    limit: Annotated[
        int | None, typer.Option("--limit", help="Score a random sample of questions.")
    ] = None,
    seed: Annotated[int, typer.Option("--seed")] = 0,
    rerank_model: Annotated[
        Path | None, typer.Option("--rerank-model", help="Cross-encoder checkpoint.")
    ] = None,
    rerank_folds: Annotated[
        Path | None,
        typer.Option("--rerank-folds", help="Dir with fold-0/ fold-1/ cross-fitted checkpoints."),
    ] = None,
    rows: Annotated[
        str, typer.Option("--rows", help="Comma list: bm25,dense,hybrid,rerank.")
    ] = "bm25,dense,hybrid,rerank",
    json_out: Annotated[
        Path | None, typer.Option("--json", help="Write results JSON here.")
    ] = None,
    index: IndexOpt = None,
    preset: PresetOpt = None,
    set_: SetOpt = None,
) -> None:
    """Score BM25 / dense / hybrid / hybrid+rerank on a dataset (nDCG@10, recall, MRR, latency)."""
    from rag.eval.bench_retrieval import (
        build_assistant,
        print_table,
        reranker_provenance,
        rerankers_from_options,
        rows_to_json,
        run_config,
    )
    from rag.eval.datasets import load_beir, load_shared

    if (dataset is None) == (beir is None):
        console.print("[red]error:[/red] give exactly one of --dataset or --beir")
        raise typer.Exit(2)
    with _errors():
        settings = _settings(index, preset, set_)
        ds = load_beir(beir, split) if beir else load_shared(dataset, split)  # type: ignore[arg-type]
        ds = ds.subset(limit, seed)
        assistant = build_assistant(ds, settings)
        wanted = [r.strip() for r in rows.split(",") if r.strip()]
        reranker_for = rerankers_from_options(ds, settings, rerank_model, rerank_folds)
        results = []
        for name, mode in (("bm25", "lexical"), ("dense", "dense"), ("hybrid", "hybrid")):
            if name in wanted:
                results.append(run_config(assistant, ds, name=name, mode=mode)[0])
        if "rerank" in wanted and reranker_for is not None:
            results.append(
                run_config(
                    assistant, ds, name="hybrid+rerank", mode="hybrid", reranker_for=reranker_for
                )[0]
            )
        table = print_table(ds, results)
    if json_out:
        json_out.parent.mkdir(parents=True, exist_ok=True)
        extra = {
            "split": split,
            "limit": limit,
            "seed": seed,
            "table": table,
            "settings": settings.fingerprint(),
            "reranker": reranker_provenance(rerank_model, rerank_folds),
        }
        json_out.write_text(json.dumps(rows_to_json(ds, results, extra), indent=2))


@eval_app.command("train-reranker")
def eval_train_reranker(
    fold: Annotated[
        str, typer.Option("--fold", help="fold-0, fold-1 (cross-fitted halves) or full.")
    ] = "full",
    all_folds: Annotated[
        bool, typer.Option("--all", help="Train fold-0, fold-1 and full in one go.")
    ] = False,
    datasets_dir: Annotated[
        Path | None,
        typer.Option("--datasets", help="Folder with scifact/ bioasq/ pubmedqa/ (dev splits)."),
    ] = None,
    out_root: Annotated[
        Path | None, typer.Option("--out", help="Recipe folder (default: the reranker cache).")
    ] = None,
    epochs: Annotated[
        float | None,
        typer.Option("--epochs", help="Passes over the training questions (recipe default: 2)."),
    ] = None,
    name: Annotated[
        str | None,
        typer.Option("--name", help="Recipe name (its cache folder); derived from overrides."),
    ] = None,
    index: IndexOpt = None,
    preset: PresetOpt = None,
    set_: SetOpt = None,
) -> None:
    """Train the MiniLM cross-encoder reranker on the dev splits (cached, never committed)."""
    from rag.eval.train_reranker import FOLDS, Recipe, train_fold

    recipe = Recipe()
    if epochs is not None and epochs != recipe.epochs:
        # A changed recipe never lands in the default recipe's folder unless asked to.
        recipe.epochs = epochs
        recipe.name = f"{recipe.name}-e{epochs:g}"
    if name:
        recipe.name = name

    folds = list(FOLDS) if all_folds else [fold if fold in FOLDS else f"fold-{fold}"]
    if any(f not in FOLDS for f in folds):
        console.print(f"[red]error:[/red] --fold must be one of {', '.join(FOLDS)} (or 0 / 1)")
        raise typer.Exit(2)
    with _errors():
        settings = _settings(index, preset, set_)
        for f in folds:
            path = train_fold(
                f, recipe, settings=settings, datasets_dir=datasets_dir, out_root=out_root
            )
            out.print(str(path))


@eval_app.command("run")
def eval_run(
    gold: Annotated[
        list[str], typer.Argument(help="Gold JSONL file(s), or a dataset folder (shared or BEIR).")
    ],
    corpus: Annotated[
        list[str] | None, typer.Option("--corpus", help="Files/folders or a dataset folder.")
    ] = None,
    out_dir: Annotated[Path | None, typer.Option("--out", help="Run directory.")] = None,
    config: Annotated[Path | None, typer.Option("--config", help="Settings TOML file.")] = None,
    split: Annotated[str, typer.Option("--split")] = "dev",
    limit: Annotated[int | None, typer.Option("--limit")] = None,
    seed: Annotated[int, typer.Option("--seed")] = 0,
    tag: Annotated[
        list[str] | None, typer.Option("--filter", help="Only items with this tag.")
    ] = None,
    minimum: Annotated[
        list[str] | None, typer.Option("--min", help="Fail if metric < value: --min correct=0.9")
    ] = None,
    yes_no_mode: Annotated[
        str, typer.Option("--yes-no", help="classify, generate, or auto (generate if key facts)")
    ] = "auto",
    half: Annotated[
        str, typer.Option("--half", help="tune, report or all (halves fixed by an id hash)")
    ] = "all",
    draft_cache: Annotated[
        Path | None,
        typer.Option("--draft-cache", help="Replay drafts kept here; keep new ones (no timings)."),
    ] = None,
    preset: PresetOpt = None,
    set_: SetOpt = None,
) -> None:
    """Run a gold set end to end and write a reproducible run directory."""
    import os
    import time as _time

    from rag.eval.harness import EvalConfig, gate, run

    if config is not None:
        os.environ["RAG_CONFIG"] = str(config)
    cfg = EvalConfig(
        gold=gold[0],
        more_gold=gold[1:],
        half=half,
        corpus=corpus or [],
        split=split,
        preset=preset,
        overrides=set_ or [],
        limit=limit,
        seed=seed,
        tags=tag or [],
        yes_no_mode=yes_no_mode,
    )
    name = Path(gold[0]).stem if Path(gold[0]).is_file() else Path(gold[0]).name
    run_dir = out_dir or Path("runs") / f"{name}-{_time.strftime('%Y%m%d-%H%M%S')}"
    with _errors(), _progress("evaluating") as progress:
        metrics = run(cfg, run_dir, progress, draft_cache=draft_cache)
    out.print((run_dir / "summary.md").read_text())
    out.print(f"run directory: {run_dir}")
    thresholds = {}
    for item in minimum or []:
        key, _, value = item.partition("=")
        thresholds[key.strip()] = float(value)
    failures = gate(metrics, thresholds)
    for f in failures:
        out.print(f"[red]below threshold:[/red] {f}")
    if failures:
        raise typer.Exit(1)


@eval_app.command("compare")
def eval_compare(
    run_a: Annotated[Path, typer.Argument(help="Baseline run directory.")],
    run_b: Annotated[Path, typer.Argument(help="Candidate run directory.")],
    as_json: JsonOpt = False,
) -> None:
    """Paired bootstrap deltas (B - A) with 95% CIs and per-question wins/losses."""
    from rag.eval.compare import compare_runs, format_comparison

    result = compare_runs(run_a, run_b)
    if as_json:
        out.print_json(json.dumps(result))
    else:
        out.print(format_comparison(result), highlight=False)


@eval_app.command("report")
def eval_report(run_dir: Annotated[Path, typer.Argument(help="Run directory.")]) -> None:
    """Write report.html (plots inlined, works offline) and summary.md for a run."""
    from rag.eval.report import write_report

    path = write_report(run_dir)
    out.print(f"wrote {path} and {run_dir / 'summary.md'}")


@eval_app.command("import")
def eval_import(
    dataset: Annotated[Path, typer.Argument(help="Dataset folder (shared schema or BEIR).")],
    output: Annotated[Path, typer.Option("--out", help="Gold JSONL to write.")],
    split: Annotated[str, typer.Option("--split")] = "dev",
) -> None:
    """Convert a benchmark's questions into the gold-set format."""
    from rag.eval.gold import write_gold
    from rag.eval.importers import gold_from_path

    with _errors():
        items = gold_from_path(dataset, split)
        write_gold(items, output)
    out.print(f"wrote {len(items)} gold items to {output}")


@eval_app.command("support")
def eval_support(
    pairs: Annotated[Path | None, typer.Option("--pairs", help="Labelled pairs JSONL.")] = None,
    scifact: Annotated[
        Path | None,
        typer.Option("--scifact", help="Held-out check on SciFact dev claims (dataset folder)."),
    ] = None,
    as_json: JsonOpt = False,
    show_errors: Annotated[int, typer.Option("--errors", help="Misjudged pairs to list.")] = 50,
) -> None:
    """Precision/recall of the sentence-support checker on labelled sentence-passage pairs."""
    from rag.embed import load_embedder
    from rag.eval.support_eval import evaluate_checker, load_pairs, scifact_pairs
    from rag.retrieve.expand import QueryExpander
    from rag.verify import SupportChecker

    settings = load_settings()
    checker = SupportChecker(
        load_embedder(settings.embed).embed,
        aliases=QueryExpander().related,
        threshold=settings.verify.support_threshold,
    )
    labelled = scifact_pairs(scifact) if scifact else load_pairs(pairs)
    result = evaluate_checker(checker, labelled)
    if as_json:
        out.print_json(json.dumps(result))
        return
    out.print(
        f"pairs {result['n']}: precision {result['precision']:.3f}, recall "
        f"{result['recall']:.3f}, F1 {result['f1']:.3f}, accuracy {result['accuracy']:.3f}"
    )
    out.print(f"errors by type: {result['errors_by_type']}")
    for e in result["errors"][:show_errors]:
        out.print(
            f"  {e['id']} gold={'supported' if e['gold'] else 'unsupported'} "
            f"got={e['verdict']} ({e['type']}): {e['sentence']}"
        )


DATASETS = Path("../shared/datasets")


@eval_app.command("judge")
def eval_judge(
    datasets: Annotated[
        Path, typer.Option("--datasets", help="The shared datasets folder.")
    ] = Path("../shared/datasets"),
    half: Annotated[str, typer.Option("--half", help="report (held out) or tune")] = "report",
    json_out: Annotated[Path | None, typer.Option("--json", help="Write the figures here.")] = None,
) -> None:
    """Precision/recall of the trained answer judge on third-party pairs it never saw."""
    from rag.eval.judge_eval import evaluate
    from rag.retrieve.expand import QueryExpander
    from rag.verify import SupportChecker
    from rag.verify.judge import shared_judge

    settings = load_settings()
    from rag.assistant import Assistant

    assistant = Assistant(settings)

    def make_checker(judge: Any) -> SupportChecker:
        return SupportChecker(
            assistant.embedder.embed,
            aliases=QueryExpander().related,
            threshold=settings.verify.support_threshold,
            judge=judge,
        )

    with _errors():
        result = evaluate(datasets, shared_judge(settings.verify.judge_dir), make_checker, half)
    if json_out is not None:
        json_out.parent.mkdir(parents=True, exist_ok=True)
        json_out.write_text(json.dumps(result, indent=2) + "\n")

    def f(x: float | None) -> str:
        return "–" if x is None else f"{x:.3f}"

    for task, r in result["judge_alone"].items():
        out.print(
            f"judge {task}: precision {f(r['precision'])} recall {f(r['recall'])} "
            f"AUC {f(r['auc'])} (n {r['n']}, threshold {r['threshold']:.3f})"
        )
    for name, r in result["scifact_checker"].items():
        out.print(
            f"SciFact {name}: precision {f(r['precision'])} recall {f(r['recall'])} (n {r['n']})"
        )
    r = result["bioasq_answer_sentences"]
    out.print(f"BioASQ answer sentences: P {f(r['precision'])} R {f(r['recall'])} (n {r['n']})")


@eval_app.command("trust")
def eval_trust(
    half: Annotated[str, typer.Option("--half", help="report (held out) or tune")] = "report",
    json_out: Annotated[Path | None, typer.Option("--json", help="Write the figures here.")] = None,
    before: Annotated[
        bool, typer.Option("--before", help="The trust features off (the starting point).")
    ] = False,
    datasets: Annotated[Path, typer.Option("--datasets")] = DATASETS,
    factoid: Annotated[int, typer.Option("--factoid", help="BioASQ factoid sample.")] = 60,
    listed: Annotated[int, typer.Option("--list", help="BioASQ list sample.")] = 40,
    yes_no: Annotated[
        int | None, typer.Option("--yes-no", help="Sample of yes/no questions (default all).")
    ] = None,
    draft_cache: Annotated[Path | None, typer.Option("--draft-cache")] = None,
    runs: Annotated[Path, typer.Option("--runs", help="Where the run directories go.")] = Path(
        "runs"
    ),
    part: Annotated[
        list[str] | None,
        typer.Option(
            "--part",
            help="Only this part (repeatable): seed, bioasq-yesno, bioasq-factoid, bioasq-list, "
            "pubmedqa; its figures replace those in --json, the others stay.",
        ),
    ] = None,
    preset: PresetOpt = None,
    set_: SetOpt = None,
) -> None:
    """Every figure of answer trust on one half: seed variants, BioASQ, PubMedQA, latency."""
    from rag.eval.bench_trust import PARTS
    from rag.eval.bench_trust import main as trust

    with _errors():
        trust(
            half,
            json_out,
            before,
            datasets,
            factoid,
            listed,
            yes_no,
            draft_cache,
            runs,
            set_ or [],
            preset,
            tuple(part or PARTS),
        )


@eval_app.command("twins")
def eval_twins(
    gold: Annotated[list[Path], typer.Argument(help="Gold JSONL file(s) to twin.")],
    corpus: Annotated[
        list[Path] | None, typer.Option("--corpus", help="Corpus files/folders (default: seeds).")
    ] = None,
    output: Annotated[Path, typer.Option("--out", help="Twin gold JSONL to write.")] = Path(
        "eval/gold/seed_twins.jsonl"
    ),
) -> None:
    """Entity-swapped twins: each question about a trial/drug/gene no document names."""
    from rag.eval.gold import load_gold, write_gold
    from rag.eval.twins import corpus_text, make_twins
    from rag.paths import seeds_dir

    with _errors():
        items = load_gold(*gold)
        twins = make_twins(items, corpus_text(corpus or [seeds_dir()]))
        write_gold(twins, output)
    out.print(f"wrote {len(twins)} twins of {len(items)} questions to {output}")


def main() -> None:
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    try:
        app()
    except KeyboardInterrupt:
        console.print("interrupted")
        sys.exit(130)


if __name__ == "__main__":
    main()

"""`rag index ...`: build and inspect the document index."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from rag.cli.common import (
    IndexOpt,
    JsonOpt,
    PresetOpt,
    SetOpt,
    build_assistant,
    build_settings,
    console,
    index_app,
    out,
    print_report,
    progress_bar,
    user_errors,
)
from rag.paths import write_text_atomic
from rag.schemas import IngestReport

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
    with user_errors():
        assistant = build_assistant(build_settings(index, preset, set_))
        with progress_bar("indexing", not as_json) as progress:
            report = assistant.add(paths, progress)
    print_report(report, as_json)
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
    with user_errors():
        assistant = build_assistant(build_settings(index, preset, set_))
        report = IngestReport(results=[assistant.remove(ref) for ref in docs])
    print_report(report, as_json)


@index_app.command("list")
def index_list(
    index: IndexOpt = None, preset: PresetOpt = None, set_: SetOpt = None, as_json: JsonOpt = False
) -> None:
    """List indexed documents."""
    with user_errors():
        assistant = build_assistant(build_settings(index, preset, set_))
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


@index_app.command("cite")
def index_cite(
    docs: Annotated[list[str] | None, typer.Argument(help="Document ids (default: all).")] = None,
    fmt: Annotated[str, typer.Option("--format", "-f", help="bibtex, ris or csl-json")] = "bibtex",
    output: Annotated[Path | None, typer.Option("--out", help="Write to this file.")] = None,
    index: IndexOpt = None,
    preset: PresetOpt = None,
    set_: SetOpt = None,
) -> None:
    """Export indexed documents as references (BibTeX, RIS or CSL-JSON)."""
    with user_errors():
        text = build_assistant(build_settings(index, preset, set_)).references(docs or None, fmt)
        if output is None:
            print(text, end="")
            return
        write_text_atomic(output, text)
    console.print(f"wrote {output}")


@index_app.command("stats")
def index_stats(
    index: IndexOpt = None, preset: PresetOpt = None, set_: SetOpt = None, as_json: JsonOpt = False
) -> None:
    """Show index size, models and settings it was built with."""
    with user_errors():
        assistant = build_assistant(build_settings(index, preset, set_))
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

    with user_errors():
        settings = build_settings(index, preset, set_)
        with progress_bar("rebuilding", not as_json) as progress:
            report = rebuild_index(settings, progress)
    print_report(report, as_json)


@index_app.command("check")
def index_check(index: IndexOpt = None, preset: PresetOpt = None, set_: SetOpt = None) -> None:
    """Verify that chunk store, FAISS and BM25 agree and every chunk is an exact span."""
    with user_errors():
        assistant = build_assistant(build_settings(index, preset, set_))
        problems = assistant.index.check()
    if problems:
        for p in problems:
            out.print(f"[red]inconsistent:[/red] {p}")
        raise typer.Exit(3)
    out.print("index is consistent")


# -- rag search -------------------------------------------------------------------------------

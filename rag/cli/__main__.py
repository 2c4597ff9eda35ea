"""``python -m rag.cli``: the same as the ``rag`` console script."""

from rag.cli import main

main()

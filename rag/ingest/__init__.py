"""Ingest: files -> loader blocks -> one normalised Document per file."""

from __future__ import annotations

from rag.ingest.normalize import build_document, content_hash, normalize_text
from rag.ingest.registry import SUFFIXES, expand_paths, format_for, load_file, slug
from rag.ingest.sandbox import LoaderProcess, errors_by_name

__all__ = [
    "SUFFIXES",
    "LoaderProcess",
    "build_document",
    "content_hash",
    "errors_by_name",
    "expand_paths",
    "format_for",
    "load_file",
    "normalize_text",
    "slug",
]

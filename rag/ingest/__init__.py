"""Ingest: files -> loader blocks -> one normalised Document per file."""

from __future__ import annotations

from rag import errors as _errors
from rag.ingest.normalize import build_document, content_hash, normalize_text
from rag.ingest.registry import SUFFIXES, expand_paths, format_for, load_file, slug
from rag.ingest.sandbox import LoaderProcess

# Error classes by name, so the sandboxed parser can send them across the process boundary.
errors_by_name: dict[str, type[_errors.IngestError]] = {
    name: cls
    for name, cls in vars(_errors).items()
    if isinstance(cls, type) and issubclass(cls, _errors.IngestError)
}

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

"""Which loader reads which file, and the checks every file passes first."""

from __future__ import annotations

import importlib
import json
import os
import re
import stat
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

from rag.errors import (
    EmptyDocumentError,
    FileTooLargeError,
    IngestError,
    UnreadablePathError,
    UnsupportedFormatError,
)
from rag.ingest.normalize import build_document, content_hash
from rag.settings import IngestSettings
from rag.types import DocMeta, Document, LoadedDocument

Loader = Callable[[bytes, DocMeta], LoadedDocument]

META_SUFFIX = ".meta.json"


@dataclass(frozen=True)
class Format:
    name: str
    sandboxed: bool  # parsed in the killable worker process


SUFFIXES: dict[str, Format] = {
    ".txt": Format("text", False),
    ".text": Format("text", False),
    ".md": Format("markdown", False),
    ".markdown": Format("markdown", False),
    ".html": Format("html", True),
    ".htm": Format("html", True),
    ".xhtml": Format("html", True),
    ".pdf": Format("pdf", True),
    ".xml": Format("jats", True),
    ".nxml": Format("jats", True),
}


_LOADERS = {
    "text": ("rag.ingest.text", "load_text"),
    "markdown": ("rag.ingest.text", "load_markdown"),
    "html": ("rag.ingest.html", "load_html"),
    "pdf": ("rag.ingest.pdf", "load_pdf"),
    "jats": ("rag.ingest.jats", "load_jats"),
}


def _loader(fmt: str) -> Loader:
    # Imported on demand: the parent of a sandboxed ingest never needs lxml or pdfplumber.
    module, name = _LOADERS[fmt]
    return getattr(importlib.import_module(module), name)


def run_loader(fmt: str, data: bytes, meta: DocMeta) -> LoadedDocument:
    if not data.strip():
        raise EmptyDocumentError("file is empty")
    loaded = _loader(fmt)(data, meta)
    if not any(block.text.strip() for block in loaded.blocks):
        raise EmptyDocumentError()
    return loaded


def format_for(path: Path) -> Format:
    fmt = SUFFIXES.get(path.suffix.lower())
    if fmt is None:
        known = ", ".join(sorted(SUFFIXES))
        raise UnsupportedFormatError(
            f"unsupported file type {path.suffix or '(no extension)'!r}; supported: {known}"
        )
    return fmt


def is_candidate(path: Path) -> bool:
    """Files a folder walk should consider (metadata sidecars and hidden files are not)."""
    name = path.name
    return not (
        name.startswith(".")
        or name.endswith(META_SUFFIX)
        or name == "__init__.py"
        or "__pycache__" in path.parts
    )


def expand_paths(paths: list[Path]) -> Iterator[tuple[Path, bool]]:
    """Files under the given paths in a stable order, each with whether it was named explicitly.

    Missing paths are yielded as-is so the caller reports them; files found by walking a folder
    are flagged so that an unsupported type there is skipped rather than failed.
    """
    for path in paths:
        if path.is_dir():
            for root, dirs, files in os.walk(path):
                dirs[:] = sorted(d for d in dirs if not d.startswith((".", "__")))
                for name in sorted(files):
                    candidate = Path(root) / name
                    if is_candidate(candidate):
                        yield candidate, False
        else:
            yield path, True


MAX_SIDECAR_BYTES = 1024 * 1024
_META_STRINGS = ("title", "date", "source", "kind", "journal", "pmid", "pmcid", "doi", "url")


def _checked_meta(data: dict[str, object], name: str) -> dict[str, object]:
    """Known fields with the types DocMeta promises (a number as title crashed the ingest).

    Lenient where the intent is plain (``"pmid": 123``, ``"year": "2024"``, one author as a
    string), a one-line IngestError otherwise.
    """
    data = {k: v for k, v in data.items() if v is not None}
    for key in _META_STRINGS:
        value = data.get(key)
        if isinstance(value, int) and not isinstance(value, bool):
            data[key] = str(value)
        elif key in data and not isinstance(value, str):
            raise IngestError(f"metadata file {name}: {key!r} must be a string")
    authors = data.get("authors")
    if isinstance(authors, str):
        data["authors"] = [authors]
    elif authors is not None and not (
        isinstance(authors, list) and all(isinstance(a, str) for a in authors)
    ):
        raise IngestError(f"metadata file {name}: 'authors' must be a list of strings")
    year = data.get("year")
    if isinstance(year, str) and year.strip().isascii() and year.strip().isdigit():
        year = data["year"] = int(year)
    if year is not None and (
        isinstance(year, bool) or not isinstance(year, int) or not 0 < year < 10_000
    ):
        raise IngestError(f"metadata file {name}: 'year' must be a year such as 2024")
    return data


def read_sidecar(path: Path) -> tuple[DocMeta, bytes]:
    """Metadata from ``<file>.meta.json`` or ``<stem>.meta.json`` beside the file, if present."""
    for candidate in (path.with_name(path.name + META_SUFFIX), path.with_suffix(META_SUFFIX)):
        if candidate.is_file():
            if candidate.stat().st_size > MAX_SIDECAR_BYTES:
                raise IngestError(
                    f"metadata file {candidate.name} exceeds {MAX_SIDECAR_BYTES // 1024} KB"
                )
            raw = candidate.read_bytes()
            try:
                data = json.loads(raw)
            except (ValueError, RecursionError) as exc:  # JSON, UTF-8 and nesting errors
                detail = (
                    str(exc)
                    if isinstance(exc, json.JSONDecodeError)
                    else "nested too deeply"
                    if isinstance(exc, RecursionError)
                    else "not UTF-8"
                )
                raise IngestError(
                    f"metadata file {candidate.name} is not valid JSON: {detail}"
                ) from exc
            if not isinstance(data, dict):
                raise IngestError(f"metadata file {candidate.name} must hold a JSON object")
            return DocMeta.from_dict(_checked_meta(data, candidate.name)), raw
    return DocMeta(), b""


def read_checked(path: Path, settings: IngestSettings) -> bytes:
    try:
        info = path.stat()
    except FileNotFoundError as exc:
        raise UnreadablePathError("no such file") from exc
    except OSError as exc:
        raise UnreadablePathError(f"cannot stat: {exc.strerror}") from exc
    if not stat.S_ISREG(info.st_mode):
        raise UnreadablePathError("not a regular file")
    limit = int(settings.max_file_mb * 1024 * 1024)
    if info.st_size > limit:
        raise FileTooLargeError(
            f"{info.st_size / 1e6:.1f} MB exceeds the {settings.max_file_mb:g} MB limit "
            "(ingest.max_file_mb)"
        )
    if info.st_size == 0:
        raise EmptyDocumentError("file is empty")
    try:
        with path.open("rb") as handle:
            return handle.read(limit + 1)
    except PermissionError as exc:
        raise UnreadablePathError("permission denied") from exc
    except OSError as exc:
        raise UnreadablePathError(f"cannot read: {exc.strerror}") from exc


_SLUG = re.compile(r"[^A-Za-z0-9._-]+")


def slug(name: str) -> str:
    cleaned = _SLUG.sub("-", name).strip("-.") or "doc"
    return cleaned[:80]


def parse_file(
    path: Path,
    data: bytes,
    meta: DocMeta,
    *,
    doc_id: str,
    digest: str,
    parse: Callable[[str, bytes, DocMeta], LoadedDocument] = run_loader,
) -> Document:
    """Parse already-read bytes into a normalised document (raises IngestError)."""
    fmt = format_for(path)
    loaded = parse(fmt.name, data, meta)
    return build_document(loaded, doc_id=doc_id, source=str(path), digest=digest)


def load_file(
    path: Path,
    settings: IngestSettings,
    *,
    doc_id: str,
    parse: Callable[[str, bytes, DocMeta], LoadedDocument] = run_loader,
) -> Document:
    """Read, check and parse one file into a normalised document (raises IngestError)."""
    format_for(path)
    data = read_checked(path, settings)
    meta, sidecar = read_sidecar(path)
    return parse_file(
        path, data, meta, doc_id=doc_id, digest=content_hash(data, sidecar), parse=parse
    )

"""Documents from records (benchmark corpora, API payloads) rather than files."""

from __future__ import annotations

from typing import Any

from rag.ingest.normalize import build_document, content_hash
from rag.types import Block, DocMeta, Document, LoadedDocument


def record_document(
    doc_id: str, title: str, text: str, *, source: str = "", meta: dict[str, Any] | None = None
) -> Document:
    """A title + body record as a normalised document (the title is a title block)."""
    info = DocMeta.from_dict(meta or {})
    info.title = info.title or title
    blocks = [Block(title, "title")] if title.strip() else []
    blocks.extend(Block(p, "paragraph") for p in text.split("\n\n") if p.strip())
    loaded = LoadedDocument(blocks=blocks, meta=info, format="record")
    return build_document(
        loaded, doc_id=doc_id, source=source or f"record:{doc_id}", digest=content_hash(title, text)
    )

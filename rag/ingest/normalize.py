"""Normalise loader output once, into the text every chunk and citation points into.

Rules: Unicode NFC (not NFKC: it would turn "10⁹/L" into "109/L"), typographic ligatures
unfolded, exotic spaces to plain spaces, soft hyphens and zero-width characters removed,
words hyphenated across line ends re-joined, whitespace inside a block collapsed. Blocks are
joined with a blank line and their spans recorded, so ``doc.text[span.start:span.end]`` is
exactly the normalised block.
"""

from __future__ import annotations

import hashlib
import re
import unicodedata

from rag.errors import EmptyDocumentError
from rag.types import Block, DocMeta, Document, LoadedDocument, Span

_TRANSLATE = str.maketrans(
    {
        "\u00ad": None,  # soft hyphen
        "\u200b": None,
        "\u200c": None,
        "\u200d": None,
        "\u2060": None,
        "\ufeff": None,
        "\u00a0": " ",
        "\u2002": " ",
        "\u2003": " ",
        "\u2004": " ",
        "\u2005": " ",
        "\u2006": " ",
        "\u2007": " ",
        "\u2008": " ",
        "\u2009": " ",
        "\u200a": " ",
        "\u202f": " ",
        "\u205f": " ",
        "\u3000": " ",
        "\t": " ",
        "\r": "\n",
        "\u2028": "\n",
        "\u2029": "\n",
        "\ufb00": "ff",
        "\ufb01": "fi",
        "\ufb02": "fl",
        "\ufb03": "ffi",
        "\ufb04": "ffl",
        "\ufb05": "st",
        "\ufb06": "st",
    }
)
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")
# "immuno-\ntherapy" -> "immunotherapy"; "PD-\nL1" keeps its hyphen.
_HYPHEN_BREAK = re.compile(r"(?<=[a-z])-\n(?=[a-z])")
_HYPHEN_KEEP = re.compile(r"(?<=\w)-[ ]*\n\s*(?=\w)")
_SPACES = re.compile(r"[ ]+")
_NEWLINES = re.compile(r"\s*\n\s*")

BLOCK_SEPARATOR = "\n\n"


def normalize_text(raw: str, *, keep_lines: bool = False) -> str:
    """Normalise one block; ``keep_lines`` keeps row breaks (tables, lists)."""
    text = unicodedata.normalize("NFC", raw).translate(_TRANSLATE)
    text = _CONTROL.sub("", text)
    # Dropping a soft hyphen or zero-width/control character can leave a letter next to its
    # combining accent ("cafe\u00ad\u0301"): compose again so the text really is NFC.
    text = unicodedata.normalize("NFC", text)
    text = _HYPHEN_BREAK.sub("", text)
    text = _HYPHEN_KEEP.sub("-", text)
    if keep_lines:
        lines = (_SPACES.sub(" ", line).strip() for line in text.split("\n"))
        return "\n".join(line for line in lines if line)
    text = _NEWLINES.sub(" ", text)
    return _SPACES.sub(" ", text).strip()


def content_hash(*parts: bytes | str) -> str:
    digest = hashlib.sha256()
    for part in parts:
        digest.update(part.encode("utf-8") if isinstance(part, str) else part)
        digest.update(b"\x00")
    return digest.hexdigest()


def build_document(
    loaded: LoadedDocument, *, doc_id: str, source: str, digest: str | None = None
) -> Document:
    """Normalise blocks, join them and record each block's exact span."""
    pieces: list[str] = []
    spans: list[Span] = []
    cursor = 0
    for block in loaded.blocks:
        text = normalize_text(block.text, keep_lines=block.kind in ("table", "list"))
        if not text:
            continue
        if pieces:
            pieces.append(BLOCK_SEPARATOR)
            cursor += len(BLOCK_SEPARATOR)
        pieces.append(text)
        spans.append(Span(cursor, cursor + len(text), block.kind, block.section, block.page))
        cursor += len(text)
    full = "".join(pieces)
    if not full.strip():
        raise EmptyDocumentError()
    meta = loaded.meta
    if not meta.title:
        meta.title = _first_title(loaded.blocks, spans, full)
    meta.title = normalize_text(meta.title)
    return Document(
        doc_id=doc_id,
        text=full,
        spans=spans,
        meta=meta,
        format=loaded.format,
        source=source,
        content_hash=digest or content_hash(full),
    )


def _first_title(blocks: list[Block], spans: list[Span], text: str) -> str:
    for span in spans:
        if span.kind in ("title", "heading"):
            return text[span.start : span.end][:300]
    first = spans[0]
    return text[first.start : first.end][:120]


def year_from(meta: DocMeta) -> int | None:
    if meta.year:
        return meta.year
    match = re.search(r"\b(19|20)\d{2}\b", meta.date or "")
    return int(match.group(0)) if match else None

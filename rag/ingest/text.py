"""Plain-text and Markdown loaders.

Markdown structure comes from markdown-it-py (CommonMark + GFM tables); plain text that uses
ATX headings (as exported summaries often do) is read as Markdown so its sections survive.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

from markdown_it import MarkdownIt
from markdown_it.token import Token

from rag.errors import BinaryFileError, DecodeError, FileTooLargeError
from rag.types import Block, DocMeta, LoadedDocument

_BOILERPLATE = re.compile(
    r"^(advertisement|fake ad placeholder.*|skip to (main )?content|share this article)$", re.I
)
# A "Tags"/"Keywords" line announces a tag cloud: keywords without separators, not prose.
_TAG_HEADER = re.compile(r"^(tags|keywords|related topics)$", re.I)
_REFERENCES = re.compile(r"^\W*(references|bibliography|literature cited)\W*(\n|:|$)", re.I)
_ATX_HEADING = re.compile(r"^#{1,6}\s+\S", re.M)
_MD = MarkdownIt("commonmark").enable("table")
# As for PDFs: past this a file is a dump, not an article. Parsing, chunking and embedding are
# linear but unbounded in time (text is not parsed in the sandbox), so refuse it up front.
MAX_CHARS = 20_000_000


def decode_text(data: bytes) -> str:
    """UTF-8 (with or without BOM) or UTF-16 with BOM; anything else is refused by name."""
    if data.startswith((b"\xff\xfe", b"\xfe\xff")):
        try:
            return data.decode("utf-16")
        except UnicodeDecodeError as exc:
            raise DecodeError(f"invalid UTF-16 text at byte {exc.start}") from exc
    sample = data[:8192]
    if b"\x00" in sample:
        raise BinaryFileError("binary data (NUL bytes), not text")
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise DecodeError(
            f"not valid UTF-8 (byte 0x{data[exc.start]:02x} at offset {exc.start}); "
            "re-save the file as UTF-8"
        ) from exc


def _looks_binary(text: str) -> bool:
    sample = text[:4096]
    if not sample:
        return False
    control = sum(1 for c in sample if ord(c) < 32 and c not in "\n\r\t\f")
    return control / len(sample) > 0.05


def _checked_size(text: str) -> str:
    if len(text) > MAX_CHARS:
        raise FileTooLargeError(
            f"text holds {len(text):,} characters; the limit is {MAX_CHARS:,} (split it first)"
        )
    return text


def load_text(data: bytes, meta: DocMeta) -> LoadedDocument:
    text = _checked_size(decode_text(data))
    if _looks_binary(text):
        raise BinaryFileError("mostly control characters, not text")
    if len(_ATX_HEADING.findall(text)) >= 2:
        return _markdown_blocks(text, meta, fmt="text")
    paragraphs = [p for p in re.split(r"\n\s*\n", text) if p.strip()]
    blocks: list[Block] = []
    skip_next = False
    section: tuple[str, ...] = ()
    for i, para in enumerate(paragraphs):
        stripped = para.strip()
        if skip_next or _BOILERPLATE.match(stripped):
            skip_next = False
            continue
        if _TAG_HEADER.match(stripped):
            skip_next = True
            continue
        if _REFERENCES.match(stripped):
            section = ("References",)  # a reference list closes a plain-text article
        single_line = "\n" not in stripped
        is_title = i == 0 and single_line and len(stripped) < 200 and len(paragraphs) > 1
        blocks.append(Block(stripped, "title" if is_title else "paragraph", section))
    if blocks and blocks[0].kind == "title" and not meta.title:
        meta.title = blocks[0].text
    return LoadedDocument(blocks=blocks, meta=meta, format="text")


def load_markdown(data: bytes, meta: DocMeta) -> LoadedDocument:
    text = _checked_size(decode_text(data))
    if _looks_binary(text):
        raise BinaryFileError("mostly control characters, not text")
    return _markdown_blocks(text, meta, fmt="markdown")


def _inline_text(token: Token) -> str:
    """Plain text of an inline token: emphasis markers dropped, link text kept, images dropped."""
    parts: list[str] = []
    for child in token.children or []:
        if child.type in ("text", "code_inline"):
            parts.append(child.content)
        elif child.type in ("softbreak", "hardbreak"):
            parts.append("\n")
        elif child.type == "image":
            continue
    return "".join(parts)


def _markdown_blocks(text: str, meta: DocMeta, *, fmt: str) -> LoadedDocument:
    tokens = _MD.parse(text)
    blocks: list[Block] = []
    path: list[tuple[int, str]] = []  # (level, heading)
    table_rows: list[list[str]] = []
    row: list[str] | None = None
    list_items: list[str] | None = None
    list_depth = 0
    title_seen = False

    def section() -> tuple[str, ...]:
        return tuple(h for _, h in path)

    i = 0
    while i < len(tokens):
        tok = tokens[i]
        if tok.type == "heading_open":
            level = int(tok.tag[1])
            heading = _inline_text(tokens[i + 1]).strip()
            if level == 1 and not title_seen:
                title_seen = True
                if not meta.title:
                    meta.title = heading
                path = []
                blocks.append(Block(heading, "title"))
            else:
                while path and path[-1][0] >= level:
                    path.pop()
                path.append((level, heading))
                blocks.append(Block(heading, "heading", section()[:-1]))
            i += 3
            continue
        if tok.type in ("bullet_list_open", "ordered_list_open"):
            list_depth += 1
            if list_depth == 1:
                list_items = []
        elif tok.type in ("bullet_list_close", "ordered_list_close"):
            list_depth -= 1
            if list_depth == 0 and list_items:
                blocks.append(Block("\n".join(list_items), "list", section()))
                list_items = None
        elif tok.type == "table_open":
            table_rows = []
        elif tok.type == "tr_open":
            row = []
        elif tok.type in ("th_open", "td_open") and row is not None:
            row.append(_inline_text(tokens[i + 1]).strip())
        elif tok.type == "tr_close" and row is not None:
            table_rows.append(row)
            row = None
        elif tok.type == "table_close":
            rendered = "\n".join(" | ".join(cells) for cells in table_rows)
            blocks.append(Block(rendered, "table", section()))
        elif tok.type == "inline" and row is None:
            content = _inline_text(tok).strip()
            if not content or _BOILERPLATE.match(content):
                pass
            elif list_items is not None:
                list_items.append(content)
            else:
                blocks.append(Block(content, "paragraph", section()))
        elif tok.type in ("fence", "code_block") and tok.content.strip():
            blocks.append(Block(tok.content, "list", section()))
        i += 1
    return LoadedDocument(blocks=_drop_empty(blocks), meta=meta, format=fmt)


def _drop_empty(blocks: Iterable[Block]) -> list[Block]:
    return [b for b in blocks if b.text.strip()]

"""Chunk: normalised documents -> token-budgeted chunks that are exact spans of the text."""

from rag.chunk.chunker import Chunker, chunk_id, embedding_text

__all__ = ["Chunker", "chunk_id", "embedding_text"]

"""Retrieve: lexical + dense candidates, fusion, query expansion, reranking, diversity."""

from rag.retrieve.expand import QueryExpander, extract_aliases
from rag.retrieve.fusion import mmr, rrf
from rag.retrieve.retriever import Retrieval, Retriever

__all__ = ["QueryExpander", "Retrieval", "Retriever", "extract_aliases", "mmr", "rrf"]

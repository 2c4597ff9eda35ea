"""Text tools every pipeline stage may use: named entities and how to find their mentions."""

from rag.text.entities import Entity, mention_pattern, mentions, named_entities

__all__ = ["Entity", "mention_pattern", "mentions", "named_entities"]

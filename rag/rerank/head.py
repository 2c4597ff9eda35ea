"""The segment-cosine score head shared by full checkpoints and the shipped adapter."""

from __future__ import annotations

import functools
import math
import typing
from typing import Any


@functools.cache
def segment_cosine_class() -> type:
    """Build the head class lazily so importing this module does not import torch."""
    import torch
    from sentence_transformers.base.modules import Module

    class SegmentCosineScore(Module):
        """Relevance = scale * cos(mean of query tokens, mean of passage tokens) + bias.

        Query and passage are encoded jointly (every layer attends across both), so this is
        a cross-encoder; but unlike a fresh [CLS] classifier it starts out close to the packaged
        bi-encoder's cosine (MiniLM was trained with mean pooling), so a short CPU fine-tune
        refines a working ranker instead of first discovering a relevance signal from zero.
        """

        config_keys: typing.ClassVar[list[str]] = ["scale", "bias"]

        def __init__(self, scale: float = 20.0, bias: float = -10.0) -> None:
            super().__init__()
            self.scale = float(scale)
            self.bias = float(bias)
            self.log_scale = torch.nn.Parameter(torch.tensor(math.log(scale)))
            self.offset = torch.nn.Parameter(torch.tensor(float(bias)))

        def forward(self, features: dict[str, Any], **kwargs: Any) -> dict[str, Any]:
            tokens = features["token_embeddings"].float()
            mask = features["attention_mask"].to(tokens.dtype)
            segment = features["token_type_ids"].to(tokens.dtype)
            query_w = (mask * (1 - segment)).unsqueeze(-1)  # [CLS] query [SEP]
            passage_w = (mask * segment).unsqueeze(-1)  # passage [SEP]
            q = (tokens * query_w).sum(1) / query_w.sum(1).clamp(min=1.0)
            p = (tokens * passage_w).sum(1) / passage_w.sum(1).clamp(min=1.0)
            cos = torch.nn.functional.cosine_similarity(q, p, dim=-1)
            features["scores"] = (self.log_scale.exp() * cos + self.offset).unsqueeze(1)
            return features

        def get_config_dict(self) -> dict[str, Any]:
            return {"scale": self.scale, "bias": self.bias}

        def save(self, output_path: str, *args: Any, safe_serialization: bool = True, **kw: Any):
            self.save_config(output_path)
            self.save_torch_weights(output_path, safe_serialization=safe_serialization)

        @classmethod
        def load(cls, model_name_or_path: str, subfolder: str = "", **kwargs: Any) -> Any:
            hub = {
                k: kwargs[k]
                for k in ("token", "cache_folder", "revision", "local_files_only")
                if k in kwargs
            }
            config = cls.load_config(model_name_or_path, subfolder=subfolder, **hub)
            module = cls(**config)
            return cls.load_torch_weights(
                model_name_or_path, subfolder=subfolder, model=module, **hub
            )

    SegmentCosineScore.__module__ = "rag.rerank.cross_encoder"  # the path checkpoints record
    SegmentCosineScore.__qualname__ = "SegmentCosineScore"
    return SegmentCosineScore

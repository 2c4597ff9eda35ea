"""The shipped reranker: a LoRA adapter and score head over the packaged MiniLM.

A fully fine-tuned cross-encoder is a 90 MB checkpoint that only a 25-minute training run
builds, so a fresh install used to run without one. The adapter (low-rank updates of the
attention and feed-forward weights, plus the two numbers of the segment-cosine head) is about
1.5 MB: it ships in ``rag/rerank/artifacts/`` with ``reranker.json`` (recipe, training data
counts and fingerprint, sha256, the command that rebuilds it) and is merged into the base
weights at load, so scoring costs exactly what the full checkpoint did.

Rebuilt by ``rag eval train-reranker --all --ship`` (``rag/eval/train_reranker.py``).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from rag.errors import ModelUnavailableError
from rag.models import MINILM_LORA_TARGETS, sha256_file

ARTIFACT_DIR = Path(__file__).resolve().parent / "artifacts"
ADAPTER_FILE = "reranker.safetensors"
MANIFEST_FILE = "reranker.json"
BASE_MODEL = "all-MiniLM-L6-v2"
LORA: dict[str, Any] = {
    "r": 16,
    "alpha": 32,
    "dropout": 0.1,
    "target_modules": list(MINILM_LORA_TARGETS),
}
HEAD_KEYS = ("1.log_scale", "1.offset")


def is_adapter_dir(path: Path) -> bool:
    return (path / ADAPTER_FILE).is_file()


def segment_cosine_model(base: Path, max_length: int) -> Any:
    """Packaged MiniLM encoder + the segment-cosine head (untrained: the bi-encoder's cosine)."""
    from sentence_transformers.base.modules import Transformer
    from sentence_transformers.cross_encoder import CrossEncoder

    from rag.rerank.head import segment_cosine_class

    encoder = Transformer(
        str(base),
        transformer_task="feature-extraction",
        max_seq_length=max_length,
        config_kwargs={"num_labels": 1},
        processor_kwargs={"local_files_only": True},
        model_kwargs={"local_files_only": True},
    )
    return CrossEncoder(modules=[encoder, segment_cosine_class()()], device="cpu")


def with_lora(model: Any, *, training: bool, lora: dict[str, Any] | None = None) -> Any:
    """Wrap the encoder of ``model`` (a segment-cosine CrossEncoder) in LoRA layers.

    Only the LoRA matrices and the head train; the MiniLM weights stay frozen.
    """
    from peft import LoraConfig, get_peft_model

    lora = lora or LORA
    config = LoraConfig(
        r=lora["r"],
        lora_alpha=lora["alpha"],
        lora_dropout=lora["dropout"] if training else 0.0,
        target_modules=lora["target_modules"],
    )
    model[0].model = get_peft_model(model[0].model, config)
    return model


def adapter_state(model: Any) -> dict[str, Any]:
    """What the adapter file holds: LoRA matrices and the head, float16."""
    import torch

    return {
        k: v.detach().to(torch.float16).contiguous()
        for k, v in model.state_dict().items()
        if "lora_" in k or k in HEAD_KEYS
    }


def write_adapter(model: Any, folder: Path, manifest: dict[str, Any]) -> dict[str, Any]:
    """Save the adapter and its manifest (sha256 and size added) into ``folder``."""
    from safetensors.torch import save_file

    folder.mkdir(parents=True, exist_ok=True)
    path = folder / ADAPTER_FILE
    save_file(adapter_state(model), str(path))
    manifest = {
        **manifest,
        "adapter_sha256": sha256_file(path),
        "adapter_bytes": path.stat().st_size,
    }
    (folder / MANIFEST_FILE).write_text(json.dumps(manifest, indent=2) + "\n")
    return manifest


def read_manifest(folder: Path) -> dict[str, Any]:
    try:
        return json.loads((folder / MANIFEST_FILE).read_text())
    except (OSError, json.JSONDecodeError) as exc:
        raise ModelUnavailableError(
            f"cannot read the reranker manifest in {folder}: {exc}"
        ) from exc


def load_adapter_model(folder: Path, *, dtype: str = "float32") -> Any:
    """The packaged MiniLM with the adapter in ``folder`` merged in, as a CrossEncoder."""
    import torch
    from safetensors.torch import load_file

    from rag.embed.sentence import resolve_model_dir

    manifest = read_manifest(folder)
    path = folder / ADAPTER_FILE
    digest = sha256_file(path)
    if manifest.get("adapter_sha256") not in (None, digest):
        raise ModelUnavailableError(
            f"{path} does not match the sha256 in {MANIFEST_FILE}; rebuild it with "
            "`rag eval train-reranker --all --ship`"
        )
    recipe = manifest.get("recipe", {})
    model = segment_cosine_model(resolve_model_dir(BASE_MODEL), recipe.get("max_length", 256))
    model = with_lora(model, training=False, lora=recipe.get("lora_config") or LORA)
    state = {k: v.float() for k, v in load_file(str(path)).items()}
    known = set(model.state_dict())
    unknown = set(state) - known
    missing = [k for k in known if "lora_" in k and k not in state]
    if unknown or missing or not all(k in state for k in HEAD_KEYS):
        raise ModelUnavailableError(
            f"the adapter {path} does not fit the base model ({len(unknown)} unknown, "
            f"{len(missing)} missing tensors); rebuild it with "
            "`rag eval train-reranker --all --ship`"
        )
    model.load_state_dict(state, strict=False)
    model[0].model = model[0].model.merge_and_unload()
    model.eval()
    if dtype == "bfloat16":
        model.to(torch.bfloat16)
    return model

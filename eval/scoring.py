"""Per-question metric values and their aggregation with bootstrap confidence intervals.

Definitions (documented in eval/README.md):
- correct: answerable item, not abstained, every key fact present (yes/no items: label matches);
- fact_recall: share of key facts present in the shown answer;
- exact_match / token_f1 / synonym_match: against the item's accepted short answers;
- yes_no_accuracy, yes_no_macro_f1: over yes/no/maybe items;
- citation_recall (ALCE): share of answer sentences fully supported by their own citations,
  judged by the project's support checker; citation_precision: share of citations that support
  (alone) or are needed for their sentence. Both for the model's raw output ("model_") and for
  the verified answer shown to the reader;
- numbers_traced: share of numbers in the shown answer found in its cited passages;
- abstention precision/recall/F1: "positive" = abstained, truth = item is unanswerable;
- passage_recall@k: a retrieved chunk among the top k overlaps a gold quote; doc metrics by ranx.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
from rag.eval.gold import GoldItem, fact_present

_TOKEN = re.compile(r"[a-z0-9]+")
_ARTICLES = {"a", "an", "the"}


def normalise(text: str) -> str:
    return " ".join(t for t in _TOKEN.findall(text.lower()) if t not in _ARTICLES)


def token_f1(prediction: str, gold: str) -> float:
    p, g = normalise(prediction).split(), normalise(gold).split()
    common = Counter(p) & Counter(g)
    overlap = sum(common.values())
    if not p or not g or not overlap:
        return 0.0
    precision, recall = overlap / len(p), overlap / len(g)
    return 2 * precision * recall / (precision + recall)


def item_values(item: GoldItem, record: dict[str, Any]) -> dict[str, float | None]:
    """Metric values for one question (None = the metric does not apply to this item)."""
    v: dict[str, float | None] = {}
    response = record.get("response") or {}
    abstained = bool(response.get("abstained"))
    shown = "" if abstained else response.get("answer", "")
    raw = response.get("raw_answer", "")
    v["abstained"] = float(abstained)

    if item.answer_type == "yes_no" and "label" in response:
        v["yes_no_accuracy"] = float(response["label"] == item.yes_no)
        v["correct"] = v["yes_no_accuracy"]
    elif item.answerable and item.key_facts:
        present = [fact_present(f, shown) for f in item.key_facts]
        v["fact_recall"] = sum(present) / len(present)
        v["correct"] = float(all(present) and not abstained)
    if item.exact_answers and item.answer_type != "yes_no":
        v["synonym_match"] = float(
            any(normalise(a) in normalise(shown) for a in item.exact_answers)
        )
        v["exact_match"] = float(any(normalise(a) == normalise(shown) for a in item.exact_answers))
        v["token_f1"] = max(token_f1(shown, a) for a in item.exact_answers)
    if item.list_answers:
        v.update(list_scores(item.list_answers, shown))
    verdict = response.get("verdict")
    if verdict and item.answer_type == "yes_no" and item.yes_no:
        v["verdict_shown"] = float(bool(verdict.get("shown")))
        if verdict.get("shown"):
            v["verdict_shown_correct"] = float(verdict.get("label") == item.yes_no)
    if item.forbidden:
        text = f"{shown}\n{raw}".lower()
        v["forbidden_free"] = float(not any(f.lower() in text for f in item.forbidden))

    passages = [c.get("passage", "") for c in response.get("citations") or []]
    figures = shown_figures(item, shown, passages)
    if figures is not None:
        v["wrong_figure"] = float(bool(figures))
    sentences = response.get("sentences") or []
    if sentences:
        kept = [s for s in sentences if not s.get("dropped")]
        if kept:
            v["citation_recall"] = sum(s["verdict"] == "supported" for s in kept) / len(kept)
            shown_cites = sum(len(s["citations"]) for s in kept)
            if shown_cites:
                good = sum(len(s["citations"]) for s in kept if s["verdict"] != "unsupported")
                v["citation_precision"] = good / shown_cites
        model_ok = [
            s
            for s in sentences
            if s["verdict"] == "supported" and not s.get("auto_cited") and s.get("model_citations")
        ]
        v["model_citation_recall"] = len(model_ok) / len(sentences)
        written = sum(len(s.get("model_citations", [])) for s in sentences)
        written += response.get("removed_citations", 0)
        if written:
            useful = sum(len(s["citations"]) for s in model_ok)
            v["model_citation_precision"] = useful / written
        numbers = [n for s in kept for n in s.get("numbers", [])]
        if numbers:
            v["numbers_traced"] = sum(n["traced"] for n in numbers) / len(numbers)
        model_numbers = [n for s in sentences for n in s.get("numbers", [])]
        if model_numbers:
            v["model_numbers_traced"] = sum(n["traced"] for n in model_numbers) / len(model_numbers)

    retrieval = record.get("retrieval") or {}
    rank = retrieval.get("passage_rank")
    if item.gold_quotes:
        for k in (1, 5, 10):
            v[f"passage_recall@{k}"] = float(rank is not None and rank <= k)
    timings = response.get("timings") or {}
    for key in ("retrieval_ms", "evidence_ms", "ttft_ms", "total_ms"):
        if key in timings:
            v[f"latency.{key}"] = float(timings[key])
    return v


def shown_figures(item: GoldItem, shown: str, passages: Sequence[str] = ()) -> list[str] | None:
    """Figures in a shown answer that are not the item's: for an unanswerable item every
    figure not in the question; for an answerable one every figure in none of its gold quotes
    nor in the cited passage sentences that hold a gold quote (a figure from another sentence,
    often about another trial). Years, dates, ordinals, labels (phase, stage, grade), the
    digits of names and, for answerable items, registry ids do not count. None when an
    answerable item has no gold quotes."""
    if item.answerable and not item.gold_quotes:
        return None
    from rag.verify.numbers import (
        canonical_set,
        day_of_month,
        extract_numbers,
        inside_name,
        numbers_a_label,
        strip_citations,
    )

    allowed = canonical_set(item.question)
    if item.answerable:
        allowed |= canonical_set(" ".join(item.gold_quotes))
        allowed |= canonical_set(" ".join(_gold_sentences(item.gold_quotes, passages)))
    clean = strip_citations(shown)
    return [
        n.text
        for n in extract_numbers(shown)
        if n.canonical not in allowed
        and not re.fullmatch(r"(?:19|20)\d\d", n.text)  # a year, as in "(Zhang et al., 2024)"
        and not (item.answerable and n.kind == "trial-id")  # the trial's own registry id
        # Not figures at all: the digits of a name (PD-L1, JAK1), a label ("phase 3",
        # "stage IV"), an ordinal, a date.
        and not inside_name(clean, n.start, n.end)
        and not numbers_a_label(clean, n.start)
        and n.kind != "ordinal"
        and not day_of_month(clean, n.start)
    ]


def _gold_sentences(quotes: Sequence[str], passages: Sequence[str]) -> list[str]:
    """The sentences of ``passages`` that hold one of the gold ``quotes`` (spacing aside)."""
    from rag.text.entities import sentence_spans

    wanted = [normalise(q) for q in quotes if q.strip()]
    found = []
    for passage in passages:
        for a, b in sentence_spans(passage):
            sentence = passage[a:b]
            if any(q in normalise(sentence) for q in wanted):
                found.append(sentence)
    return found


_ITEM_SPLIT = re.compile(r"\s*(?:[,;:\n•]|\band\b|\bor\b|\[\d+\])\s*", re.I)


def list_scores(expected: list[list[str]], shown: str) -> dict[str, float]:
    """List precision, recall and F1 of a free-text answer (BioASQ list questions).

    Recall: share of expected items named (any synonym). Precision: items named over the
    items the answer lists, counted as its comma/"and"-separated fragments of at most six
    words (longer fragments are prose around the list, not items).
    """
    text = normalise(shown)
    found = sum(1 for synonyms in expected if any(normalise(s) in text for s in synonyms if s))
    fragments = [f for f in _ITEM_SPLIT.split(shown) if re.search(r"\w", f) and len(f.split()) <= 6]
    listed = max(len(fragments), found)
    precision = found / listed if listed else 0.0
    recall = found / len(expected) if expected else 0.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    return {"list_precision": precision, "list_recall": recall, "list_f1": f1}


def bootstrap_ci(
    values: Sequence[float], *, n: int = 1000, seed: int = 0, stat: Callable = np.mean
) -> tuple[float, float]:
    arr = np.asarray(values, dtype=np.float64)
    if arr.size == 0:
        return (float("nan"), float("nan"))
    if arr.size == 1:
        return (float(arr[0]), float(arr[0]))
    rng = np.random.default_rng(seed)
    samples = rng.integers(0, arr.size, size=(n, arr.size))
    stats = np.asarray([stat(arr[s]) for s in samples])
    return float(np.percentile(stats, 2.5)), float(np.percentile(stats, 97.5))


def macro_f1(gold: list[str], pred: list[str], labels: Sequence[str]) -> float:
    scores = []
    for label in labels:
        tp = sum(g == label and p == label for g, p in zip(gold, pred, strict=True))
        fp = sum(g != label and p == label for g, p in zip(gold, pred, strict=True))
        fn = sum(g == label and p != label for g, p in zip(gold, pred, strict=True))
        if tp + fp + fn == 0:
            continue
        scores.append(2 * tp / (2 * tp + fp + fn))
    return float(np.mean(scores)) if scores else float("nan")


def _abstention(truth: list[bool], predicted: list[bool]) -> dict[str, float]:
    tp = sum(t and p for t, p in zip(truth, predicted, strict=True))
    fp = sum(p and not t for t, p in zip(truth, predicted, strict=True))
    fn = sum(t and not p for t, p in zip(truth, predicted, strict=True))
    precision = tp / (tp + fp) if tp + fp else float("nan")
    recall = tp / (tp + fn) if tp + fn else float("nan")
    f1 = 2 * tp / (2 * tp + fp + fn) if tp + fp + fn else float("nan")
    return {"precision": precision, "recall": recall, "f1": f1}


def aggregate(
    items: Sequence[GoldItem], records: Sequence[dict[str, Any]], *, seed: int = 0
) -> dict[str, dict[str, float]]:
    """Mean of every per-question metric with a bootstrap 95% CI, plus set-level metrics."""
    by_metric: dict[str, list[float]] = {}
    for record in records:
        for name, value in record["values"].items():
            if value is not None:
                by_metric.setdefault(name, []).append(float(value))
    out: dict[str, dict[str, float]] = {}
    for name, values in sorted(by_metric.items()):
        if name.startswith("latency."):
            arr = np.asarray(values)
            lo50, hi50 = bootstrap_ci(values, seed=seed, stat=lambda a: np.percentile(a, 50))
            out[name] = {
                "p50": float(np.percentile(arr, 50)),
                "p95": float(np.percentile(arr, 95)),
                "ci_low": lo50,
                "ci_high": hi50,
                "n": len(values),
            }
            continue
        lo, hi = bootstrap_ci(values, seed=seed)
        out[name] = {"value": float(np.mean(values)), "ci_low": lo, "ci_high": hi, "n": len(values)}

    # Set-level metrics, bootstrapped over questions.
    rng = np.random.default_rng(seed)
    yn = [
        (i.yes_no, r["response"].get("label"))
        for i, r in zip(items, records, strict=True)
        if i.answer_type == "yes_no" and r.get("response", {}).get("label")
    ]
    if yn:
        gold, pred = [g for g, _ in yn], [p for _, p in yn]
        labels = ("yes", "no", "maybe")
        value = macro_f1(gold, pred, labels)
        boots = []
        for _ in range(1000):
            idx = rng.integers(0, len(yn), len(yn))
            boots.append(macro_f1([gold[j] for j in idx], [pred[j] for j in idx], labels))
        out["yes_no_macro_f1"] = {
            "value": value,
            "ci_low": float(np.nanpercentile(boots, 2.5)),
            "ci_high": float(np.nanpercentile(boots, 97.5)),
            "n": len(yn),
        }
    truth = [not i.answerable for i in items]
    if any(truth):
        predicted = [bool(r["values"].get("abstained")) for r in records]
        point = _abstention(truth, predicted)
        boots_by: dict[str, list[float]] = {k: [] for k in point}
        for _ in range(1000):
            idx = rng.integers(0, len(items), len(items))
            sample = _abstention([truth[j] for j in idx], [predicted[j] for j in idx])
            for k, v in sample.items():
                boots_by[k].append(v)
        for k, v in point.items():
            out[f"abstention_{k}"] = {
                "value": v,
                "ci_low": float(np.nanpercentile(boots_by[k], 2.5)),
                "ci_high": float(np.nanpercentile(boots_by[k], 97.5)),
                "n": len(items),
            }
    return out


def paired_delta(
    a: dict[str, float], b: dict[str, float], *, n: int = 2000, seed: int = 0
) -> dict[str, float]:
    """Mean of b - a over shared questions, bootstrap CI, and wins/losses/ties."""
    shared = sorted(set(a) & set(b))
    if not shared:
        return {"n": 0}
    diffs = np.asarray([b[q] - a[q] for q in shared], dtype=np.float64)
    lo, hi = bootstrap_ci(diffs, n=n, seed=seed)
    return {
        "n": len(shared),
        "a": float(np.mean([a[q] for q in shared])),
        "b": float(np.mean([b[q] for q in shared])),
        "delta": float(diffs.mean()),
        "ci_low": lo,
        "ci_high": hi,
        "wins": int((diffs > 0).sum()),
        "losses": int((diffs < 0).sum()),
        "ties": int((diffs == 0).sum()),
        "significant": bool(lo > 0 or hi < 0),
    }

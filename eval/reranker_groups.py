"""Training groups for the reranker: each question with its gold passages and the hard
negatives hybrid retrieval puts near them (mined from the cached bench indexes, so they are
the candidates the reranker meets at inference), split by fold so no question scores itself.
"""

from __future__ import annotations

import hashlib
import random
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from rag.eval.bench_retrieval import build_assistant, fold_of
from rag.eval.datasets import Dataset, Question, load_shared

from rag.chunk import embedding_text
from rag.rerank.cross_encoder import MAX_LENGTH, RECIPE
from rag.settings import Settings
from rag.types import Filters, StoredChunk

DATASETS = ("scifact", "bioasq", "pubmedqa")
FOLDS = ("fold-0", "fold-1", "full")


@dataclass
class Recipe:
    """Everything that decides the trained weights (recorded in ``recipe.json``)."""

    name: str = RECIPE
    seed: int = 13
    # segment-cosine: joint encoder + cosine of the query/passage token means (starts near the
    # bi-encoder); cls: the usual fresh [CLS] classifier (learns far slower on a CPU budget).
    head: str = "segment-cosine"
    # listnet: softmax over one question's candidates (bias-free, ranks directly);
    # lambda: LambdaLoss (NDCG-weighted pairs); bce: pointwise binary cross-entropy.
    loss: str = "lambda"
    # LoRA adapter (r 16) + head over the frozen MiniLM: a 1.5 MB artifact that ships. False =
    # every weight trained (v2: a 90 MB checkpoint; learning_rate 7e-5 suited it).
    lora: bool = True
    lists_per_batch: int = 2  # listwise losses: questions per step (~8 passages each)
    # Questions used per dataset and fold (None = all); keeps a model within ~25 CPU minutes.
    max_questions: dict[str, int | None] = field(
        default_factory=lambda: {"scifact": 400, "bioasq": 300, "pubmedqa": 100}
    )
    max_positives: int = 2
    hard_negatives: dict[str, int] = field(
        default_factory=lambda: {"scifact": 5, "bioasq": 3, "pubmedqa": 2}
    )
    random_negatives: int = 1
    mine_depth: int = 30  # hard negatives come from the top `mine_depth` hybrid candidates
    # One pass: the LoRA recipe's budget (a model in ~20 CPU-minutes on a 2-core AVX2 box). The
    # full fine-tune v2 gained 0.011 held-out nDCG@10 from a second pass (README notes).
    epochs: float = 1.0
    batch_size: int = 16  # bce: pairs per step
    learning_rate: float = 3e-4  # LoRA updates start at zero and need a larger step
    warmup_ratio: float = 0.1
    weight_decay: float = 0.01
    max_length: int = MAX_LENGTH
    bf16: bool = True
    freeze_word_embeddings: bool = True


@dataclass
class Group:
    """One question's training candidates (labels 1 = gold, 0 = negative)."""

    dataset: str
    qid: str
    query: str
    passages: list[str]
    labels: list[int]


def fold_questions(ds: Dataset, fold: str) -> list[Question]:
    """Questions a model for ``fold`` may train on: its own fold only, or all for ``full``."""
    if fold == "full":
        return list(ds.questions)
    f = _fold_number(fold)
    return [q for q in ds.questions if fold_of(ds.name, q.id) == f]


def assert_fold(groups: Iterable[Group], fold: str) -> None:
    """Fail loudly if a fold model would train on a question of the other fold."""
    if fold == "full":
        return
    f = _fold_number(fold)
    leaked = [(g.dataset, g.qid) for g in groups if fold_of(g.dataset, g.qid) != f]
    if leaked:
        raise AssertionError(
            f"{len(leaked)} training questions of {fold} belong to the other fold "
            f"(first: {leaked[0]}); they would be evaluated by a model trained on them"
        )


def _fold_number(fold: str) -> int:
    if fold not in ("fold-0", "fold-1"):
        raise ValueError(f"fold must be one of {', '.join(FOLDS)}, got {fold!r}")
    return int(fold[-1])


def chunk_passage(chunk: StoredChunk) -> str:
    return embedding_text(chunk.title, tuple(chunk.section), chunk.text)


def _gold_docs(ds: Dataset, q: Question) -> list[str]:
    return sorted(ds.qrels.get(q.id) or dict.fromkeys(q.gold_ids, 1))


def _evidence_snippets(ds: Dataset, q: Question, doc_id: str, docs: dict[str, Any]) -> list[str]:
    """SciFact rationale sentences: they say which chunk of a long abstract is the evidence."""
    evidence = (q.extra.get("evidence") or {}).get(doc_id) or {}
    sentences = docs[doc_id].extra.get("sentences") or [] if doc_id in docs else []
    out = []
    for group in evidence.get("sentences", []):
        for i in group if isinstance(group, list) else [group]:
            if isinstance(i, int) and 0 <= i < len(sentences):
                out.append(" ".join(str(sentences[i]).split())[:80])
    return out


def mine_groups(
    ds: Dataset,
    assistant: Any,
    questions: Sequence[Question],
    recipe: Recipe,
    rng: random.Random,
) -> list[Group]:
    """Gold passages + hybrid hard negatives + random negatives for each question."""
    index = assistant.index
    docs = {d.id: d for d in ds.corpus}
    pmid_of = {d.id: str(d.extra.get("pmid") or "") for d in ds.corpus}
    corpus_ids = [d.id for d in ds.corpus]
    n_hard = recipe.hard_negatives.get(ds.name, 3)
    groups: list[Group] = []
    for q in questions:
        gold = set(_gold_docs(ds, q))
        gold_pmids = {str(p) for p in q.extra.get("gold_pmids", [])}

        def is_gold(doc_id: str, gold: set[str] = gold, gold_pmids: set[str] = gold_pmids) -> bool:
            # A BioASQ snippet of a gold article may be unlabelled evidence: never a negative.
            return doc_id in gold or bool(gold_pmids and pmid_of.get(doc_id) in gold_pmids)

        result = assistant.retriever.run(
            q.text, k=recipe.mine_depth, mode="hybrid", rerank=False, diversify=False
        )
        ranked = [h.chunk for h in result.hits]
        rank_of = {c.row_id: r for r, c in enumerate(ranked)}

        positives: list[StoredChunk] = []
        gold_list = sorted(gold)
        rng.shuffle(gold_list)
        for doc_id in gold_list:
            ids = index.filter_ids(Filters(doc_ids=(doc_id,)))
            chunks = sorted(index.chunks([int(i) for i in ids]).values(), key=lambda c: c.ordinal)
            if not chunks:
                continue
            if len(chunks) > 1:
                marks = _evidence_snippets(ds, q, doc_id, docs)
                with_evidence = [
                    c for c in chunks if any(m in " ".join(c.text.split()) for m in marks)
                ]
                # No rationale: the chunk hybrid search ranked highest (else the first one).
                chunks = (
                    with_evidence or sorted(chunks, key=lambda c: rank_of.get(c.row_id, 999))[:1]
                )
            positives.extend(chunks[:1] if len(gold_list) > 1 else chunks)
            if len(positives) >= recipe.max_positives:
                break
        if not positives:
            continue
        positives = positives[: recipe.max_positives]

        # One chunk per negative document: more distinct mistakes per training pair.
        negatives: list[StoredChunk] = []
        for c in ranked:
            if not is_gold(c.doc_id) and all(c.doc_id != n.doc_id for n in negatives):
                negatives.append(c)
        # Half the hardest candidates, half drawn from the rest of the depth the reranker sees.
        top = negatives[: (n_hard + 1) // 2]
        rest = negatives[len(top) :]
        hard = top + rng.sample(rest, min(n_hard - len(top), len(rest)))
        taken = {c.row_id for c in hard}
        randoms: list[StoredChunk] = []
        for _ in range(recipe.random_negatives * 20):
            if len(randoms) >= recipe.random_negatives:
                break
            doc_id = rng.choice(corpus_ids)
            if is_gold(doc_id):
                continue
            ids = [int(i) for i in index.filter_ids(Filters(doc_ids=(doc_id,)))]
            if not ids:
                continue
            pick = index.chunks([rng.choice(ids)])
            for chunk in pick.values():
                if chunk.row_id not in taken:
                    taken.add(chunk.row_id)
                    randoms.append(chunk)
        chosen = positives + hard + randoms
        groups.append(
            Group(
                ds.name,
                q.id,
                q.text,
                [chunk_passage(c) for c in chosen],
                [1] * len(positives) + [0] * (len(hard) + len(randoms)),
            )
        )
    return groups


def _sample(questions: list[Question], cap: int | None, rng: random.Random) -> list[Question]:
    if cap is None or cap >= len(questions):
        return questions
    picked = sorted(rng.sample(range(len(questions)), cap))
    return [questions[i] for i in picked]


def build_training_groups(
    fold: str,
    recipe: Recipe,
    settings: Settings,
    datasets_dir: Path,
    datasets: Sequence[str] = DATASETS,
    log: Callable[[str], None] = print,
) -> tuple[list[Group], dict[str, Any]]:
    """Training groups for one fold from each dataset's dev split, plus their counts."""
    groups: list[Group] = []
    counts: dict[str, Any] = {}
    for name in datasets:
        ds = load_shared(datasets_dir / name, "dev")
        rng = random.Random(f"{recipe.seed}:{name}:{fold}")
        questions = _sample(fold_questions(ds, fold), recipe.max_questions.get(name), rng)
        assistant = build_assistant(ds, settings, progress=True)
        t = time.perf_counter()
        mined = mine_groups(ds, assistant, questions, recipe, rng)
        assistant.index.close()
        pairs = sum(len(g.labels) for g in mined)
        positives = sum(sum(g.labels) for g in mined)
        counts[name] = {
            "questions": len(mined),
            "pairs": pairs,
            "positives": positives,
            "negatives": pairs - positives,
            "question_ids_sha256": hashlib.sha256(
                "\n".join(sorted(g.qid for g in mined)).encode()
            ).hexdigest()[:16],
            "mining_s": round(time.perf_counter() - t, 1),
        }
        log(f"{name}: {len(mined)} questions, {pairs} pairs ({positives} positive)")
        groups.extend(mined)
    assert_fold(groups, fold)
    return groups, counts

"""The packaged embedder: vectors in input order, batches grouped by token length."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from rag.embed.sentence import SentenceTransformerEmbedder
from rag.settings import EmbedSettings

# Character length and token length disagree on purpose: numbers and gene names cost many
# tokens per character, plain words few.
TEXTS = [
    "Pembrolizumab improved overall survival.",
    "NCT05184712 HR 0.46 P<.001 EGFR-TKI KRAS-G12C STK11/KEAP1 CD8+ TIL PD-L1≥50%",
    "The review discusses why tumours stop responding to immune checkpoint blockade "
    "and how chemotherapy and radiotherapy may restore the response in some patients.",
    "Median PFS was 7.1 versus 4.8 months.",
    "Ivonescimab",
    "Radiotherapy volumes, sites and dose per fraction are being studied with immunotherapy.",
    "Dr. Borghaei expressed skepticism about the efficacy of this combination.",
]


@pytest.fixture(scope="module")
def small_batches() -> SentenceTransformerEmbedder:
    return SentenceTransformerEmbedder(EmbedSettings(batch_size=2))


def test_vectors_come_back_in_input_order(small_batches: SentenceTransformerEmbedder) -> None:
    batched = small_batches.embed(TEXTS)
    alone = np.stack([small_batches.embed_query(t) for t in TEXTS])
    similarity = batched @ alone.T
    assert list(similarity.argmax(axis=1)) == list(range(len(TEXTS)))
    assert np.diag(similarity).min() > 0.99
    assert np.allclose(np.linalg.norm(batched, axis=1), 1.0, atol=1e-5)


def test_batches_hold_texts_of_neighbouring_token_lengths(
    small_batches: SentenceTransformerEmbedder, monkeypatch: pytest.MonkeyPatch
) -> None:
    model = small_batches._model
    real_encode = model.encode
    batches: list[list[int]] = []

    def recording_encode(texts: list[str], **kwargs: object) -> object:
        batches.append(small_batches.count_tokens(texts))
        return real_encode(texts, **kwargs)

    monkeypatch.setattr(model, "encode", recording_encode)
    small_batches.embed(TEXTS)
    assert sum(len(b) for b in batches) == len(TEXTS)
    assert all(len(b) <= 2 for b in batches)
    # Longest first, and no batch mixes a short text with a longer one from a later batch.
    for earlier, later in itertools.pairwise(batches):
        assert min(earlier) >= max(later)
    by_chars = sorted(TEXTS, key=len, reverse=True)
    assert small_batches.count_tokens(by_chars) != sorted(
        small_batches.count_tokens(TEXTS), reverse=True
    ), "the fixture should order differently by characters and by tokens"

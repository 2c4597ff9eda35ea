from __future__ import annotations

from pathlib import Path

import pytest

from rag.errors import ConfigError
from rag.settings import load_settings


def test_priority_flags_over_env_over_file_over_preset(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "rag.toml").write_text(
        'preset = "fast"\n[retrieve]\nk = 7\nmode = "dense"\n[index]\ndir = "from-file"\n'
    )
    s = load_settings()
    assert s.preset == "fast"
    assert s.generate.model == "qwen2.5-coder-0.5b"  # from the preset
    assert (s.retrieve.k, s.retrieve.mode) == (7, "dense")  # from the file
    assert s.index.dir == Path("from-file")

    monkeypatch.setenv("RAG_RETRIEVE__K", "9")
    assert load_settings().retrieve.k == 9
    assert load_settings().retrieve.mode == "dense"  # env overrides one key, not the group

    s = load_settings(index_dir=tmp_path / "flag", overrides=["retrieve.k=3"], preset="quality")
    assert s.retrieve.k == 3 and s.index.dir == tmp_path / "flag"
    assert s.generate.model == "qwen2.5-coder-1.5b"


def test_rag_config_names_the_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    cfg = tmp_path / "custom.toml"
    cfg.write_text("[chunk]\nmax_tokens = 128\n")
    monkeypatch.setenv("RAG_CONFIG", str(cfg))
    assert load_settings().chunk.max_tokens == 128
    monkeypatch.setenv("RAG_CONFIG", str(tmp_path / "missing.toml"))
    with pytest.raises(ConfigError, match="not a file"):
        load_settings()


def test_invalid_values_name_the_setting() -> None:
    with pytest.raises(ConfigError, match=r"invalid setting chunk\.overlap_tokens"):
        load_settings(overrides=["chunk.max_tokens=50", "chunk.overlap_tokens=60"])
    with pytest.raises(ConfigError, match=r"group\.key=value"):
        load_settings(overrides=["nonsense"])

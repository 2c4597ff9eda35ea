"""Assembly of the packaged GGUF models from their installed data packages (real parts)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from rag.errors import ModelUnavailableError
from rag.generate.packaged import (
    PACKAGED,
    STAMP,
    is_converted,
    prepare_model,
    resolve_model,
)
from rag.models import SplitArtifact, distribution_file, sha256_file

SMALL = PACKAGED["qwen2.5-coder-0.5b"]


def test_every_part_is_installed_under_the_expected_name() -> None:
    for model in PACKAGED.values():
        assert len(model.artifact.parts) in (6, 22)
        for dist, suffix in model.artifact.parts:
            assert distribution_file(dist, suffix, setting=model.artifact.setting).is_file()


def test_small_model_assembles_to_the_published_size_and_checksum(tmp_path: Path) -> None:
    path = SMALL.artifact.path(tmp_path)
    assert path.stat().st_size == 491_400_064
    assert sha256_file(path) == SMALL.sha256  # recomputed independently of the assembler
    assert path.read_bytes()[:4] == b"GGUF"
    again = SMALL.artifact.path(tmp_path)  # stamped: no second assembly
    assert again == path
    assert not list(path.parent.glob(".assemble-*"))


def test_checksum_mismatch_is_reported_and_leaves_nothing_behind(tmp_path: Path) -> None:
    last = SMALL.artifact.parts[-1:]  # one real part keeps this fast
    wrong = SplitArtifact(
        name="corrupt",
        filename="corrupt.gguf",
        parts=last,
        size=None,
        sha256="0" * 64,
        setting="generate.model=corrupt",
    )
    with pytest.raises(ModelUnavailableError, match=r"sha256 mismatch.*generate\.model=corrupt"):
        wrong.path(tmp_path)
    folder = tmp_path / "artifacts" / "corrupt"
    assert not (folder / "corrupt.gguf").exists()
    assert not list(folder.glob(".assemble-*"))


def test_size_mismatch_is_reported(tmp_path: Path) -> None:
    wrong = SplitArtifact(
        name="short",
        filename="short.gguf",
        parts=SMALL.artifact.parts[-1:],
        size=1,
        sha256=None,
        setting="generate.model=short",
    )
    with pytest.raises(ModelUnavailableError, match="expected 1"):
        wrong.path(tmp_path)


def test_missing_distribution_names_the_setting(tmp_path: Path) -> None:
    missing = SplitArtifact(
        name="gone",
        filename="gone.gguf",
        parts=(("no-such-dist-for-onco-rag", "data/part01.bin"),),
        size=None,
        sha256=None,
        setting="generate.model=gone",
    )
    with pytest.raises(ModelUnavailableError, match=r"not installed.*generate\.model=gone"):
        missing.path(tmp_path)


def test_unknown_model_name_names_the_setting(tmp_path: Path) -> None:
    with pytest.raises(ModelUnavailableError, match=r"generate\.model='no-such-model'"):
        prepare_model("no-such-model", tmp_path)
    empty = tmp_path / "empty-model-dir"
    empty.mkdir()
    with pytest.raises(ModelUnavailableError, match=r"generate\.model="):
        resolve_model(str(empty))


def test_local_hf_folder_is_used_as_is(tmp_path: Path) -> None:
    folder = tmp_path / "my-model"
    folder.mkdir()
    (folder / "config.json").write_text("{}")
    (folder / "model.safetensors").write_bytes(b"")
    assert prepare_model(str(folder), tmp_path / "cache") == folder
    assert not (tmp_path / "cache").exists()


def test_conversion_stamp_must_match_the_source_checksum(tmp_path: Path) -> None:
    folder = SMALL.converted_dir(tmp_path)
    folder.mkdir(parents=True)
    (folder / "config.json").write_text("{}")
    (folder / "model.safetensors").write_bytes(b"")
    assert not is_converted(SMALL, folder)  # no stamp: an interrupted or foreign folder
    (folder / STAMP).write_text(json.dumps({"source_sha256": "f" * 64}))
    assert not is_converted(SMALL, folder)
    (folder / STAMP).write_text(json.dumps({"source_sha256": SMALL.sha256}))
    assert is_converted(SMALL, folder)
    assert folder.name == f"qwen2.5-coder-0.5b-{SMALL.sha256[:8]}"

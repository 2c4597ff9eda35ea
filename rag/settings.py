"""One settings object for every component, with named presets.

Priority (highest first): explicit values (CLI flags / keyword arguments) > environment
(`RAG_INDEX__DIR=...`, `RAG_GENERATE__MODEL=...`) > settings file (`rag.toml` in the working
directory or the file named by `RAG_CONFIG`) > the named preset > the defaults below.
Each component receives only its own group (``settings.retrieve``, ``settings.generate``...).
"""

from __future__ import annotations

import os
import tomllib
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, Field, ValidationError, field_validator
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
)

from rag.errors import ConfigError


class _Group(BaseModel):
    model_config = {"extra": "forbid", "validate_assignment": True}


class IndexSettings(_Group):
    dir: Path = Field(Path("index"), description="Directory that holds one corpus index.")
    vector_index: Literal["auto", "flat", "hnsw", "ivf"] = Field(
        "auto",
        description="flat = exact inner product; auto switches to HNSW past ann_threshold vectors.",
    )
    ann_threshold: int = Field(200_000, ge=1)
    hnsw_m: int = Field(32, ge=4)
    hnsw_ef_construction: int = Field(200, ge=8)
    hnsw_ef_search: int = Field(128, ge=8)
    ivf_nlist: int | None = Field(None, description="IVF lists; default 4*sqrt(n).")
    ivf_nprobe: int = Field(32, ge=1)
    store: Literal["faiss", "milvus"] = "faiss"
    milvus_uri: str = Field(
        "", description="Milvus URI; empty = milvus-lite file in the index dir."
    )
    lock_timeout_s: float = Field(600.0, ge=0)
    auto_seed: bool = Field(True, description="Build the seed-corpus index on first use.")


class IngestSettings(_Group):
    max_file_mb: float = Field(50.0, gt=0)
    timeout_s: float = Field(120.0, gt=0, description="Per-file parsing time limit.")
    max_memory_mb: int = Field(3072, ge=256, description="Address-space cap of the parser process.")
    sandbox: bool = Field(True, description="Parse PDF/HTML/XML in a separate, killable process.")
    commit_every: int = Field(64, ge=1, description="Documents per index transaction.")


class ChunkSettings(_Group):
    max_tokens: int = Field(200, ge=16, description="Chunk budget in embedder tokenizer tokens.")
    overlap_tokens: int = Field(40, ge=0)
    min_tokens: int = Field(24, ge=0, description="Merge a trailing fragment smaller than this.")

    @field_validator("overlap_tokens")
    @classmethod
    def _overlap_below_budget(cls, v: int, info: Any) -> int:
        budget = info.data.get("max_tokens", 200)
        if v >= budget:
            raise ValueError(f"overlap_tokens ({v}) must be smaller than max_tokens ({budget})")
        return v


class EmbedSettings(_Group):
    model: str = Field(
        "all-MiniLM-L6-v2",
        description="Packaged embedder (all-MiniLM-L6-v2, all-mpnet-base-v2, embeddinggemma: "
        "fetched once with `rag models fetch embeddinggemma`) or a local path.",
    )
    dtype: Literal["auto", "float32", "bfloat16"] = Field(
        "auto",
        description="auto = bfloat16 on CPUs with AMX/AVX512-BF16, float32 elsewhere (bfloat16 "
        "is emulated there and several times slower).",
    )
    # 32: 41 docs/s vs 35 at 64 through the pipeline (SciFact, bf16; eval/bench_index.py).
    batch_size: int = Field(32, ge=1)
    threads: int | None = Field(None, ge=1, description="Torch threads; default = all cores.")
    max_seq_length: int | None = Field(None, ge=16)
    dimensions: int | None = Field(
        None,
        ge=32,
        description="Keep the first N vector components (Matryoshka models such as "
        "embeddinggemma: 768/512/256/128); default = the model's full size.",
    )


class RetrieveSettings(_Group):
    k: int = Field(
        5,
        ge=1,
        le=200,
        description="Passages a search returns. An answer's passages are answer.max_passages "
        "(every shell's per-request k overrides that one).",
    )
    mode: Literal["hybrid", "dense", "lexical"] = "hybrid"
    dense_depth: int = Field(100, ge=1)
    lexical_depth: int = Field(100, ge=1)
    # zscore: weighted sum of standardised BM25 and cosine scores; rrf: reciprocal rank fusion.
    # zscore scored higher on every dev set (docs/retrieval.md "Why the defaults ...").
    fusion: Literal["zscore", "rrf"] = "zscore"
    rrf_k: int = Field(60, ge=1, description="RRF's k (fusion=rrf only).")
    dense_weight: float = Field(1.0, ge=0)
    lexical_weight: float = Field(1.0, ge=0)
    context_weight: float = Field(
        0.5,
        ge=0,
        description="Weight of BM25 over the text around each chunk (the chunks before and "
        "after it), fused with the chunk's own scores.",
    )
    expand_queries: bool = Field(True, description="Abbreviation/synonym expansion.")
    # context / expansion weights: chosen on the tuning halves of SciFact, BioASQ and PubMedQA
    # dev (docs/retrieval.md "Lexical scores that hold the question's own words").
    expansion_weight: float = Field(
        0.25,
        ge=0,
        description="Weight of BM25 over the alias spellings a question lacks (its own run).",
    )
    diversity: Literal["none", "mmr", "per_doc"] = "mmr"
    mmr_lambda: float = Field(0.8, ge=0, le=1)
    max_per_doc: int = Field(3, ge=1)


class RerankSettings(_Group):
    # Off by default: on a 2-core AVX2 CPU it takes 1.7 s a query (p50, idle) for
    # +0.009 / +0.017 held-out nDCG@10 (SciFact / BioASQ); the quality preset turns it on.
    method: Literal["none", "cross-encoder", "generator"] = "none"
    model: str = Field(
        "",
        description="Adapter or CrossEncoder folder; empty = the adapter shipped in "
        "rag/rerank/artifacts/.",
    )
    # depth / weight / blend: chosen on held-out SciFact nDCG@10 of the trained cross-encoder
    # (cross-fitted folds), see docs/retrieval.md "Why the defaults are what they are".
    depth: int = Field(30, ge=1, description="Candidates passed to the reranker.")
    batch_size: int = Field(32, ge=1)
    weight: float = Field(
        0.6, ge=0, le=1, description="Share of the rerank score; 1 = rerank score only."
    )
    blend: Literal["score", "rank"] = Field(
        "score", description="Combine standardised scores, or reciprocal ranks, with retrieval."
    )


class GenerateSettings(_Group):
    backend: Literal["local", "remote"] = "local"
    model: str = Field("qwen2.5-coder-1.5b", description="Packaged model name or a local dir.")
    dtype: Literal["auto", "bfloat16", "float32", "int8"] = Field(
        "auto",
        description="auto = bfloat16 on CPUs with AMX/AVX512-BF16, float32 elsewhere (where "
        "bfloat16 prefill is emulated: 5.6x slower measured on an AVX2 EPYC).",
    )
    decode_weights: Literal["gguf", "int8", "bfloat16"] = Field(
        "gguf",
        description="With dtype bfloat16 or float32, the weights one-token decode steps read "
        "(prefill keeps the model's own): gguf = the packaged GGUF's 4-bit Q4_K blocks where it "
        "has them, int8 elsewhere; int8 = int8 copies of all; bfloat16 = no copies.",
    )
    threads: int | None = Field(None, ge=1)
    max_new_tokens: int = Field(256, ge=1, le=4096)
    temperature: float = Field(0.0, ge=0, le=2)
    cache_dir: Path | None = Field(
        None, description="Converted-model cache; default ~/.cache/onco-rag."
    )
    prefix_cache: bool = True
    base_url: str = Field("", description="OpenAI-compatible endpoint for backend=remote.")
    remote_model: str = ""
    api_key: str = ""
    timeout_s: float = Field(120.0, gt=0)


class AnswerSettings(_Group):
    max_passages: int = Field(
        5,
        ge=1,
        le=20,
        description="Passages an answer uses (put in the prompt); `rag ask -k`, the API's k "
        "and the UI slider override it per request.",
    )
    max_passage_tokens: int = Field(160, ge=32)
    passage_context: Literal["neighbours", "chunk"] = Field(
        "neighbours",
        description="Where each passage's sentences are chosen from: the hit's chunk with its "
        "neighbours (a result sentence cut into the next chunk still reaches the model), or "
        "the chunk alone. The run of sentences is chosen for the question and its aliases.",
    )
    min_relevance: float = Field(
        0.15,
        description="Abstain before generating when the best dense similarity is below this "
        "and the passages also miss most question terms (see min_term_coverage).",
    )
    min_term_coverage: float = Field(
        0.3, ge=0, le=1, description="Share of the question's content words the passages hold."
    )
    drop_unsupported: bool = True
    quote_fallback: Literal["never", "dropped", "always"] = Field(
        "dropped",
        description="When no drafted sentence holds, show the passage sentence the judge finds "
        "answers the question, quoted and cited: dropped = only when verification removed the "
        "draft; always = also when the model said the passages do not answer.",
    )
    quote_threshold: float | None = Field(
        None, ge=0, le=1, description="Judge probability a quote needs; default its own threshold."
    )
    evidence_quotes: int = Field(3, ge=0)
    verdict: Literal["trained", "generator", "none"] = Field(
        "trained",
        description="Yes/no questions: trained = the verdict classifier shipped in "
        "rag/verify/artifacts (shown only above its calibrated confidence); generator = the "
        "generator's label log-probabilities (classify only); none = no verdict.",
    )
    classify_calibration: Literal["none", "content-free"] = Field(
        "none",
        description="content-free: subtract each label's log-probability on an empty prompt "
        "(small models lean to 'yes' whatever the passages say).",
    )


class VerifySettings(_Group):
    support_threshold: float = Field(
        0.5, ge=0, le=1, description="Overlap-score threshold, used only with judge=none."
    )
    judge: Literal["trained", "none"] = Field(
        "trained",
        description="trained = the answer judge shipped in rag/verify/artifacts (support and "
        "answer decisions, calibrated on third-party data); none = the overlap score only.",
    )
    grounding: bool = Field(
        True,
        description="Entity checks: a question naming what no document mentions is answered "
        "'The indexed documents do not mention X'; a sentence must cite passages about what the "
        "question names, and a figure must sit under the trial or drug asked for. Off only to "
        "measure what it does.",
    )
    judge_dir: Path | None = Field(
        None, description="Another judge adapter folder (python -m rag.eval.train_judge --out)."
    )


class ServerSettings(_Group):
    host: str = "127.0.0.1"
    port: int = Field(7860, ge=0, le=65535)
    api_key: str = Field("", description="Bearer key for write endpoints (empty = open).")
    chat_key: str = Field("", description="Bearer key that reaches only chat/ask endpoints.")
    cors_origins: list[str] = Field(default_factory=list)
    max_upload_mb: float = Field(25.0, gt=0)
    max_request_kb: int = Field(64, ge=1)
    data_dir: Path | None = Field(None, description="Uploads + feedback; default <index>/data.")
    max_concurrent_generations: int = Field(1, ge=1)
    queue_timeout_s: float = Field(30.0, ge=0)


# Named presets: partial settings applied below the settings file and the environment.
PRESETS: dict[str, dict[str, Any]] = {
    "default": {},
    "fast": {
        "generate": {"model": "qwen2.5-coder-0.5b"},
        "answer": {"max_passages": 4},
    },
    "quality": {
        "generate": {"model": "qwen2.5-coder-1.5b"},
        "answer": {"max_passages": 5},
        # The shipped reranker adapter: +0.009 / +0.017 held-out nDCG@10 on SciFact / BioASQ
        # dev samples, seconds a query on a 2-core AVX2 CPU (docs/retrieval.md).
        "rerank": {"method": "cross-encoder"},
    },
    "remote": {"generate": {"backend": "remote"}},
}


def _deep_merge(base: dict[str, Any], top: dict[str, Any]) -> dict[str, Any]:
    out = dict(base)
    for key, value in top.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = _deep_merge(out[key], value)
        else:
            out[key] = value
    return out


def config_file() -> Path | None:
    explicit = os.environ.get("RAG_CONFIG")
    if explicit:
        path = Path(explicit)
        if not path.is_file():
            raise ConfigError(f"RAG_CONFIG points to {path}, which is not a file")
        return path
    local = Path("rag.toml")
    return local if local.is_file() else None


def _read_toml(path: Path | None) -> dict[str, Any]:
    if path is None:
        return {}
    try:
        return tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise ConfigError(f"cannot read settings file {path}: {exc}") from exc


class _FileAndPresetSource(PydanticBaseSettingsSource):
    """Settings file merged over the preset it (or the environment) names."""

    def __init__(self, settings_cls: type[BaseSettings], preset: str | None) -> None:
        super().__init__(settings_cls)
        self._preset = preset

    def get_field_value(self, field: Any, field_name: str) -> tuple[Any, str, bool]:
        return None, field_name, False

    def __call__(self) -> dict[str, Any]:
        from_file = _read_toml(config_file())
        name = self._preset or os.environ.get("RAG_PRESET") or from_file.get("preset") or "default"
        if name not in PRESETS:
            raise ConfigError(f"unknown preset {name!r}; choose one of {', '.join(PRESETS)}")
        return _deep_merge(PRESETS[name], from_file) | {"preset": name}


class Settings(BaseSettings):
    """Everything configurable, grouped by pipeline role."""

    model_config = SettingsConfigDict(
        env_prefix="RAG_", env_nested_delimiter="__", extra="forbid", validate_assignment=True
    )

    preset: str = "default"
    index: IndexSettings = Field(default_factory=IndexSettings)
    ingest: IngestSettings = Field(default_factory=IngestSettings)
    chunk: ChunkSettings = Field(default_factory=ChunkSettings)
    embed: EmbedSettings = Field(default_factory=EmbedSettings)
    retrieve: RetrieveSettings = Field(default_factory=RetrieveSettings)
    rerank: RerankSettings = Field(default_factory=RerankSettings)
    generate: GenerateSettings = Field(default_factory=GenerateSettings)
    answer: AnswerSettings = Field(default_factory=AnswerSettings)
    verify: VerifySettings = Field(default_factory=VerifySettings)
    server: ServerSettings = Field(default_factory=ServerSettings)

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        preset = getattr(init_settings, "init_kwargs", {}).get("preset")
        return (init_settings, env_settings, _FileAndPresetSource(settings_cls, preset))

    def fingerprint(self) -> dict[str, Any]:
        """The settings that change results, for run records and reports."""
        return self.model_dump(mode="json", exclude={"server"})


def parse_override(item: str) -> dict[str, Any]:
    """Turn ``retrieve.k=8`` into ``{"retrieve": {"k": "8"}}`` (pydantic coerces the type)."""
    if "=" not in item:
        raise ConfigError(f"--set expects group.key=value, got {item!r}")
    dotted, value = item.split("=", 1)
    parts = [p for p in dotted.strip().split(".") if p]
    if not parts:
        raise ConfigError(f"--set expects group.key=value, got {item!r}")
    out: dict[str, Any] = {}
    cursor = out
    for part in parts[:-1]:
        cursor = cursor.setdefault(part, {})
    parsed: Any = value
    if value.startswith("[") and value.endswith("]"):
        parsed = [v.strip() for v in value[1:-1].split(",") if v.strip()]
    cursor[parts[-1]] = parsed
    return out


def load_settings(
    *,
    preset: str | None = None,
    index_dir: Path | str | None = None,
    overrides: list[str] | None = None,
) -> Settings:
    """Build settings the way every shell does: preset, file, env, then explicit flags."""
    explicit: dict[str, Any] = {}
    for item in overrides or []:
        explicit = _deep_merge(explicit, parse_override(item))
    if index_dir is not None:
        explicit = _deep_merge(explicit, {"index": {"dir": str(index_dir)}})
    if preset is not None:
        explicit["preset"] = preset
    try:
        # Explicit groups must merge with env/file values, not replace them wholesale.
        base = Settings(preset=preset) if preset else Settings()
        merged = _deep_merge(base.model_dump(), explicit)
        return Settings.model_validate(merged)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"])
        raise ConfigError(f"invalid setting {where}: {first['msg']}") from exc

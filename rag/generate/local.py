"""Local generation with transformers on the CPU: a manual decode loop over a KV cache.

Why a hand-written loop instead of ``model.generate`` + ``TextIteratorStreamer``: it needs no
extra thread, measures time-to-first-token and prefill exactly, and lets a request start from a
cached prompt prefix (system prompt + fixed instructions are the same for every question), so
only the new suffix is prefilled. Greedy output is token-for-token that of ``generate``.
"""

from __future__ import annotations

import copy
import itertools
import os
import threading
import time
import warnings
from collections.abc import Iterator
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Any

from rag.errors import ConfigError, GenerationError, ModelUnavailableError
from rag.generate.base import GenerationStats, Message, scan_stops
from rag.generate.decode_weights import add_decode_weights
from rag.generate.packaged import PackagedModel, prepare_model, resolve_model
from rag.models import compute_dtype, fingerprint_dir, keep_freed_memory
from rag.settings import GenerateSettings

MIN_CHUNK = 64  # a message boundary splits prefill only after this many tokens
MAX_CHUNK = 1024  # bounds the attention matrix for long prompts
MAX_PREFIXES = 4  # cached prompt KVs kept (LRU); ~28 KB/token for the 1.5B model in bf16


@dataclass
class _Prefix:
    tokens: tuple[int, ...]
    ends: tuple[int, ...]  # where prefill split these tokens: the only safe reuse points
    cache: Any  # transformers DynamicCache holding exactly len(tokens) positions
    logits: Any  # next-token logits after the last token (an exact repeat needs no forward)


def _common_prefix(a: tuple[int, ...], b: list[int]) -> int:
    n = min(len(a), len(b))
    i = 0
    while i < n and a[i] == b[i]:
        i += 1
    return i


def _crop(cache: Any, length: int) -> None:
    """Shrink ``cache`` to its first ``length`` positions (negative crop works in 4.x and 5.x)."""
    extra = cache.get_seq_length() - length
    if extra > 0:
        cache.crop(-extra)


def _variants(choice: str) -> list[str]:
    """Surface forms a model may use for the same answer ("yes" -> "Yes", "YES")."""
    forms = [choice, choice[:1].upper() + choice[1:], choice.lower(), choice.upper()]
    return list(dict.fromkeys(forms))


class LocalGenerator:
    """One model on this CPU; one generation at a time (a lock serialises callers)."""

    def __init__(self, settings: GenerateSettings) -> None:
        import torch
        import transformers
        from transformers import AutoModelForCausalLM, AutoTokenizer

        transformers.logging.set_verbosity_error()
        transformers.logging.disable_progress_bar()

        self.settings = settings
        self.name = settings.model
        self.dtype = compute_dtype(settings.dtype)
        if self.dtype == "int8" and not _has_dynamic_int8():
            raise ConfigError(
                "generate.dtype=int8 needs torch.ao.quantization.quantize_dynamic, which this "
                f"torch ({torch.__version__}) lacks; use generate.dtype=bfloat16"
            )
        torch.set_num_threads(settings.threads or os.cpu_count() or 1)
        keep_freed_memory()
        self._source = resolve_model(settings.model)
        started = time.perf_counter()
        self.model_dir: Path = prepare_model(settings.model, settings.cache_dir)
        load_dtype = torch.bfloat16 if self.dtype == "bfloat16" else torch.float32
        try:
            model = AutoModelForCausalLM.from_pretrained(
                str(self.model_dir), dtype=load_dtype, local_files_only=True
            )
            self._tokenizer = AutoTokenizer.from_pretrained(
                str(self.model_dir), local_files_only=True
            )
        except Exception as exc:  # a setting-named error, not a stack trace
            hint = (
                f"; delete {self.model_dir} to convert it again"
                if isinstance(self._source, PackagedModel)
                else ""
            )
            raise ModelUnavailableError(
                f"cannot load generate.model={settings.model!r} from {self.model_dir}: {exc}{hint}"
            ) from exc
        if not getattr(self._tokenizer, "chat_template", None):
            raise ModelUnavailableError(
                f"generate.model={settings.model!r} has no chat template; use an instruct model"
            )
        self.n_params = sum(p.numel() for p in model.parameters())
        self.decode_layers = {"int4": 0, "int8": 0}
        if self.dtype == "int8":
            model = _quantize_int8(model)
        elif settings.decode_weights != "bfloat16":
            if not hasattr(torch, "_weight_int8pack_mm"):
                raise ConfigError(
                    f"generate.decode_weights={settings.decode_weights} needs torch's int8 "
                    f"kernels, which this torch ({torch.__version__}) lacks; set "
                    "generate.decode_weights=bfloat16"
                )
            gguf = kept = None
            # bfloat16 prompts read input-major copies (kept beside the decode copies); float32
            # prompts read the model's own weights, so the two keep files of their own.
            prompt_layout = self.dtype == "bfloat16"
            if isinstance(self._source, PackagedModel):  # our own converted folder: keep them
                suffix = "" if prompt_layout else "-f32"
                kept = self.model_dir / f"decode-{settings.decode_weights}{suffix}.safetensors"
                if settings.decode_weights == "gguf":
                    gguf = self._source.artifact.path(settings.cache_dir)
            self.decode_layers = add_decode_weights(
                model,
                gguf_path=gguf,
                index_file=self.model_dir / "gguf-q4k.json",
                cache_file=kept,
                prompt_layout=prompt_layout,
            )
        self._model = model.eval()
        self._torch = torch
        self.load_s = time.perf_counter() - started
        self.config = model.config
        self._eos = self._eos_ids()
        self._message_starts = self._message_start_ids()
        self._lock = threading.Lock()
        self._prefixes: list[_Prefix] = []

    # -- identity -------------------------------------------------------------------------------

    @cached_property
    def fingerprint(self) -> str:
        if isinstance(self._source, PackagedModel):
            return self._source.sha256[:16]  # the GGUF's sha256, verified at assembly
        return fingerprint_dir(self.model_dir)

    def count_tokens(self, text: str) -> int:
        return len(self._tokenizer(text, add_special_tokens=False)["input_ids"])

    def encode_messages(self, messages: list[Message]) -> list[int]:
        """The prompt token ids: the tokenizer's chat template with the assistant turn opened."""
        try:
            text = self._tokenizer.apply_chat_template(
                messages, add_generation_prompt=True, tokenize=False
            )
        except Exception as exc:  # e.g. a role the template does not know
            raise GenerationError(f"{self.name}: cannot apply the chat template: {exc}") from exc
        return list(self._tokenizer(text, add_special_tokens=False)["input_ids"])

    def clear_prefix_cache(self) -> None:
        with self._lock:
            self._prefixes.clear()

    # -- generation -----------------------------------------------------------------------------

    def stream(
        self,
        messages: list[Message],
        *,
        max_new_tokens: int,
        temperature: float = 0.0,
        stop: list[str] | None = None,
    ) -> Iterator[str | GenerationStats]:
        """Yield decoded text pieces, then one GenerationStats.

        The lock is held while the caller consumes the iterator; closing it early (or dropping
        it) releases the lock.
        """
        if max_new_tokens < 1:
            raise ValueError("max_new_tokens must be at least 1")
        stops = [s for s in (stop or []) if s]
        with self._lock:
            started = time.perf_counter()
            ids = self.encode_messages(messages)
            t_prefill = time.perf_counter()
            cache, cached, ends, prompt_logits = self._prefill(ids)
            prefill_s = time.perf_counter() - t_prefill
            token = self._pick(prompt_logits, temperature)
            ttft = time.perf_counter() - started
            t_first = time.perf_counter()
            sampled = 1
            generated: list[int] = []
            text = ""  # everything decoded so far
            sent = 0  # characters of ``text`` already yielded
            prefix_offset = read_offset = 0
            stopped = False
            while token not in self._eos:
                generated.append(token)
                # Incremental detokenisation: only emit once the bytes form whole characters.
                prefix_text = self._decode(generated[prefix_offset:read_offset])
                new_text = self._decode(generated[prefix_offset:])
                if len(new_text) > len(prefix_text) and not new_text.endswith("\ufffd"):
                    text += new_text[len(prefix_text) :]
                    prefix_offset, read_offset = read_offset, len(generated)
                    safe, stopped = scan_stops(text, sent, stops)
                    if safe > sent:
                        yield text[sent:safe]
                        sent = safe
                    if stopped:
                        break
                if len(generated) >= max_new_tokens:
                    break
                logits = self._forward([token], cache)
                token = self._pick(logits, temperature)
                sampled += 1
            if not stopped:
                tail = self._decode(generated[prefix_offset:])[
                    len(self._decode(generated[prefix_offset:read_offset])) :
                ]
                text += tail
                safe, _ = scan_stops(text, sent, stops, final=True)
                if safe > sent:
                    yield text[sent:safe]
            end = time.perf_counter()
            decode_s = end - t_first
            self._remember(ids, ends, cache, prompt_logits)
            yield GenerationStats(
                prompt_tokens=len(ids),
                cached_prompt_tokens=cached,
                new_tokens=len(generated),
                ttft_s=ttft,
                total_s=end - started,
                decode_tokens_per_s=(sampled - 1) / decode_s if sampled > 1 and decode_s else 0.0,
                prefill_tokens_per_s=(len(ids) - cached) / prefill_s if cached < len(ids) else 0.0,
            )

    def choice_logprobs(self, messages: list[Message], choices: list[str]) -> dict[str, float]:
        """Log-probability that the reply starts with each choice (under the full vocabulary).

        Capitalisation variants count for the same choice ("Yes" for "yes"). When the choices
        begin with distinct tokens -- yes/no/maybe, 1..5 -- one forward pass over the prompt
        decides (the first token settles which choice a reply commits to); otherwise each
        choice's full token sequence is scored from a copy of the prompt's KV cache. Values are
        not renormalised over the choices, so mass that went elsewhere stays visible.
        """
        if not choices or any(not c for c in choices):
            raise ValueError("choices must be non-empty strings")
        torch = self._torch
        choices = list(dict.fromkeys(choices))
        seqs = {c: self._variant_sequences(c, choices) for c in choices}
        firsts = [seqs[c][0][0] for c in choices]
        with self._lock:
            ids = self.encode_messages(messages)
            cache, _, ends, logits = self._prefill(ids)
            logp = torch.log_softmax(logits, dim=-1)
            out: dict[str, float] = {}
            if len(set(firsts)) == len(firsts):
                owner = {seqs[c][0][0]: c for c in choices}  # exact forms win over variants
                for c in choices:
                    for seq in seqs[c][1:]:
                        owner.setdefault(seq[0], c)
                for c in choices:
                    toks = [t for t, o in owner.items() if o == c]
                    out[c] = float(torch.logsumexp(logp[toks], dim=0))
            else:
                for c in choices:
                    scores = [self._sequence_logprob(cache, logp, seq) for seq in seqs[c]]
                    out[c] = float(torch.logsumexp(torch.tensor(scores), dim=0))
            self._remember(ids, ends, cache, logits)
        return out

    # -- internals ------------------------------------------------------------------------------

    def _variant_sequences(self, choice: str, choices: list[str]) -> list[list[int]]:
        """Token sequences of ``choice`` and its variants; first entry is the exact form."""
        taken = {c for c in choices if c != choice}
        seqs: list[list[int]] = []
        for form in _variants(choice):
            if form in taken and form != choice:
                continue
            toks = list(self._tokenizer(form, add_special_tokens=False)["input_ids"])
            if toks and toks not in seqs:
                seqs.append(toks)
        if not seqs:
            raise ValueError(f"choice {choice!r} tokenizes to nothing")
        return seqs

    def _sequence_logprob(self, cache: Any, logp: Any, seq: list[int]) -> float:
        total = float(logp[seq[0]])
        if len(seq) == 1:
            return total
        torch = self._torch
        branch = copy.deepcopy(cache)
        with torch.inference_mode():
            out = self._model(
                input_ids=torch.tensor([seq[:-1]]), past_key_values=branch, use_cache=True
            )
            steps = torch.log_softmax(out.logits[0].float(), dim=-1)
        return total + float(sum(steps[i, t] for i, t in enumerate(seq[1:])))

    def _chunk_ends(self, ids: list[int]) -> list[int]:
        """Where prefill splits ``ids``: at a message start with MIN_CHUNK tokens on either side,
        every MAX_CHUNK tokens, and at the end.

        The KV cache is reused only at a split point where both prompts split identically up
        to it, so a cached chunk's KV is bit-for-bit what prefill would compute: the prefix
        cache can never change the output, only skip work.
        """
        ends: list[int] = []
        last = 0
        n = len(ids)
        for p in range(1, n):
            at_message = ids[p] in self._message_starts and n - p >= MIN_CHUNK
            if (at_message and p - last >= MIN_CHUNK) or p - last >= MAX_CHUNK:
                ends.append(p)
                last = p
        ends.append(n)
        return ends

    def _prefill(self, ids: list[int]) -> tuple[Any, int, list[int], Any]:
        """Cache, cached length, chunk ends and next-token logits for the prompt ``ids``."""
        ends = self._chunk_ends(ids)
        cache, start, logits = self._reuse(ids, ends)
        bounds = [start] + [e for e in ends if e > start]
        for a, b in itertools.pairwise(bounds):
            logits = self._forward(ids[a:b], cache)
        assert logits is not None
        return cache, start, ends, logits

    def _reuse(self, ids: list[int], ends: list[int]) -> tuple[Any, int, Any]:
        """A copy of the best cached KV, cropped to a split point both prompts share."""
        from transformers import DynamicCache

        best: _Prefix | None = None
        best_at = 0
        if self.settings.prefix_cache:
            for entry in self._prefixes:
                shared = _common_prefix(entry.tokens, ids)
                full = len(entry.tokens)
                # Walk the split points both prompts made identically, up to the shared prefix.
                at = 0
                for mine, theirs in zip(ends, entry.ends, strict=False):
                    if mine != theirs or mine > shared or (mine == len(ids) and mine != full):
                        break
                    at = mine
                if at > best_at:
                    best, best_at = entry, at
        if best is None:
            return DynamicCache(config=self.config), 0, None
        self._prefixes.remove(best)
        self._prefixes.append(best)  # most recently used last
        with self._torch.inference_mode():
            cache = copy.deepcopy(best.cache)
        _crop(cache, best_at)
        return cache, best_at, best.logits if best_at == len(ids) else None

    def _remember(self, ids: list[int], ends: list[int], cache: Any, logits: Any) -> None:
        """Keep the prompt's KV (cropped back to the prompt) for later requests."""
        if not self.settings.prefix_cache:
            return
        _crop(cache, len(ids))
        key = tuple(ids)
        self._prefixes = [e for e in self._prefixes if e.tokens != key]
        self._prefixes.append(_Prefix(key, tuple(ends), cache, logits))
        del self._prefixes[:-MAX_PREFIXES]

    def _message_start_ids(self) -> set[int]:
        """The token that opens a chat message (``<|im_start|>`` for Qwen), found by rendering."""
        probes = (
            [{"role": "system", "content": "x"}, {"role": "user", "content": "y"}],
            [{"role": "user", "content": "x"}, {"role": "assistant", "content": "y"}],
        )
        for pair in probes:
            try:
                one = self._render_ids(pair[:1])
                two = self._render_ids(pair)
            except Exception:  # templates may reject a role; try the next probe
                continue
            n = _common_prefix(tuple(one), two)
            if n == len(one) and n < len(two) and two[n] in self._special_ids():
                return {two[n]}
        return set()

    def _special_ids(self) -> set[int]:
        tok = self._tokenizer
        added = getattr(tok, "added_tokens_decoder", {}) or {}
        return set(tok.all_special_ids) | {i for i, t in added.items() if t.special}

    def _render_ids(self, messages: list[Message]) -> list[int]:
        text = self._tokenizer.apply_chat_template(
            messages, add_generation_prompt=False, tokenize=False
        )
        return list(self._tokenizer(text, add_special_tokens=False)["input_ids"])

    def _forward(self, tokens: list[int], cache: Any) -> Any:
        """Run ``tokens`` through the model on top of ``cache``; last position's logits."""
        torch = self._torch
        try:
            with torch.inference_mode():
                out = self._model(
                    input_ids=torch.tensor([tokens]),
                    past_key_values=cache,
                    use_cache=True,
                    logits_to_keep=1,
                )
                return out.logits[0, -1].float()
        except (RuntimeError, MemoryError) as exc:
            raise GenerationError(f"local generation failed ({self.name}): {exc}") from exc

    def _pick(self, logits: Any, temperature: float) -> int:
        torch = self._torch
        if temperature <= 0:
            return int(torch.argmax(logits))
        probs = torch.softmax(logits / temperature, dim=-1)
        return int(torch.multinomial(probs, 1))

    def _decode(self, tokens: list[int]) -> str:
        if not tokens:
            return ""
        return self._tokenizer.decode(tokens, skip_special_tokens=True)

    def _eos_ids(self) -> set[int]:
        found: set[int] = set()
        gen = getattr(self._model, "generation_config", None)
        for source in (gen, self.config, self._tokenizer):
            for attr in ("eos_token_id", "pad_token_id"):
                value = getattr(source, attr, None)
                if isinstance(value, int):
                    found.add(value)
                elif isinstance(value, list | tuple):
                    found.update(v for v in value if isinstance(v, int))
        return found


def _has_dynamic_int8() -> bool:
    try:
        from torch.ao.quantization import quantize_dynamic  # noqa: F401
    except ImportError:
        return False
    return True


def _quantize_int8(model: Any) -> Any:
    """Dynamic int8 quantization of every nn.Linear: int8 weights, activations quantized per call.

    Per-channel weight scales: per-tensor ones broke the 0.5B model's answers outright.
    """
    import torch
    from torch.ao.quantization import per_channel_dynamic_qconfig, quantize_dynamic

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # torch.ao.quantization is deprecated, still shipped
        spec = {torch.nn.Linear: per_channel_dynamic_qconfig}
        return quantize_dynamic(model, spec, dtype=torch.qint8, inplace=True)


__all__ = ["LocalGenerator"]

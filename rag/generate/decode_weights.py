"""Smaller weight copies for one-token decode steps; prompts keep bfloat16 and AMX.

Decoding one token multiplies a single row by every weight matrix, so it is bound by memory
bandwidth: the fewer bytes per weight, the faster. Prefill is compute-bound, and torch's
low-bit kernels have no AMX path (14x slower than bfloat16 at 600 rows), so each linear layer
keeps its bfloat16 weight for prompts and reads a compact copy when it sees at most
``DECODE_ROWS`` rows.

Two compact forms:
- ``gguf``: the packaged GGUF's own 4-bit Q4_K blocks, repacked for
  ``torch._weight_int4pack_mm_for_cpu`` (each 32-weight sub-block keeps its scale and minimum,
  so this is the model as it was shipped, not a second quantization);
- ``int8``: per-output-channel int8 of the bfloat16 weight, for every other layer.

Prompts multiply by the bfloat16 weight held input-major (transposed once, kept with the decode
copies): oneDNN's bfloat16 matmul ran the MLP's 8960 x 1536 projections 20-34 % faster from
that layout, and whole prompts prefilled 6-16 % faster (alternated A/B, same outputs).
"""

from __future__ import annotations

import json
import logging
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

log = logging.getLogger(__name__)

DECODE_ROWS = 4  # token rows at or below which a linear layer reads its compact copy
Q4K_GROUP = 32  # weights per Q4_K sub-block, each with its own scale and minimum
_Q4K_BLOCK_BYTES = 144  # d, dmin (fp16), 12 bytes of 6-bit scales/mins, 128 bytes of nibbles

# llama.cpp tensor names -> transformers module names (Qwen2 layout: no Q/K permutation; a
# layout that differs is caught by the row check in ``_int4_from_q4k`` and gets int8).
_GGUF_NAMES = {
    "attn_q": "self_attn.q_proj",
    "attn_k": "self_attn.k_proj",
    "attn_v": "self_attn.v_proj",
    "attn_output": "self_attn.o_proj",
    "ffn_gate": "mlp.gate_proj",
    "ffn_up": "mlp.up_proj",
    "ffn_down": "mlp.down_proj",
}
_BLOCK = re.compile(r"blk\.(\d+)\.(\w+)\.weight$")


@dataclass(frozen=True, slots=True)
class Q4KTensor:
    """Where one Q4_K matrix lies in the GGUF file (rows x cols as transformers holds it)."""

    offset: int
    n_bytes: int
    rows: int
    cols: int

    def blocks(self, gguf_path: Path) -> np.ndarray:
        return np.fromfile(gguf_path, dtype=np.uint8, count=self.n_bytes, offset=self.offset)


def q4k_tensors(gguf_path: Path, index_file: Path | None = None) -> dict[str, Q4KTensor]:
    """The Q4_K matrices of a GGUF file, keyed by the transformers module that holds them.

    Reading the GGUF header parses the whole tokenizer vocabulary (11 s for the 1.5B), so the
    table is kept in ``index_file`` (beside the converted model) after the first read.
    """
    if index_file is not None and index_file.is_file():
        stamp = json.loads(index_file.read_text())
        if stamp.get("size") == gguf_path.stat().st_size:
            return {k: Q4KTensor(*v) for k, v in stamp["tensors"].items()}
    from gguf import GGMLQuantizationType, GGUFReader

    found: dict[str, Q4KTensor] = {}
    for tensor in GGUFReader(str(gguf_path)).tensors:
        if tensor.tensor_type != GGMLQuantizationType.Q4_K or len(tensor.shape) != 2:
            continue
        m = _BLOCK.match(tensor.name)
        if tensor.name == "output.weight":
            name = "lm_head"
        elif m and m.group(2) in _GGUF_NAMES:
            name = f"model.layers.{m.group(1)}.{_GGUF_NAMES[m.group(2)]}"
        else:
            continue
        cols, rows = (int(x) for x in tensor.shape)  # GGUF lists the fastest dimension first
        found[name] = Q4KTensor(int(tensor.data_offset), int(tensor.n_bytes), rows, cols)
    if index_file is not None:
        from rag.paths import write_json_atomic

        table = {k: [t.offset, t.n_bytes, t.rows, t.cols] for k, t in found.items()}
        try:
            write_json_atomic(index_file, {"size": gguf_path.stat().st_size, "tensors": table})
        except OSError as exc:  # a read-only cache costs the next start 11 s, nothing else
            log.warning("cannot keep the GGUF tensor table in %s: %s", index_file, exc)
    return found


def unpack_q4k(raw: np.ndarray, rows: int, cols: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Quants (rows x cols, 0..15), scales and minimums (rows x cols/32): w = scale * q - min.

    The layout of ggml's ``block_q4_K`` (``dequantize_row_q4_K``): 256 weights per block, eight
    sub-blocks whose 6-bit scales and minimums are packed into 12 bytes.
    """
    b = np.ascontiguousarray(raw).reshape(-1, _Q4K_BLOCK_BYTES)
    d = b[:, 0:2].copy().view(np.float16).astype(np.float32)[:, 0]
    dmin = b[:, 2:4].copy().view(np.float16).astype(np.float32)[:, 0]
    s = b[:, 4:16]
    sc = np.empty((len(b), 8), np.uint8)
    mn = np.empty((len(b), 8), np.uint8)
    sc[:, :4] = s[:, 0:4] & 63
    mn[:, :4] = s[:, 4:8] & 63
    sc[:, 4:] = (s[:, 8:12] & 0xF) | ((s[:, 0:4] >> 6) << 4)
    mn[:, 4:] = (s[:, 8:12] >> 4) | ((s[:, 4:8] >> 6) << 4)
    nibbles = b[:, 16:144].reshape(-1, 4, 32)  # 4 x 32 bytes: sub-blocks 2i (low), 2i+1 (high)
    q = np.stack([nibbles & 0xF, nibbles >> 4], axis=2).reshape(rows, cols)
    groups = cols // Q4K_GROUP
    scale = (d[:, None] * sc).reshape(rows, groups)
    minimum = (dmin[:, None] * mn).reshape(rows, groups)
    return q, scale, minimum


def add_decode_weights(
    model: Any,
    *,
    gguf_path: Path | None = None,
    index_file: Path | None = None,
    cache_file: Path | None = None,
    prompt_layout: bool = True,
) -> dict[str, int]:
    """Give every linear layer a compact copy for decode steps and, with ``prompt_layout``
    (bfloat16 models), every one but the output head its prompt weight held input-major;
    counts per decode form.

    A float32 model (CPUs without native bfloat16) keeps its own weights for prompts; its
    decode steps cast the one row to bfloat16 for the low-bit kernels, which have a fast AVX2
    path only for bfloat16 rows (1.25 ms against 11.5 ms for a float32 row and 4.6 ms for the
    plain float32 matmul, 8960 x 1536 on an AVX2 EPYC).

    With ``gguf_path``, layers stored as Q4_K there get those 4-bit blocks; a layer whose
    blocks do not reproduce its bfloat16 weight (a naming or layout mismatch) gets int8.
    With ``cache_file``, the copies are kept there and read back on later starts: building
    them (reading the GGUF blocks, repacking, quantizing) took 7 s of a 10 s 1.5B load,
    transposing another 5 s.
    """
    import torch

    key = _cache_key(torch.__version__, gguf_path)
    cached = _read_cache(cache_file, key, prompt_layout) if cache_file is not None else None
    q4k: dict[str, Q4KTensor] | None = None
    int4_ok = hasattr(torch, "_weight_int4pack_mm_for_cpu")
    counts = {"int4": 0, "int8": 0}
    built: dict[str, Any] = {}  # decode copies, by layer name + ".q"/".s"
    prompt: dict[str, Any] = {}  # input-major prompt weights, by layer name + ".t"
    forms: dict[str, str] = {}
    # The output head only ever sees the last position (``logits_to_keep=1``): no prompt layout.
    head = model.get_output_embeddings() if hasattr(model, "get_output_embeddings") else None
    for name, module in list(model.named_modules()):
        for child_name, child in list(module.named_children()):
            if type(child) is not torch.nn.Linear or child.weight.dtype not in (
                torch.bfloat16,
                torch.float32,
            ):
                continue
            full = f"{name}.{child_name}" if name else child_name
            prompt_weight = None
            if cached is not None and full in cached[1]:
                tensors, known = cached
                form, qweight, scales = known[full], tensors[f"{full}.q"], tensors[f"{full}.s"]
                prompt_weight = tensors.get(f"{full}.t")
            else:
                packed = None
                if int4_ok and gguf_path is not None:
                    if q4k is None:
                        q4k = q4k_tensors(gguf_path, index_file)
                    if full in q4k:
                        packed = _int4_from_q4k(child, q4k[full], gguf_path)
                form = "int4" if packed else "int8"
                qweight, scales = packed or _int8_copy(child.weight.detach())
            if prompt_layout and child is not head and prompt_weight is None:
                prompt_weight = _input_major(child.weight.detach())
            layer = _decode_linear_class()(child, qweight, scales, form, prompt_weight)
            setattr(module, child_name, layer)
            built[f"{full}.q"], built[f"{full}.s"] = qweight, scales
            if prompt_weight is not None:
                prompt[f"{full}.t"] = prompt_weight
            forms[full] = form
            counts[form] += 1
    if cache_file is not None and (cached is None or set(cached[1]) != set(forms)):
        _write_cache(cache_file, key, built, prompt if prompt_layout else None, forms)
    return counts


def _cache_key(torch_version: str, gguf_path: Path | None) -> str:
    """What the kept copies depend on: torch's int4 packing and the GGUF they came from."""
    gguf = gguf_path.stat().st_size if gguf_path is not None and gguf_path.is_file() else None
    return json.dumps({"format": 3, "torch": torch_version, "gguf_bytes": gguf}, sort_keys=True)


def _prompt_file(path: Path) -> Path:
    """Prompt weights live in a file of their own: it stays mapped, the decode file does not."""
    return path.with_name(f"{path.stem}-prompt{path.suffix}")


def _read_cache(
    path: Path, key: str, prompt_layout: bool = True
) -> tuple[dict[str, Any], dict[str, str]] | None:
    if not path.is_file():
        return None
    from safetensors import safe_open
    from safetensors.torch import load_file

    try:
        with safe_open(str(path), framework="pt") as f:
            meta = f.metadata() or {}
        if meta.get("key") != key:
            log.info("decode weights in %s were built for another setup; rebuilding", path)
            return None
        # Decode copies are copied out of the file's mapping: decode steps stream them, and the
        # mapped pages were measured slower (first step 127 vs 107 ms, then ~2 % behind).
        tensors = {name: t.clone() for name, t in load_file(str(path)).items()}
        # Prompt weights stay mapped, as the model's own weights do: copying them too made a
        # cold start 9 s slower, and compute-bound prefill does not feel the mapping.
        if prompt_layout:
            tensors |= load_file(str(_prompt_file(path)))
        return tensors, json.loads(meta["forms"])
    except Exception as exc:  # a torn or foreign file is rebuilt, never trusted
        log.warning("cannot read decode weights from %s (%s); rebuilding", path, exc)
        return None


def _write_cache(
    path: Path,
    key: str,
    decode: dict[str, Any],
    prompt: dict[str, Any] | None,
    forms: dict[str, str],
) -> None:
    """Each file written beside and renamed into place, so a reader never sees half a file;
    the decode file last, as it holds the key a reader trusts."""
    import os

    from safetensors.torch import save_file

    meta = {"key": key, "forms": json.dumps(forms)}
    parts = [(path, decode)] if prompt is None else [(_prompt_file(path), prompt), (path, decode)]
    for target, part in parts:
        tmp = target.with_name(f".{target.name}.{os.getpid()}.tmp")
        try:
            save_file(part, str(tmp), metadata=meta)
            tmp.chmod(0o644)  # like the converted model beside it: the cache may be shared
            os.replace(tmp, target)
        except OSError as exc:  # a read-only cache costs the rebuild on each start, nothing else
            log.warning("cannot keep decode weights in %s: %s", target, exc)
            tmp.unlink(missing_ok=True)
            return


def _input_major(weight: Any) -> Any:
    """``weight`` transposed into contiguous memory, in row blocks that stay in cache (2x
    faster than ``weight.t().contiguous()``; 23 vs 11 ms for an 8960 x 1536 matrix)."""
    import torch

    out = torch.empty(weight.shape[1], weight.shape[0], dtype=weight.dtype)
    for i in range(0, weight.shape[0], 256):
        out[:, i : i + 256] = weight[i : i + 256].t()
    return out


def _int8_copy(weight: Any) -> tuple[Any, Any]:
    """Per-output-channel int8 and its scales (dtype of ``weight``)."""
    import torch

    scales = weight.abs().amax(dim=1).float().clamp(min=1e-8) / 127
    inverse = 1.0 / scales
    q = torch.empty(weight.shape, dtype=torch.int8)
    # In blocks of rows that stay in cache: 4x faster than whole-matrix float32 passes
    # (0.5 vs 1.9-2.3 s for the 1.5B's 151,936 x 1,536 output layer).
    for i in range(0, weight.shape[0], 512):
        # A copy: ``.float()`` of a float32 weight is the weight itself, and mul_ would scale it.
        block = weight[i : i + 512].to(torch.float32, copy=True).mul_(inverse[i : i + 512, None])
        q[i : i + 512] = block.round_().clamp_(-128, 127)
    return q, scales.to(torch.bfloat16)  # the kernels' fast path takes bfloat16 rows


def _int4_from_q4k(linear: Any, tensor: Q4KTensor, gguf_path: Path) -> tuple[Any, Any] | None:
    import torch

    rows, cols = linear.weight.shape
    if (tensor.rows, tensor.cols) != (rows, cols) or cols % 256:
        log.warning(
            "GGUF Q4_K %s x %s does not fit a %s x %s layer; int8 instead",
            tensor.rows,
            tensor.cols,
            rows,
            cols,
        )
        return None
    q, scale, minimum = unpack_q4k(tensor.blocks(gguf_path), rows, cols)
    probe = slice(0, min(rows, 16))
    rebuilt = (
        q[probe].reshape(-1, cols // Q4K_GROUP, Q4K_GROUP) * scale[probe, :, None]
        - minimum[probe, :, None]
    ).reshape(-1, cols)
    weight = linear.weight.detach()[probe].float().numpy()
    if np.abs(rebuilt - weight).max() > 1e-2 * max(float(np.abs(weight).max()), 1e-6):
        log.warning("GGUF blocks at %s do not reproduce the layer; int8", tensor.offset)
        return None
    packed = torch._convert_weight_to_int4pack_for_cpu(torch.from_numpy(q.astype(np.int32)), 2)
    # torch dequantizes (q - 8) * scale + zero; Q4_K is scale * q - min.
    zero = 8 * scale - minimum
    scales_zeros = torch.from_numpy(np.stack([scale, zero], axis=-1)).transpose(0, 1)
    return packed, scales_zeros.contiguous().to(torch.bfloat16)


_CLASS: type | None = None


def _decode_linear_class() -> type:
    """Built on first use so that importing this module does not import torch."""
    global _CLASS
    if _CLASS is not None:
        return _CLASS
    import torch

    class DecodeLinear(torch.nn.Module):
        def __init__(
            self,
            linear: torch.nn.Linear,
            qweight: torch.Tensor,
            scales: torch.Tensor,
            form: str,
            prompt_weight: torch.Tensor | None = None,
        ) -> None:
            super().__init__()
            self.weight, self.bias = linear.weight, linear.bias
            if prompt_weight is not None:  # input-major storage, seen as the usual out x in
                self.weight = torch.nn.Parameter(prompt_weight.t(), requires_grad=False)
            self.int4 = form == "int4"
            self.register_buffer("qweight", qweight, persistent=False)
            self.register_buffer("scales", scales, persistent=False)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            rows = x.numel() // x.shape[-1]
            if rows > DECODE_ROWS:
                return torch.nn.functional.linear(x, self.weight, self.bias)
            flat = x.reshape(rows, x.shape[-1]).to(self.scales.dtype)  # a float32 model's row
            if self.int4:
                y = torch._weight_int4pack_mm_for_cpu(flat, self.qweight, Q4K_GROUP, self.scales)
            else:
                y = torch._weight_int8pack_mm(flat, self.qweight, self.scales)
            y = y.reshape(*x.shape[:-1], y.shape[-1]).to(x.dtype)
            return y + self.bias if self.bias is not None else y

    _CLASS = DecodeLinear
    return _CLASS


__all__ = ["DECODE_ROWS", "add_decode_weights", "q4k_tensors", "unpack_q4k"]
